// Public surface of observability: logging and debug tracing.

export {
  type ConnectionLifetime,
  type ConnectionRegistry,
  createConnectionRegistry,
  liveConnections,
  StreamTransport,
} from "./connection-registry.js";
export { createLogger, isTraced, type Logger } from "./logger.js";
