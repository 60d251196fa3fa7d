// The messages a dispatcher has read and not finished: offset-ordered, with ready queues and per-key ordering.
import type { DispatchLog, SubscriptionAckState } from "./dispatch-log.js";
import { FifoQueue } from "./fifo-queue.js";
import type { AttributeFilter } from "./filter.js";
import { messageSize } from "./message-limits.js";
import { OrderingGate } from "./ordering-gate.js";
import { type Consumer, type TrackedMessage, TrackedState } from "./tracked-message.js";

/** Memory bounds of one subscription's buffer. */
export interface BufferLimits {
  /**
   * Stop reading the log forward while this many read messages wait undelivered (held behind
   * their ordering key, ready, or backing off). Default 10,000: enough to keep many keys flowing.
   */
  maxBufferedMessages: number;
  /** The same bound in bytes. Default 64 MiB. */
  maxBufferedBytes: number;
  /**
   * Stop reading forward while this many messages are tracked in all (buffered plus leased), which
   * bounds memory when unary pulls lease without acking. Default 100,000.
   */
  maxTrackedMessages: number;
}

/** Default {@link BufferLimits}. */
export const DEFAULT_BUFFER_LIMITS: BufferLimits = {
  maxBufferedMessages: 10_000,
  maxBufferedBytes: 64 * 1024 * 1024,
  maxTrackedMessages: 100_000,
};

const READ_BATCH_MESSAGES = 1000;
const READ_BATCH_BYTES = 4 * 1024 * 1024;

/**
 * Tracks every unacked message between the ack floor and the read cursor. Filtered-out and
 * already-acked messages are skipped while reading, so everything tracked is deliverable in turn.
 */
export class MessageBuffer {
  /** Next offset to read from the log. */
  readCursor: number;
  /** The topic's next offset as last announced; nothing to read at or past it. */
  knownEnd: number;
  /** Messages leased to a consumer. */
  leasedCount = 0;
  /** Messages read but not leased (held, ready or backing off), and their bytes. */
  bufferedCount = 0;
  bufferedBytes = 0;

  /** Acked offsets not read yet (skipped when read). */
  private ackedAhead: Set<number>;
  /** Unacked messages read from the log, in offset order (a Map keeps insertion order). */
  private readonly tracked = new Map<number, TrackedMessage>();
  private readonly fresh = new FifoQueue<TrackedMessage>();
  private readonly retry = new FifoQueue<TrackedMessage>();
  private readyQueue: FifoQueue<TrackedMessage> | null = null;
  private readonly gate = new OrderingGate();

  constructor(
    private readonly filter: AttributeFilter | null,
    private readonly ordered: boolean,
    private readonly limits: BufferLimits,
    ackState: SubscriptionAckState,
    topicEnd: number,
  ) {
    this.readCursor = ackState.floor;
    this.ackedAhead = new Set(ackState.acked);
    this.knownEnd = topicEnd;
  }

  /** How many messages are tracked (the read part of the backlog). */
  get size(): number {
    return this.tracked.size;
  }

  /** The tracked message with the lowest offset. */
  first(): TrackedMessage | undefined {
    return this.tracked.values().next().value;
  }

  get(offset: number): TrackedMessage | undefined {
    return this.tracked.get(offset);
  }

  /** The next deliverable message, redeliveries first; skips entries that left the ready state. */
  peekReady(): TrackedMessage | undefined {
    for (const queue of [this.retry, this.fresh]) {
      let head = queue.peek();
      while (head !== undefined && head.state !== TrackedState.ready) {
        queue.shift();
        head = queue.peek();
      }
      if (head !== undefined) {
        this.readyQueue = queue;
        return head;
      }
    }
    return undefined;
  }

  /** Removes the message {@link peekReady} returned from its queue. */
  shiftReady(): void {
    this.readyQueue?.shift();
    this.readyQueue = null;
  }

  /**
   * Makes a message deliverable again, ahead of messages never delivered; with ordering, only when
   * it is its key's frontier (else it waits held behind an earlier message of its key).
   */
  requeue(message: TrackedMessage): void {
    if (this.ordered && message.message.orderingKey !== "" && !this.gate.isFrontier(message)) {
      this.setState(message, TrackedState.held);
      return;
    }
    this.setState(message, TrackedState.ready);
    this.retry.push(message);
  }

  /** True when the log may hold unread messages and memory bounds allow reading them. */
  canRead(): boolean {
    const { limits } = this;
    return (
      this.readCursor < this.knownEnd &&
      this.bufferedCount < limits.maxBufferedMessages &&
      this.bufferedBytes < limits.maxBufferedBytes &&
      this.tracked.size < limits.maxTrackedMessages
    );
  }

  /** Reads the next chunk of the log; false when the log had nothing more. */
  readMore(log: DispatchLog): boolean {
    const { limits } = this;
    // Never read past the bounds: a chunk is at most what still fits.
    const room = Math.min(
      READ_BATCH_MESSAGES,
      limits.maxBufferedMessages - this.bufferedCount,
      limits.maxTrackedMessages - this.tracked.size,
    );
    const messages = log.read(this.readCursor, Math.max(1, room), READ_BATCH_BYTES);
    if (messages.length === 0) {
      this.advanceCursor(this.knownEnd);
      return false;
    }
    for (const message of messages) {
      this.readCursor = message.offset + 1;
      if (this.ackedAhead.delete(message.offset)) continue;
      if (this.filter !== null && !this.filter(message.attributes)) continue;
      const tracked: TrackedMessage = {
        message,
        size: messageSize(message),
        state: TrackedState.done,
        attempt: 0,
        version: 0,
        deadlineMs: 0,
        holder: null,
      };
      this.tracked.set(message.offset, tracked);
      if (this.ordered && message.orderingKey !== "" && !this.gate.admit(tracked).deliverable) {
        this.setState(tracked, TrackedState.held);
      } else {
        this.setState(tracked, TrackedState.ready);
        this.fresh.push(tracked);
      }
    }
    if (this.readCursor > this.knownEnd) this.knownEnd = this.readCursor;
    return true;
  }

  /** Counts unread messages that would be delivered, and the first one's publish time (for stats). */
  countUnread(log: DispatchLog): { count: number; firstPublishTimeMs: number | null } {
    if (this.readCursor >= this.knownEnd) return { count: 0, firstPublishTimeMs: null };
    const { filter, ackedAhead } = this;
    const accept =
      filter === null && ackedAhead.size === 0
        ? null
        : (offset: number, attributes: Record<string, string>) =>
            !ackedAhead.has(offset) && (filter === null || filter(attributes));
    return log.count(this.readCursor, accept);
  }

  /** The ack floor once `finished` messages are gone: the first other tracked offset, else the read cursor. */
  floorWithout(finished: TrackedMessage[]): number {
    const excluded = new Set(finished);
    for (const message of this.tracked.values()) {
      if (!excluded.has(message)) return message.message.offset;
    }
    return this.readCursor;
  }

  /**
   * True when `message`'s key is leased to another stream than `consumer`: it must not be delivered
   * to `consumer` (the key stays on that stream while it holds any message of it).
   */
  boundElsewhere(message: TrackedMessage, consumer: Consumer): boolean {
    if (!this.ordered || message.message.orderingKey === "") return false;
    const owner = this.gate.owner(message);
    return owner !== null && owner !== consumer;
  }

  /** Puts back a ready message {@link peekReady} returned and the caller passed over. */
  putBack(message: TrackedMessage): void {
    this.retry.push(message);
  }

  /** A message was just leased: with ordering, the next message of its key becomes deliverable. */
  leased(message: TrackedMessage): void {
    if (!this.ordered || message.message.orderingKey === "") return;
    const next = this.gate.leased(message);
    if (next !== undefined) {
      this.setState(next, TrackedState.ready);
      this.fresh.push(next);
    }
  }

  /**
   * A message lost its lease: with ordering, the later messages of its key that are leased (or
   * deliverable) must wait behind it again. Returns them; the caller takes back their leases and
   * then holds them with {@link hold}.
   */
  revoke(message: TrackedMessage): TrackedMessage[] {
    if (!this.ordered || message.message.orderingKey === "") return [];
    return this.gate.revoke(message);
  }

  /** Holds a message behind an earlier one of its key (after {@link revoke}). */
  hold(message: TrackedMessage): void {
    this.setState(message, TrackedState.held);
    message.version++;
  }

  /** Forgets finished messages and makes the next message of each of their ordering keys deliverable. */
  finish(messages: TrackedMessage[]): void {
    for (const message of messages) {
      this.tracked.delete(message.message.offset);
      this.setState(message, TrackedState.done);
      message.version++;
      if (this.ordered && message.message.orderingKey !== "") {
        const next = this.gate.finish(message);
        if (next !== undefined) {
          this.setState(next, TrackedState.ready);
          this.fresh.push(next);
        }
      }
    }
  }

  /** Moves the read cursor to at least `offset` and returns the tracked messages below it (retention dropped them). */
  before(offset: number): TrackedMessage[] {
    const below: TrackedMessage[] = [];
    for (const message of this.tracked.values()) {
      if (message.message.offset >= offset) break;
      below.push(message);
    }
    this.advanceCursor(offset);
    return below;
  }

  /** Every tracked message, in offset order. */
  all(): TrackedMessage[] {
    return [...this.tracked.values()];
  }

  /** Forgets everything and restarts reading from `ackState` (callers release leases first). */
  reset(ackState: SubscriptionAckState): void {
    for (const message of this.tracked.values()) {
      this.setState(message, TrackedState.done);
      message.version++;
    }
    this.tracked.clear();
    this.fresh.clear();
    this.retry.clear();
    this.gate.clear();
    this.readCursor = ackState.floor;
    this.ackedAhead = new Set(ackState.acked);
  }

  /** Moves a message between states, keeping the leased and buffered counters exact. */
  setState(message: TrackedMessage, state: TrackedState): void {
    const before = message.state;
    if (before === state) return;
    if (before === TrackedState.leased) this.leasedCount--;
    else if (before !== TrackedState.done) {
      this.bufferedCount--;
      this.bufferedBytes -= message.size;
    }
    if (state === TrackedState.leased) this.leasedCount++;
    else if (state !== TrackedState.done) {
      this.bufferedCount++;
      this.bufferedBytes += message.size;
    }
    message.state = state;
  }

  private advanceCursor(offset: number): void {
    if (this.readCursor < offset) this.readCursor = offset;
    for (const acked of this.ackedAhead) if (acked < this.readCursor) this.ackedAhead.delete(acked);
  }
}
