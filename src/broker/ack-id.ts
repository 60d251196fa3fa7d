// Ack ids: opaque strings naming one delivery (subscription generation, dispatch epoch, offset, attempt).
import { errors } from "../errors/index.js";

/** What an ack id encodes. */
export interface AckIdParts {
  /** The subscription's generation: unique per subscription instance, never reused after deletion. */
  subscriptionId: number;
  /** The dispatcher's epoch: changes on restart and on seek, so older deliveries become stale. */
  epoch: number;
  /** The message's offset in the topic. */
  offset: number;
  /** The 1-based delivery attempt this ack id was issued for. */
  attempt: number;
}

const PART = /^[0-9a-z]{1,11}$/;

/** Encodes a delivery as a compact opaque string (base-36 fields joined by "."). */
export function encodeAckId(parts: AckIdParts): string {
  return `${parts.subscriptionId.toString(36)}.${parts.epoch.toString(36)}.${parts.offset.toString(36)}.${parts.attempt.toString(36)}`;
}

/**
 * Decodes an ack id.
 * @throws StreamgateError INVALID_ARGUMENT naming the ack id when it is malformed.
 */
export function decodeAckId(ackId: string): AckIdParts {
  const fields = typeof ackId === "string" ? ackId.split(".") : [];
  if (fields.length !== 4) throw invalidAckId(ackId, "is malformed");
  // NaN for a malformed field, which no check below lets through (every ack of every call passes here).
  const subscriptionId = ackIdPart(fields[0]!);
  const epoch = ackIdPart(fields[1]!);
  const offset = ackIdPart(fields[2]!);
  const attempt = ackIdPart(fields[3]!);
  const safe =
    Number.isSafeInteger(subscriptionId) &&
    Number.isSafeInteger(epoch) &&
    Number.isSafeInteger(offset) &&
    Number.isSafeInteger(attempt);
  if (!safe || offset < 1 || attempt < 1) throw invalidAckId(ackId, "is malformed");
  return { subscriptionId, epoch, offset, attempt };
}

/** One base-36 field of an ack id, or NaN when it is not 1 to 11 of `[0-9a-z]`. */
function ackIdPart(field: string): number {
  return PART.test(field) ? Number.parseInt(field, 36) : Number.NaN;
}

/** The error for an ack id that does not belong to the subscription it was sent to. */
export function invalidAckId(ackId: string, problem: string) {
  return errors.invalidArgument("ack_ids", `ack id ${JSON.stringify(ackId)} ${problem}`);
}
