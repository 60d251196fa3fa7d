// Public surface of the upstream forwarders, shared by the tunnel agent and the server's direct-upstream rules.
export {
  endToEndHeaders,
  formatGrpcTimeout,
  type HeaderEntry,
  headerEntries,
  type ResponseHeadInit,
  type ResponseSink,
  type UpstreamExchange,
  WRITTEN,
} from "./exchange.js";
export { DEFAULT_MAX_MESSAGE_BYTES, GrpcMessageScanner } from "./grpc-message-scanner.js";
export type { UpstreamTlsOptions } from "./http2-sessions.js";
export {
  createUpstreamForwarder,
  type UpstreamForwarder,
  type UpstreamForwarderOptions,
} from "./upstream-forwarder.js";
export type { AddressStatus } from "./upstream-pool.js";
