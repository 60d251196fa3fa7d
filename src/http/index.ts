// Public surface of the HTTP edge: the one-port listener (HTTP/1.1 + h2c + TLS), TLS helpers, and the JSON/error writers every HTTP-facing component shares.

export {
  type ConnectionOrigin,
  connectionOrigin,
  type RequestClient,
  requestClient,
  requestClientAddress,
  streamClient,
} from "./client-address.js";
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
  type ListenerProxyProtocol,
  type ListenerTlsOptions,
  type RequestHandler,
  type StreamRoute,
} from "./listener.js";
export { type ProxyProtocolOptions, readProxyHeader } from "./proxy-accept.js";
export {
  type ProxyHeader,
  ProxyHeaderRejection,
  type ProxyParseResult,
  type ProxyTlvs,
  parseProxyHeader,
} from "./proxy-protocol.js";
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
export { createRouter, type Route, type RouteMatch, type RouteParams, type Router } from "./router.js";
export { type ClientCertificate, clientCertificate, clientCertificateSubject } from "./tls-client-certificate.js";
export {
  type ClientAddressSource,
  forwardedHops,
  NO_TRUSTED_PROXIES,
  parseTrustedProxies,
  type TrustedProxies,
  verifiedChain,
} from "./trusted-proxies.js";
