// Per-ack-id outcomes of Acknowledge and ModifyAckDeadline, answered as Pub/Sub answers them with exactly-once delivery.
import type { AckResult } from "../../broker/ack-result.js";
import { Code, StreamgateError } from "../../errors/index.js";

/** Per-id code of an ack id that names no current delivery (clients report `AckResponses.Invalid`). */
export const PERMANENT_FAILURE_INVALID_ACK_ID = "PERMANENT_FAILURE_INVALID_ACK_ID";
/** Per-id code of an ack the store did not confirm in time (clients retry ids whose code starts `TRANSIENT_`). */
export const TRANSIENT_FAILURE_NOT_CONFIRMED = "TRANSIENT_FAILURE_NOT_CONFIRMED";

/** What one call did with each ack id, malformed ones included. */
export interface AckOutcome {
  /** Applied. */
  applied: string[];
  /** Malformed, of another subscription, or stale: nothing was done. */
  invalid: string[];
  /** Not confirmed durable now; the client may retry. */
  temporaryFailed: string[];
  /** Whether the subscription has exactly-once delivery; null when no id was well formed. */
  exactlyOnce: boolean | null;
  /** The engine's error for the malformed ids, when there were any. */
  malformed: StreamgateError | null;
}

/**
 * Runs an engine acknowledge/modifyAckDeadline over `ackIds`. The engine refuses a whole call for
 * one malformed id (applying nothing); then each id is retried alone, so the well-formed ones still
 * take effect and the malformed ones are reported per id.
 */
export async function settleAckIds(ackIds: string[], call: (ids: string[]) => Promise<AckResult>): Promise<AckOutcome> {
  try {
    return outcome(ackIds, await call(ackIds), [], null);
  } catch (error) {
    if (!isAckIdError(error)) throw error;
    const results: AckResult[] = [];
    const malformed: string[] = [];
    for (const ackId of ackIds) {
      try {
        results.push(await call([ackId]));
      } catch (single) {
        if (!isAckIdError(single)) throw single;
        malformed.push(ackId);
      }
    }
    const merged: AckResult = {
      invalidAckIds: results.flatMap((result) => result.invalidAckIds),
      temporaryFailedAckIds: results.flatMap((result) => result.temporaryFailedAckIds),
      exactlyOnce: results[0]?.exactlyOnce ?? false,
    };
    return outcome(ackIds, merged, malformed, error, results.length > 0);
  }
}

function outcome(
  ackIds: string[],
  result: AckResult,
  malformed: string[],
  error: StreamgateError | null,
  known = true,
): AckOutcome {
  if (malformed.length === 0 && result.invalidAckIds.length === 0 && result.temporaryFailedAckIds.length === 0) {
    // Every id applied (the usual call): no set to build, nothing to filter.
    return {
      applied: ackIds.slice(),
      invalid: [],
      temporaryFailed: result.temporaryFailedAckIds,
      exactlyOnce: known ? result.exactlyOnce : null,
      malformed: error,
    };
  }
  const invalid = [...malformed, ...result.invalidAckIds];
  const failed = new Set([...invalid, ...result.temporaryFailedAckIds]);
  return {
    applied: ackIds.filter((ackId) => !failed.has(ackId)),
    invalid,
    temporaryFailed: result.temporaryFailedAckIds,
    exactlyOnce: known ? result.exactlyOnce : null,
    malformed: error,
  };
}

function isAckIdError(error: unknown): error is StreamgateError {
  return error instanceof StreamgateError && error.code === Code.INVALID_ARGUMENT && error.details.field === "ack_ids";
}

/**
 * The unary answer for an exactly-once subscription with failed ids: INVALID_ARGUMENT whose
 * ErrorInfo (reason `EXACTLY_ONCE_ACKID_FAILURE`, as Pub/Sub's) maps each failed ack id to its code, which
 * the client libraries turn into per-message results (`ackWithResponse()`).
 */
export function exactlyOnceFailure(outcome: AckOutcome): StreamgateError | null {
  if (outcome.invalid.length === 0 && outcome.temporaryFailed.length === 0) return null;
  const metadata: Record<string, string> = {};
  for (const ackId of outcome.invalid) metadata[ackId] = PERMANENT_FAILURE_INVALID_ACK_ID;
  for (const ackId of outcome.temporaryFailed) metadata[ackId] = TRANSIENT_FAILURE_NOT_CONFIRMED;
  return new StreamgateError(
    Code.INVALID_ARGUMENT,
    "Some acknowledgement ids in the request were invalid. This could be because the acknowledgement ids have " +
      "expired (the message was redelivered) or the acknowledgement ids were malformed.",
    { reason: "EXACTLY_ONCE_ACKID_FAILURE", details: metadata },
  );
}
