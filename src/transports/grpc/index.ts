// Public surface of the gRPC transport: services registered on a Connect router (gRPC, gRPC-Web, Connect).
export { errorInterceptor, toConnectError } from "./error-interceptor.js";
export { useConnectDecodeErrorStatus, useSpecGrpcMessageEncoding } from "./grpc-message-encoding.js";
export { createHealthService, type HealthSource } from "./health-service.js";
export { createReflection } from "./reflection-service.js";
