// Public surface of the HTTP edge: the one-port listener (HTTP/1.1 + h2c + TLS), TLS helpers, and the JSON/error writers every HTTP-facing component shares.
export {
  type AnyRequest,
  type AnyResponse,
  errorJson,
  PayloadTooLargeError,
  rawErrorResponse,
  readBody,
  requestUrl,
  sendError,
  sendJson,
} from "./json-response.js";
export {
  createListener,
  type Listener,
  type ListenerOptions,
  type ListenerTlsOptions,
  type RequestHandler,
} from "./listener.js";
export {
  connectCodeName,
  grpcStatusHeaders,
  type RefusalTarget,
  refuse,
  specPercentEncode,
  type WireProtocol,
  webSocketCloseReason,
  wireProtocolOf,
} from "./refuse.js";
export { type ClientCertificate, clientCertificate, clientCertificateSubject } from "./tls-client-certificate.js";
