// Request limits the Pub/Sub services enforce, with Pub/Sub's own values as defaults.
import { errors } from "../../errors/index.js";

/** Limits applied by the Pub/Sub API layer. */
export interface PubsubLimits {
  /** Largest message (data + attribute keys and values), in bytes. Default 10 MB as in Pub/Sub. */
  maxMessageBytes: number;
  /** Most messages in one Publish request. Default 1000 as in Pub/Sub. */
  maxMessagesPerPublish: number;
  /** Longest a Pull with returnImmediately=false waits for a first message, in ms. Default 20 s (below common 30 s LB idle timeouts). */
  pullWaitMs: number;
}

export const defaultPubsubLimits: PubsubLimits = {
  maxMessageBytes: 10_000_000,
  maxMessagesPerPublish: 1000,
  pullWaitMs: 20_000,
};

/** Clamps a listing page size: default 100, at most 1000, as Pub/Sub does. */
export function pageSize(requested: number): number {
  if (requested <= 0) return 100;
  return Math.min(requested, 1000);
}

/** Pub/Sub accepts 0..600 for modify-ack-deadline (0 = nack). */
export function checkDeadline(seconds: number, field: string): void {
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > 600) {
    throw errors.invalidArgument(field, `must be between 0 and 600 seconds, got ${seconds}`);
  }
}
