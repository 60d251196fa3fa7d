// Snapshot lifetime and field-mask updates (Pub/Sub rules, engine-neutral).
import type { Update } from "../engines/engine.js";
import { errors } from "../errors/index.js";
import { DAY_MS, normalizeUpdatePaths, notUpdatable, unknownPath, validateLabels } from "./resource-settings.js";
import type { Snapshot } from "./types.js";

/** A snapshot lives at most 7 days past its subscription's oldest unacked message, as in Pub/Sub. */
export const SNAPSHOT_LIFETIME_MS = 7 * DAY_MS;

/**
 * When a snapshot taken now expires: 7 days after the publish time of the oldest message it
 * holds unacked, or 7 days from now when it holds none.
 */
export function snapshotExpireTimeMs(oldestUnackedPublishTimeMs: number | null, nowMs: number): number {
  return (oldestUnackedPublishTimeMs ?? nowMs) + SNAPSHOT_LIFETIME_MS;
}

/**
 * Applies `update.patch` for `labels` and `expire_time`.
 * @throws StreamgateError INVALID_ARGUMENT for an unknown or immutable path or an invalid value.
 */
export function applySnapshotUpdate(current: Snapshot, update: Update<Snapshot>, nowMs: number): Snapshot {
  const next: Snapshot = { ...current };
  const patch = update.patch ?? {};
  for (const { field, path } of normalizeUpdatePaths(update.paths)) {
    switch (field) {
      case "labels":
        next.labels = validateLabels(patch.labels ?? {});
        break;
      case "expire_time": {
        const expireTimeMs = patch.expireTimeMs;
        if (typeof expireTimeMs !== "number" || !Number.isFinite(expireTimeMs) || expireTimeMs <= nowMs) {
          throw errors.invalidArgument("expire_time", "must be a time in the future");
        }
        next.expireTimeMs = expireTimeMs;
        break;
      }
      case "name":
      case "topic":
        throw notUpdatable(path, "snapshot");
      default:
        throw unknownPath(path, "snapshot");
    }
  }
  return next;
}
