// Public surface of the server: the composition root, and the mTLS client certificate of a request.
export { createServer, type ServerDependencies, type StreamgateServer } from "./streamgate-server.js";
export { type ClientCertificate, clientCertificate, clientCertificateSubject } from "./tls-client-certificate.js";
