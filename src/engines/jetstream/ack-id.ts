// Ack ids of the JetStream engine: the subscription, consumer generation and JetStream delivery they name.
import { invalidAckId } from "../../broker/ack-id.js";

/** What a JetStream ack id encodes: enough to rebuild the delivery's `$JS.ACK` reply subject on any instance. */
export interface AckIdParts {
  /** The subscription instance (a deleted and recreated subscription gets a new one). */
  subscriptionId: string;
  /** The consumer generation (bumped by each seek): ids of an older generation are stale. */
  generation: number;
  /** JetStream's delivery count: Pub/Sub's delivery attempt. */
  deliveryCount: number;
  /** The message's stream sequence (the topic offset). */
  sequence: number;
  /** The consumer's delivery sequence. */
  consumerSequence: number;
  /** The delivery's timestamp in ns, as JetStream wrote it. */
  timestampNs: string;
}

type DeliveryParts = Pick<AckIdParts, "deliveryCount" | "sequence" | "consumerSequence" | "timestampNs">;

const ACK_ID = /^([0-9a-z]{4,16})-([0-9]{1,9})\.([0-9]{1,12})\.([0-9]{1,15})\.([0-9]{1,15})\.([0-9]{1,20})$/;

/** Encodes as `<subscription id>-<generation>.<delivery count>.<stream seq>.<consumer seq>.<timestamp ns>`. */
export function encodeJetStreamAckId(parts: AckIdParts): string {
  return `${parts.subscriptionId}-${parts.generation}.${parts.deliveryCount}.${parts.sequence}.${parts.consumerSequence}.${parts.timestampNs}`;
}

/**
 * Decodes an ack id sent to subscription `subscriptionId`.
 * @throws StreamgateError INVALID_ARGUMENT naming the id when it is malformed or of another subscription.
 */
export function decodeJetStreamAckId(ackId: string, subscriptionId: string, subscriptionName: string): AckIdParts {
  const match = typeof ackId === "string" ? ACK_ID.exec(ackId) : null;
  if (match === null) throw invalidAckId(ackId, "is malformed");
  const [, id, generation, deliveryCount, sequence, consumerSequence, timestampNs] = match as unknown as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (id !== subscriptionId) throw invalidAckId(ackId, `does not belong to subscription ${subscriptionName}`);
  const parts = {
    subscriptionId: id,
    generation: Number(generation),
    deliveryCount: Number(deliveryCount),
    sequence: Number(sequence),
    consumerSequence: Number(consumerSequence),
    timestampNs,
  };
  if (parts.deliveryCount < 1 || parts.sequence < 1) throw invalidAckId(ackId, "is malformed");
  return parts;
}

/** Parses `$JS.ACK.<stream>.<consumer>.<delivery count>.<stream seq>.<consumer seq>.<timestamp>.<pending>`. */
export function parseAckSubject(reply: string): DeliveryParts {
  const tokens = reply.split(".");
  // The v2 form adds domain and account hash after "$JS.ACK" (and a trailing token): count from the end.
  const offset = tokens.length >= 12 ? 4 : 2;
  return {
    deliveryCount: Number(tokens[offset + 2]),
    sequence: Number(tokens[offset + 3]),
    consumerSequence: Number(tokens[offset + 4]),
    timestampNs: tokens[offset + 5] ?? "0",
  };
}

/** Rebuilds the reply subject of a delivery, so an instance can ack a message another instance delivered. */
export function ackSubject(stream: string, consumer: string, parts: DeliveryParts): string {
  return `$JS.ACK.${stream}.${consumer}.${parts.deliveryCount}.${parts.sequence}.${parts.consumerSequence}.${parts.timestampNs}.0`;
}
