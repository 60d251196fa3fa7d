// A JetStream delivery's `$JS.ACK` reply subject read once, by index, into what the worker and its ack ids need; and those ack ids read back the same way.
import type { AckIdParts } from "./ack-id.js";

/** What the worker keeps of a delivery's reply subject. */
export interface DeliveryReply {
  /** JetStream's delivery count: Pub/Sub's delivery attempt. */
  readonly deliveryCount: number;
  /** The message's stream sequence (the topic offset). */
  readonly sequence: number;
  /** The delivery's timestamp in ns, as JetStream wrote it (beyond 2^53: kept as text). */
  readonly timestampNs: string;
  /**
   * `<delivery count>.<stream seq>.<consumer seq>.<timestamp ns>`: the delivery's part of an ack id
   * (see encodeJetStreamAckId), a slice of the subject rather than four numbers formatted again.
   */
  readonly ackIdTail: string;
}

/** Token counts of the two `$JS.ACK` forms: v1 `$JS.ACK.<stream>.<consumer>.<5 numbers>` and v2 with domain, account hash and a trailing token. */
const V1_TOKENS = 9;
const V2_TOKENS = 12;
const ZERO = 48;
const NINE = 57;
/** Dot positions of the subject being read (a subject has at most {@link V2_TOKENS} − 1 dots; more is not a delivery). */
const dots = new Int32Array(V2_TOKENS);

/** The decimal number in `text[from, to)`, or -1 when it is empty or not all digits. */
function digits(text: string, from: number, to: number): number {
  if (from >= to) return -1;
  let value = 0;
  for (let index = from; index < to; index++) {
    const code = text.charCodeAt(index);
    if (code < ZERO || code > NINE) return -1;
    value = value * 10 + (code - ZERO);
  }
  return value;
}

/**
 * Reads `$JS.ACK.<stream>.<consumer>.<delivery count>.<stream seq>.<consumer seq>.<timestamp>.<pending>`
 * (or its v2 form `$JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<…same five…>.<token>`) without
 * splitting it: one pass for the dots, the numbers read in place. Null when `reply` is neither form,
 * or a delivery count, sequence or consumer sequence is not a positive number.
 */
export function parseDeliveryReply(reply: string): DeliveryReply | null {
  if (!reply.startsWith("$JS.ACK.")) return null;
  let count = 0;
  for (let index = reply.indexOf(".", 8); index !== -1; index = reply.indexOf(".", index + 1)) {
    if (count === V2_TOKENS) return null;
    dots[count++] = index;
  }
  // Dots after "$JS.ACK.": 6 in the v1 form, 9 in v2; the five numbers follow the stream and consumer.
  const first = count === V1_TOKENS - 3 ? 1 : count === V2_TOKENS - 3 ? 3 : -1;
  if (first === -1) return null;
  const countAt = dots[first]! + 1;
  const deliveryCount = digits(reply, countAt, dots[first + 1]!);
  const sequence = digits(reply, dots[first + 1]! + 1, dots[first + 2]!);
  const consumerSequence = digits(reply, dots[first + 2]! + 1, dots[first + 3]!);
  const timestampEnd = dots[first + 4]!;
  if (
    deliveryCount < 1 ||
    sequence < 1 ||
    consumerSequence < 1 ||
    digits(reply, dots[first + 3]! + 1, timestampEnd) < 0
  ) {
    return null;
  }
  return {
    deliveryCount,
    sequence,
    timestampNs: reply.slice(dots[first + 3]! + 1, timestampEnd),
    ackIdTail: reply.slice(countAt, timestampEnd),
  };
}

/** Digits allowed per number of an ack id's delivery part, as decodeJetStreamAckId's pattern allows them. */
const MAX_DIGITS = [12, 15, 15, 20] as const;

/**
 * The parts of `ackId` when it is `<prefix><delivery count>.<stream seq>.<consumer seq>.<timestamp ns>`
 * with `prefix` = `<subscription id>-<generation>.` (an id of the subscription's current generation,
 * the usual case), read by hand; null for anything else, which decodeJetStreamAckId then decodes or
 * refuses. What this accepts, decodeJetStreamAckId accepts with the same parts.
 */
export function readCurrentAckId(
  ackId: string,
  prefix: string,
  subscriptionId: string,
  generation: number,
): AckIdParts | null {
  // The pattern allows generations of up to 9 digits (subscription ids are the engine's own, always valid).
  if (typeof ackId !== "string" || generation >= 1e9 || !ackId.startsWith(prefix)) return null;
  const numbers = [0, 0, 0];
  let from = prefix.length;
  for (let index = 0; index < 3; index++) {
    const dot = ackId.indexOf(".", from);
    if (dot === -1 || dot - from > MAX_DIGITS[index]!) return null;
    const value = digits(ackId, from, dot);
    if (value < 0) return null;
    numbers[index] = value;
    from = dot + 1;
  }
  const length = ackId.length - from;
  if (length > MAX_DIGITS[3] || digits(ackId, from, ackId.length) < 0) return null;
  const [deliveryCount, sequence, consumerSequence] = numbers as [number, number, number];
  if (deliveryCount < 1 || sequence < 1) return null;
  return { subscriptionId, generation, deliveryCount, sequence, consumerSequence, timestampNs: ackId.slice(from) };
}
