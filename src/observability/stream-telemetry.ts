// Logs and metrics of live streams: wraps the stream hub once per transport, so every subscription is observed.
import { currentPrincipal } from "../auth/principal-context.js";
import type { StreamPosition } from "../broker/types.js";
import type { StreamHub } from "../streams/types.js";
import type { Logger } from "./logger.js";
import type { ServerMetrics } from "./metrics.js";
import { ObservedSubscription } from "./observed-subscription.js";
import { currentTraceContext } from "./trace-context.js";

/** Transports whose live streams are observed; the value is the `transport` of log lines and metrics. */
export const ObservedTransport = {
  /** Server-Sent Events. */
  sse: "sse",
  /** Long poll on GET …/events?wait (logged at debug: one stream per poll). */
  longPoll: "long-poll",
  /** One subscription of a WebSocket connection. */
  websocket: "websocket",
  /** streamgate.v1.Events Subscribe, and each subscription of a Connect stream. */
  grpc: "grpc",
  /** chat.ChatService/ChatStream. */
  chat: "chat",
} as const;
export type ObservedTransport = (typeof ObservedTransport)[keyof typeof ObservedTransport];

/** Why a live stream ended, as logged in `reason`. */
export const StreamCloseReason = {
  /** The client left (the subscription's signal aborted, or the transport stopped reading it). */
  closed: "closed",
  /** The feed ended on its own. */
  ended: "ended",
  /** The server drained or shut down and ended the stream (the client is told where to resume). */
  shutdown: "shutdown",
} as const;

export interface StreamTelemetry {
  /** `hub` with each subscription logged (open, close) and counted as `transport`. */
  observe(hub: StreamHub, transport: ObservedTransport): StreamHub;
}

/** Creates the stream telemetry of one server. */
export function createStreamTelemetry(
  logger: Logger,
  metrics: ServerMetrics,
  /** True once the server drains or closes: streams ended then are logged with reason `shutdown`. Default: never. */
  shuttingDown: () => boolean = () => false,
): StreamTelemetry {
  const left = () => (shuttingDown() ? StreamCloseReason.shutdown : StreamCloseReason.closed);
  return {
    observe(hub, transport) {
      return {
        stats: () => hub.stats(),
        close: () => hub.close(),
        async subscribe(options) {
          // Read here, in the request's async context; the pump below may run elsewhere.
          const principal = currentPrincipal();
          const trace = currentTraceContext();
          const subscription = await hub.subscribe(options);
          const fields: Record<string, unknown> = { transport, topic: options.topic };
          if (principal !== undefined) fields.principal = principal.id;
          if (trace !== undefined) fields.trace_id = trace.traceparent.traceId;
          // Per-stream lines at info: a stream is a long-lived, user-visible unit an operator asks about
          // ("why did my client disconnect"). A long poll is one short stream per request: debug, by volume.
          const level = transport === ObservedTransport.longPoll ? "debug" : "info";
          logger[level]({ ...fields, from: describePosition(options.from) }, "stream opened");
          return new ObservedSubscription(subscription, options.signal, {
            // Label children resolved once per stream: the per-page cost is then one increment.
            sent: metrics.streamSent.labels({ topic: options.topic, transport }),
            latency:
              transport === ObservedTransport.longPoll ? null : metrics.deliveryLatency.labels({ path: transport }),
            left,
            errorReason,
            onClose: (outcome) => {
              const line = {
                ...fields,
                reason: outcome.reason,
                durationMs: outcome.durationMs,
                messagesSent: outcome.messagesSent,
                lastOffset: subscription.lastOffset,
              };
              if (outcome.reason === "SLOW_CONSUMER") {
                metrics.slowClientsDropped.inc({ transport });
                logger.warn(line, "stream closed");
              } else logger[level](line, "stream closed");
            },
          });
        },
      };
    },
  };
}

/** The `reason` a log line gives for a stream that ended with `error`: its StreamgateError reason, else the error's name. */
export function errorReason(error: unknown): string {
  if (typeof error === "object" && error !== null && "reason" in error && typeof error.reason === "string") {
    return error.reason;
  }
  return error instanceof Error ? error.name : "ERROR";
}

function describePosition(from: StreamPosition): string {
  if (from.kind === "after") return `after:${from.offset}`;
  if (from.kind === "time") return `time:${new Date(from.timeMs).toISOString()}`;
  return from.kind;
}
