// Public surface of observability: logging, metrics, connection counts and debug tracing.

export {
  type ConnectionLifetime,
  type ConnectionRegistry,
  createConnectionRegistry,
  liveConnections,
  StreamTransport,
} from "./connection-registry.js";
export { instrumentEngine } from "./instrumented-engine.js";
export { createLogger, isTraced, type Logger } from "./logger.js";
export { createServerMetrics, MAX_SCRAPED_SUBSCRIPTIONS, type MetricsSources, type ServerMetrics } from "./metrics.js";
