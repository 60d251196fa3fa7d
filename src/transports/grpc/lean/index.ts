// Public surface of the lean gRPC path: binary gRPC on node:http2 streams, same service implementations as connect.
export {
  createLeanGrpcHandler,
  LEAN_GRPC_CONTENT_TYPE,
  type LeanGrpcHandler,
  type LeanGrpcOptions,
  type LeanGrpcService,
} from "./lean-grpc-handler.js";
