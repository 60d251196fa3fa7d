// Options of the JetStream engine, their defaults, and resolveJetStreamEngineOptions().
import { errors } from "../../errors/index.js";

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
  /** The clock (ms since the epoch) for expiration and subscription retention. Default Date.now; tests inject one. */
  now?: () => number;
}

/** {@link JetStreamEngineOptions} with every default filled in. */
export type ResolvedJetStreamEngineOptions = Required<JetStreamEngineOptions>;

/** The documented defaults. */
export const JETSTREAM_ENGINE_DEFAULTS = {
  namespace: "streamgate",
  defaultRetentionMs: 7 * 86_400_000,
  replicas: 1,
  connectTimeoutMs: 5_000,
  expirationSweepIntervalMs: 60_000,
  activityWriteIntervalMs: 60_000,
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
    now: options.now ?? Date.now,
  };
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
  for (const key of ["defaultRetentionMs", "connectTimeoutMs", "expirationSweepIntervalMs"] as const) {
    const value = resolved[key];
    if (!Number.isInteger(value) || value <= 0) {
      throw errors.invalidArgument(key, `must be a positive integer number of ms, got ${String(value)}`);
    }
  }
  if (![1, 3, 5].includes(resolved.replicas)) throw errors.invalidArgument("replicas", "must be 1, 3 or 5");
  return resolved;
}
