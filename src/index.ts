// streamgate's programmatic surface: embed the server in another Node.js process.
export {
  defaultServerOptions,
  resolveServerOptions,
  type ServerOptions,
  serverOptionsFromEnv,
} from "./config/index.js";
export type { Engine } from "./engines/engine.js";
export { Code, StreamgateError } from "./errors/index.js";
export { createServer, type StreamgateServer } from "./server/index.js";
