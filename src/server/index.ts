// Public surface of the server: the composition root.
export { createServer, type ServerDependencies, type StreamgateServer } from "./streamgate-server.js";
