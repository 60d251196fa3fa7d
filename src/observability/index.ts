// Public surface of observability: logging, metrics, connection counts, stream telemetry, trace context and debug tracing.

export {
  type ConnectionLifetime,
  type ConnectionRegistry,
  createConnectionRegistry,
  liveConnections,
  StreamTransport,
} from "./connection-registry.js";
export { createLogger, isTraced, type Logger } from "./logger.js";
export { createServerMetrics, MAX_SCRAPED_SUBSCRIPTIONS, type MetricsSources, type ServerMetrics } from "./metrics.js";
export { METRICS_INTERCEPTOR, metricsInterceptor } from "./metrics-interceptor.js";
export {
  createStreamTelemetry,
  ObservedTransport,
  StreamCloseReason,
  type StreamTelemetry,
} from "./stream-telemetry.js";
export {
  childTraceparent,
  currentTraceContext,
  formatTraceparent,
  newSpanId,
  newTraceId,
  parseTraceparent,
  runWithTraceContext,
  TRACEPARENT_ATTRIBUTE,
  TRACESTATE_ATTRIBUTE,
  type TraceContext,
  type TraceParent,
  type TracingContext,
  traceContextFromHeaders,
  traceLogFields,
  tracingContext,
  withTraceAttributes,
} from "./trace-context.js";
