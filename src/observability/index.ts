// Public surface of observability: logging and debug tracing.
export { createLogger, isTraced, type Logger } from "./logger.js";
