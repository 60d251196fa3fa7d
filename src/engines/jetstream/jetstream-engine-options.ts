// Options of the JetStream engine, their defaults, and resolveJetStreamEngineOptions().
import { errors } from "../../errors/index.js";
import { MAX_TRACKED } from "./pull-sizing.js";

/** Options of {@link createJetStreamEngine}. */
export interface JetStreamEngineOptions {
  /** NATS server URL(s), e.g. `nats://127.0.0.1:4222`; several comma-separated URLs fail over. */
  natsUrl: string;
  /**
   * Prefix of every JetStream resource this engine creates (streams, consumers, the catalog KV
   * bucket). Default "streamgate". Instances that share a namespace share topics and subscriptions;
   * tests give each engine its own namespace to isolate it on one nats-server.
   */
  namespace?: string;
  /**
   * How long a topic without message_retention_duration keeps its messages, in ms. Default 7 days,
   * as in the embedded engine: Pub/Sub's longest subscription retention.
   */
  defaultRetentionMs?: number;
  /**
   * Stream replicas (R1 on a single server, R3 on a 3-node cluster). Default 1. Applies to topic
   * streams and the catalog bucket created by this instance.
   */
  replicas?: number;
  /** How long to wait for the first connection to NATS, in ms. Default 5000. */
  connectTimeoutMs?: number;
  /**
   * How often this instance looks for subscriptions idle past their expiration policy's ttl and
   * deletes them, in ms. Default 60000. Every instance sweeps; deletes are compare-and-set, so
   * concurrent sweeps are harmless.
   */
  expirationSweepIntervalMs?: number;
  /**
   * Least time between two writes of a subscription's last-activity time to the catalog by this
   * instance, in ms. Default 60000 (expiration ttls are at least a day).
   */
  activityWriteIntervalMs?: number;
  /**
   * The largest message streamgate accepts (the server's `--max-message-bytes`), in bytes. When
   * set, the engine refuses to start if nats-server's `max_payload` is lower (the error names both
   * values and the fixes). Default null: not checked (a larger publish fails when it is sent).
   */
  maxMessageBytes?: number | null;
  /**
   * How long the cluster-wide lease book keeps a delivery's record after its last write, in ms:
   * an ack id older than this whose message is still leased elsewhere is no longer recognised as
   * stale on an instance that did not deliver it. Default 600000 (10 minutes, Pub/Sub's longest
   * ack deadline). The book holds one small entry per redelivered message and per message acked
   * through it (exactly-once acks, acks sent to another instance than the delivering one) for
   * this long: lower it when such acks run at many thousands per second.
   */
  deliveryRecordTtlMs?: number;
  /**
   * How long an instance's hold on an ordered subscription lasts without renewal, in ms (renewed
   * every second). One instance at a time delivers an ordered subscription; when it dies another
   * takes over after this long (then waits for the dead one's deliveries, redelivered after the
   * ack deadline). Default 5000.
   */
  orderingLeaseMs?: number;
  /**
   * Most messages one subscription's worker holds on this instance (ready, held back behind their
   * key, or leased), so a deep backlog is not pulled into memory. Default 10000.
   */
  maxTrackedMessages?: number;
  /** The clock (ms since the epoch) for expiration and subscription retention. Default Date.now; tests inject one. */
  now?: () => number;
}

/** {@link JetStreamEngineOptions} with every default filled in. */
export type ResolvedJetStreamEngineOptions = Required<Omit<JetStreamEngineOptions, "maxMessageBytes">> & {
  maxMessageBytes: number | null;
};

/** The documented defaults. */
export const JETSTREAM_ENGINE_DEFAULTS = {
  namespace: "streamgate",
  defaultRetentionMs: 7 * 86_400_000,
  replicas: 1,
  connectTimeoutMs: 5_000,
  expirationSweepIntervalMs: 60_000,
  activityWriteIntervalMs: 60_000,
  deliveryRecordTtlMs: 600_000,
  orderingLeaseMs: 5_000,
  maxTrackedMessages: MAX_TRACKED,
} as const;

/**
 * Fills defaults and rejects invalid values with a message naming the option.
 * @throws StreamgateError INVALID_ARGUMENT.
 */
export function resolveJetStreamEngineOptions(options: JetStreamEngineOptions): ResolvedJetStreamEngineOptions {
  const resolved: ResolvedJetStreamEngineOptions = {
    natsUrl: options.natsUrl,
    namespace: options.namespace ?? JETSTREAM_ENGINE_DEFAULTS.namespace,
    defaultRetentionMs: options.defaultRetentionMs ?? JETSTREAM_ENGINE_DEFAULTS.defaultRetentionMs,
    replicas: options.replicas ?? JETSTREAM_ENGINE_DEFAULTS.replicas,
    connectTimeoutMs: options.connectTimeoutMs ?? JETSTREAM_ENGINE_DEFAULTS.connectTimeoutMs,
    expirationSweepIntervalMs: options.expirationSweepIntervalMs ?? JETSTREAM_ENGINE_DEFAULTS.expirationSweepIntervalMs,
    activityWriteIntervalMs: options.activityWriteIntervalMs ?? JETSTREAM_ENGINE_DEFAULTS.activityWriteIntervalMs,
    maxMessageBytes: options.maxMessageBytes ?? null,
    deliveryRecordTtlMs: options.deliveryRecordTtlMs ?? JETSTREAM_ENGINE_DEFAULTS.deliveryRecordTtlMs,
    orderingLeaseMs: options.orderingLeaseMs ?? JETSTREAM_ENGINE_DEFAULTS.orderingLeaseMs,
    maxTrackedMessages: options.maxTrackedMessages ?? JETSTREAM_ENGINE_DEFAULTS.maxTrackedMessages,
    now: options.now ?? Date.now,
  };
  const maxMessageBytes = resolved.maxMessageBytes;
  if (maxMessageBytes !== null && (!Number.isInteger(maxMessageBytes) || maxMessageBytes < 1)) {
    throw errors.invalidArgument("maxMessageBytes", "must be a positive integer number of bytes");
  }
  if (typeof resolved.natsUrl !== "string" || resolved.natsUrl.trim() === "") {
    throw errors.invalidArgument("natsUrl", "must name a NATS server, e.g. nats://127.0.0.1:4222");
  }
  if (typeof resolved.namespace !== "string" || !/^[A-Za-z0-9_-]{1,32}$/.test(resolved.namespace)) {
    throw errors.invalidArgument("namespace", "must be 1-32 characters of A-Z a-z 0-9 _ -");
  }
  if (typeof resolved.now !== "function") throw errors.invalidArgument("now", "must be a function returning ms");
  if (!Number.isInteger(resolved.activityWriteIntervalMs) || resolved.activityWriteIntervalMs < 0) {
    throw errors.invalidArgument("activityWriteIntervalMs", "must be a non-negative integer number of ms");
  }
  for (const key of [
    "defaultRetentionMs",
    "connectTimeoutMs",
    "expirationSweepIntervalMs",
    "deliveryRecordTtlMs",
    "maxTrackedMessages",
  ] as const) {
    const value = resolved[key];
    if (!Number.isInteger(value) || value <= 0) {
      throw errors.invalidArgument(key, `must be a positive integer number of ms, got ${String(value)}`);
    }
  }
  if (!Number.isInteger(resolved.orderingLeaseMs) || resolved.orderingLeaseMs < 3_000) {
    throw errors.invalidArgument(
      "orderingLeaseMs",
      "must be an integer number of ms, at least 3000 (it is renewed every second)",
    );
  }
  if (![1, 3, 5].includes(resolved.replicas)) throw errors.invalidArgument("replicas", "must be 1, 3 or 5");
  return resolved;
}
