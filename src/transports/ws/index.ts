// Public surface of the WebSocket transport (GET /v1/ws).
export { CLOSE_TRY_AGAIN_LATER } from "./ws-connection.js";
export {
  createWebSocketEndpoint,
  WEBSOCKET_PATH,
  type WebSocketEndpoint,
  type WebSocketEndpointOptions,
} from "./ws-endpoint.js";
export { type ClientFrame, parseClientFrame } from "./ws-frames.js";
