// Public surface of the server: the composition root, and the mTLS client certificate of a request.

export { type ClientCertificate, clientCertificate, clientCertificateSubject } from "../http/index.js";
export { createServer, type ServerDependencies, type StreamgateServer } from "./streamgate-server.js";
