// The engine chain's metrics link: every publish and delivery, whatever the transport, is counted (and publishes carry the trace context).
import type { PrincipalContext } from "../auth/principal-context.js";
import type { ReceivedMessage } from "../broker/types.js";
import type { DeliveryStream } from "../engines/engine.js";
import type { EngineInterceptor } from "../engines/engine-chain.js";
import type { Logger } from "./logger.js";
import type { ServerMetrics } from "./metrics.js";
import type { CounterSeries, HistogramSeries } from "./paged-metrics.js";
import { errorReason } from "./stream-telemetry.js";
import { type TracingContext, traceLogFields, withTraceAttributes } from "./trace-context.js";

/** The name of the metrics link of the engine chain. */
export const METRICS_INTERCEPTOR = "metrics";

/** The metric series one delivery path of one subscription records into (resolved per stream or per pull). */
interface DeliverySeries {
  delivered: CounterSeries;
  latency: HistogramSeries;
}

function deliverySeries(metrics: ServerMetrics, subscription: string, path: string): DeliverySeries {
  return {
    delivered: metrics.delivered.labels({ subscription, path }),
    latency: metrics.deliveryLatency.labels({ path }),
  };
}

/** One counter add per batch; one clock read per batch and a bucket add per first delivery. */
function observeDeliveries(series: DeliverySeries, batch: ReceivedMessage[]): void {
  if (batch.length === 0) return;
  series.delivered.inc(batch.length);
  const now = Date.now();
  for (const received of batch) {
    if (received.deliveryAttempt <= 1) {
      series.latency.observe(Math.max(0, now - received.message.publishTimeMs) / 1000);
    }
  }
}

/**
 * The metrics link: publish, pull and openStream counted, publishes traced; every other method passes through.
 * It reads the request's trace context on each publish, and its principal and trace when a stream opens.
 */
export function metricsInterceptor(
  metrics: ServerMetrics,
  logger?: Logger,
): EngineInterceptor<PrincipalContext & TracingContext> {
  return {
    name: METRICS_INTERCEPTOR,
    intercept: (next, context) => ({
      async publish(topic, messages) {
        // Every publish path (gRPC, REST, Events, WebSocket, chat) meets here: the request's W3C trace
        // context becomes the `traceparent` attribute that deliveries carry.
        const refs = await next.publish(topic, withTraceAttributes(messages, context.trace));
        metrics.published.inc({ topic }, refs.length);
        return refs;
      },
      async pull(name, options) {
        const received = await next.pull(name, options);
        if (received.length > 0) observeDeliveries(deliverySeries(metrics, name, "pull"), received);
        return received;
      },
      openStream(name, options) {
        const stream = next.openStream(name, options);
        const path = options.clientId === "push" ? "push" : "stream";
        const series = deliverySeries(metrics, name, path);
        const opened = streamLog(logger, context, name, path === "push" ? "push" : "streaming-pull", options.clientId);
        const counted: DeliveryStream = {
          setFlowControl: (messages, bytes) => stream.setFlowControl(messages, bytes),
          setAckDeadline: (seconds) => stream.setAckDeadline(seconds),
          async *[Symbol.asyncIterator]() {
            let messagesSent = 0;
            let reason = "ended";
            try {
              for await (const batch of stream) {
                observeDeliveries(series, batch);
                messagesSent += batch.length;
                yield batch;
              }
            } catch (error) {
              reason = errorReason(error);
              throw error;
            } finally {
              // Also reached through return(): the consumer (the StreamingPull call) stopped, its client left.
              if (reason === "ended" && options.signal.aborted) reason = "closed";
              opened?.closed(reason, messagesSent);
            }
          },
        };
        return counted;
      },
    }),
  };
}

/**
 * Open/close lines of a delivery stream: StreamingPull at info (a long-lived client stream, like the
 * live streams), push at debug (one internal stream per push subscription, not a client).
 */
function streamLog(
  logger: Logger | undefined,
  context: PrincipalContext & TracingContext,
  subscription: string,
  transport: string,
  clientId: string,
) {
  if (logger === undefined) return undefined;
  const level = transport === "push" ? "debug" : "info";
  const principal = context.principal;
  const fields: Record<string, unknown> = { transport, subscription, clientId, ...traceLogFields(context.trace) };
  if (principal !== undefined) fields.principal = principal.id;
  const startedMs = Date.now();
  logger[level](fields, "stream opened");
  return {
    closed(reason: string, messagesSent: number) {
      logger[level]({ ...fields, reason, durationMs: Date.now() - startedMs, messagesSent }, "stream closed");
    },
  };
}
