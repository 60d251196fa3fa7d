// Public surface of `streamgate/client`: a typed client for Node 20 and browsers (fetch, WebSocket, TextDecoder only).
export { createStreamClient } from "./stream-client.js";
export { StreamClientError } from "./stream-client-error.js";
export {
  type PublishMessage,
  type PublishResult,
  type ReconnectOptions,
  type StreamClient,
  type StreamClientOptions,
  type StreamFrom,
  type StreamGap,
  type StreamMessage,
  StreamTransport,
  type SubscribeOptions,
} from "./types.js";
