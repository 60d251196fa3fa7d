// Options of the embedded (SQLite) engine, their defaults, and resolveEmbeddedEngineOptions().
import { errors } from "../../errors/index.js";

/** Options of {@link createEmbeddedEngine}. */
export interface EmbeddedEngineOptions {
  /** Directory holding `streamgate.db` (created if missing). One process per directory: it is locked. */
  dataDir: string;
  /**
   * fsync every commit (SQLite `synchronous=FULL`). Default false: WAL with `synchronous=NORMAL`,
   * which survives a process crash (kill -9) because every commit is in the OS page cache, but an
   * OS crash or power loss can lose the last transactions before a checkpoint. Set true when an
   * acknowledged publish must survive power loss; group commit keeps the cost to one fsync per
   * event-loop turn.
   */
  syncEveryCommit?: boolean;
  /**
   * How often the background sweep enforces retention (age and size), purges deleted topics and
   * expires subscriptions and snapshots, in ms. Default 60 000: retention is measured in minutes
   * to days, so a minute of slack costs nothing and keeps the sweep's work off the hot path.
   */
  retentionCheckIntervalMs?: number;
  /**
   * How long a topic without message_retention_duration keeps its messages, in ms. Default 7 days:
   * Pub/Sub's longest subscription retention, so any subscription can replay what it may still
   * need.
   */
  defaultRetentionMs?: number;
  /** Clock in ms since the epoch. Default `Date.now`; tests inject a fake one. */
  now?: () => number;
}

/** {@link EmbeddedEngineOptions} with every default filled in. */
export type ResolvedEmbeddedEngineOptions = Required<EmbeddedEngineOptions>;

/** The documented defaults. */
export const EMBEDDED_ENGINE_DEFAULTS = {
  syncEveryCommit: false,
  retentionCheckIntervalMs: 60_000,
  defaultRetentionMs: 7 * 86_400_000,
} as const;

/**
 * Fills defaults and rejects invalid values with a message naming the option.
 * @throws StreamgateError INVALID_ARGUMENT.
 */
export function resolveEmbeddedEngineOptions(options: EmbeddedEngineOptions): ResolvedEmbeddedEngineOptions {
  const resolved: ResolvedEmbeddedEngineOptions = {
    dataDir: options.dataDir,
    syncEveryCommit: options.syncEveryCommit ?? EMBEDDED_ENGINE_DEFAULTS.syncEveryCommit,
    retentionCheckIntervalMs: options.retentionCheckIntervalMs ?? EMBEDDED_ENGINE_DEFAULTS.retentionCheckIntervalMs,
    defaultRetentionMs: options.defaultRetentionMs ?? EMBEDDED_ENGINE_DEFAULTS.defaultRetentionMs,
    now: options.now ?? Date.now,
  };
  if (typeof resolved.dataDir !== "string" || resolved.dataDir === "") {
    throw errors.invalidArgument("dataDir", "must be a non-empty directory path");
  }
  if (typeof resolved.syncEveryCommit !== "boolean")
    throw errors.invalidArgument("syncEveryCommit", "must be a boolean");
  for (const key of ["retentionCheckIntervalMs", "defaultRetentionMs"] as const) {
    const value = resolved[key];
    if (!Number.isInteger(value) || value <= 0) {
      throw errors.invalidArgument(key, `must be a positive integer number of ms, got ${String(value)}`);
    }
  }
  if (typeof resolved.now !== "function") throw errors.invalidArgument("now", "must be a function returning ms");
  return resolved;
}
