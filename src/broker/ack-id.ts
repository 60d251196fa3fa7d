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

/** Most base-36 digits in one field (36^11 > 2^53, so a longer field can never be a safe integer). */
const MAX_FIELD_DIGITS = 11;
const DOT = 46;

/** The first two fields of the ack ids of one subscription generation and epoch, with their separators. */
export function ackIdPrefix(subscriptionId: number, epoch: number): string {
  return `${subscriptionId.toString(36)}.${epoch.toString(36)}.`;
}

/**
 * Encodes a delivery as a compact opaque string (base-36 fields joined by ".").
 * @param prefix - `ackIdPrefix(parts.subscriptionId, parts.epoch)`, when the caller keeps it.
 */
export function encodeAckId(parts: AckIdParts, prefix = ackIdPrefix(parts.subscriptionId, parts.epoch)): string {
  return `${prefix}${parts.offset.toString(36)}.${parts.attempt.toString(36)}`;
}

/** Value of a base-36 digit (0-9, a-z) from its char code, or -1. */
function digitOf(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 97 && code <= 122) return code - 87;
  return -1;
}

/**
 * Decodes an ack id: four fields of 1 to 11 base-36 digits joined by ".", each a safe integer, offset and
 * attempt at least 1. One pass over the characters (an Acknowledge carries up to thousands of ids).
 * @throws StreamgateError INVALID_ARGUMENT naming the ack id when it is malformed.
 */
export function decodeAckId(ackId: string): AckIdParts {
  if (typeof ackId !== "string") throw invalidAckId(ackId, "is malformed");
  const fields = [0, 0, 0, 0];
  let field = 0;
  let digits = 0;
  let value = 0;
  for (let index = 0; index < ackId.length; index++) {
    const code = ackId.charCodeAt(index);
    if (code === DOT) {
      if (digits === 0 || field === 3) throw invalidAckId(ackId, "is malformed");
      fields[field++] = value;
      value = 0;
      digits = 0;
      continue;
    }
    const digit = digitOf(code);
    if (digit < 0 || ++digits > MAX_FIELD_DIGITS) throw invalidAckId(ackId, "is malformed");
    value = value * 36 + digit;
  }
  if (field !== 3 || digits === 0) throw invalidAckId(ackId, "is malformed");
  fields[3] = value;
  const [subscriptionId, epoch, offset, attempt] = fields as [number, number, number, number];
  if (!fields.every(Number.isSafeInteger) || offset < 1 || attempt < 1) throw invalidAckId(ackId, "is malformed");
  return { subscriptionId, epoch, offset, attempt };
}

/** The error for an ack id that does not belong to the subscription it was sent to. */
export function invalidAckId(ackId: string, problem: string) {
  return errors.invalidArgument("ack_ids", `ack id ${JSON.stringify(ackId)} ${problem}`);
}
