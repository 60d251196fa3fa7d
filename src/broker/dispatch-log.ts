// The storage port a subscription dispatcher needs: read its topic's log, persist acks, dead-letter.
import type { MessageInput, StoredMessage, TopicName } from "./types.js";

/** A subscription's persistent ack state, the JetStream way: a floor plus acked offsets above it. */
export interface SubscriptionAckState {
  /** Every offset below it is acked or filtered out. */
  floor: number;
  /** Acked offsets at or above the floor. */
  acked: Iterable<number>;
}

/** One atomic change of a subscription's ack state. */
export interface AckChange {
  /** The new floor (never lower than `previousFloor`). */
  floor: number;
  /** The floor stored before; when `floor` moved, acked offsets below it are dropped. */
  previousFloor: number;
  /** Newly acked offsets at or above `floor`. */
  acked: number[];
}

/** Tells which unread messages count toward a backlog. */
export type BacklogPredicate = (offset: number, attributes: Record<string, string>) => boolean;

/**
 * What a dispatcher needs from storage, bound to one subscription and its topic. Synchronous:
 * the embedded engine's SQLite answers in microseconds, and a synchronous port keeps the
 * dispatcher free of interleavings.
 */
export interface DispatchLog {
  /** Messages at or after `fromOffset`, in offset order, at most `maxMessages` and about `maxBytes` (at least one). */
  read(fromOffset: number, maxMessages: number, maxBytes: number): StoredMessage[];
  /** Counts messages at or after `fromOffset` that `accept` admits (all when null) and gives the first one's publish time. */
  count(fromOffset: number, accept: BacklogPredicate | null): { count: number; firstPublishTimeMs: number | null };
  /** Stores an ack change atomically. */
  saveAcks(change: AckChange): void;
  /**
   * Publishes `messages` to `topic` and stores `change` in one transaction.
   * @throws StreamgateError NOT_FOUND when the dead-letter topic does not exist.
   */
  deadLetter(topic: TopicName, messages: MessageInput[], change: AckChange): void;
}
