// A message a dispatcher has read from the log and not yet seen acked, and the consumers it is leased to.
import type { StoredMessage } from "./types.js";

/** Where a tracked message stands in its subscription. */
export const TrackedState = {
  /** Waiting behind an earlier message of its ordering key. */
  held: "held",
  /** Deliverable now. */
  ready: "ready",
  /** Nacked or expired, waiting out its retry backoff. */
  delayed: "delayed",
  /** Leased to a consumer until its deadline. */
  leased: "leased",
  /** Acked, dead-lettered or dropped; no longer tracked. */
  done: "done",
} as const;
export type TrackedState = (typeof TrackedState)[keyof typeof TrackedState];

/** One unacked message in memory (leases are never persisted). */
export interface TrackedMessage {
  readonly message: StoredMessage;
  /** Data plus attribute bytes, counted against flow control. */
  readonly size: number;
  state: TrackedState;
  /** Deliveries so far; the next delivery is attempt + 1. */
  attempt: number;
  /** Bumped on every lease or redelivery change; timer items with an older version are stale. */
  version: number;
  /** The lease's deadline or the backoff's end, per state, in ms since the epoch. */
  deadlineMs: number;
  /** The consumer holding the lease, while leased. */
  holder: Consumer | null;
}

/** Room a consumer has for more messages right now. */
export interface ConsumerCapacity {
  /** More messages it may take; 0 = none. */
  messages: number;
  /** More bytes it may take; Infinity = no limit. */
  bytes: number;
  /** True when nothing is outstanding: one message is allowed even if larger than `bytes`. */
  idle: boolean;
}

/** A taker of leases: a streaming consumer with flow control, or a waiting unary pull. */
export interface Consumer {
  /** Lease length of messages delivered to this consumer, in ms. */
  readonly leaseMs: number;
  /**
   * True for a stream: while messages of an ordering key are leased to it, the key's next ones go
   * to it only (Pub/Sub keeps a key on one stream, and a client orders what one stream delivers).
   */
  readonly keyAffinity: boolean;
  capacity(): ConsumerCapacity;
  /** Hands over newly leased messages (the dispatcher has already set their lease). */
  accept(messages: TrackedMessage[]): void;
  /** A message leased to this consumer was acked, nacked, expired or dropped. */
  release(message: TrackedMessage): void;
}
