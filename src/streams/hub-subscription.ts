// One live subscription of the hub: catches up from its position in bounded pages, then joins the shared tail.
import type { AttributeFilter } from "../broker/filter.js";
import type { StoredMessage } from "../broker/types.js";
import type { Engine } from "../engines/engine.js";
import { Code, StreamgateError } from "../errors/index.js";
import type { LiveSubscriber, TopicFeed } from "./topic-feed.js";
import type { FeedEvent, FeedSubscription } from "./types.js";

/** What a subscription needs from its hub: one object shared by every subscription of the hub. */
export interface SubscriptionContext {
  engine: Engine;
  maxBufferBytes: number;
  batchMaxMessages: number;
  /** Called once when the subscription stops needing the feed. */
  onDetach(subscription: HubSubscription): void;
  /** Called when the subscription is dropped as a slow consumer. */
  onSlowConsumer(): void;
}

/** Bytes a queued message is charged: payload, attributes and a fixed overhead for the object and its JSON. */
export function queuedSize(message: StoredMessage): number {
  let size = 96 + Math.ceil((message.data.byteLength * 4) / 3) + message.orderingKey.length;
  for (const key in message.attributes) size += key.length + message.attributes[key]!.length + 6;
  return size;
}

export class HubSubscription implements FeedSubscription, LiveSubscriber, AsyncIterator<FeedEvent> {
  /** The last offset taken by the consumer; before any, the offset the subscription starts after (pinned). */
  lastOffset: number;
  /** When the consumer last got an event (heartbeats fill silences). */
  lastEmitMs = Date.now();
  /** Next offset this subscription expects; pages are compared against it (no gap, no duplicate). */
  private nextOffset: number;
  private queue: (FeedEvent | undefined)[] = [];
  private head = 0;
  private queuedBytes = 0;
  private failure: StreamgateError | null = null;
  private ended = false;
  private detached = false;
  private wake: (() => void) | null = null;
  private roomWaiter: (() => void) | null = null;
  private markCaughtUp!: () => void;
  readonly caughtUp = new Promise<void>((resolve) => {
    this.markCaughtUp = resolve;
  });

  constructor(
    private readonly context: SubscriptionContext,
    /** The topic's shared reader this subscription joins. */
    readonly feed: TopicFeed,
    private readonly filter: AttributeFilter,
    startOffset: number,
    firstEvents: FeedEvent[],
  ) {
    this.nextOffset = startOffset;
    const first = firstEvents[0];
    this.lastOffset = (first?.kind === "gap" ? first.fromOffset : startOffset) - 1;
    for (const event of firstEvents) this.queue.push(event);
  }

  [Symbol.asyncIterator](): AsyncIterator<FeedEvent> {
    return this;
  }

  /** Reads history in pages while it is behind the shared reader, then joins it. */
  async catchUp(): Promise<void> {
    const { engine, batchMaxMessages, maxBufferBytes } = this.context;
    const feed = this.feed;
    try {
      while (!this.detached) {
        if (this.nextOffset >= feed.cursor) {
          feed.live.add(this);
          this.markCaughtUp();
          return;
        }
        // History is read at the consumer's pace: never more than half the buffer ahead of it.
        if (this.queuedBytes >= maxBufferBytes / 2) {
          await new Promise<void>((resolve) => {
            this.roomWaiter = resolve;
          });
          continue;
        }
        const page = await engine.readTopic(feed.topic, this.nextOffset, {
          maxMessages: Math.min(batchMaxMessages, feed.cursor - this.nextOffset),
          maxBytes: Math.max(1, Math.floor(maxBufferBytes / 2)),
        });
        if (this.detached) return;
        if (page.length === 0) {
          const stats = await engine.topicStats(feed.topic);
          if (stats.firstOffset > this.nextOffset) this.pushGap(stats.firstOffset);
          else this.nextOffset = feed.cursor; // nothing readable below the shared reader: join it
          continue;
        }
        this.accept(page, false);
      }
    } catch (error) {
      this.fail(StreamgateError.from(error));
    }
  }

  offerLive(page: readonly StoredMessage[]): void {
    this.accept(page, true);
  }

  /**
   * A live page bigger than the room left, offered to a consumer that was keeping up (one large publish batch):
   * that is not a slow consumer. Leave the shared tail and read the rest from the log at the consumer's pace,
   * as on subscribe; `catchUp` rejoins the tail when it reaches it.
   */
  private fallBackToHistory(): void {
    this.feed.live.delete(this);
    void this.catchUp();
  }

  async next(): Promise<IteratorResult<FeedEvent>> {
    for (;;) {
      if (this.ended) return { value: undefined, done: true };
      if (this.head < this.queue.length) return { value: this.take(), done: false };
      if (this.failure !== null) {
        const failure = this.failure;
        this.end();
        throw failure;
      }
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  /**
   * Waits until an event is queued, then takes every queued event at once (in order): a consumer that writes a
   * page per wake-up pays one promise per page, not one per event. Resolves null once the subscription ended;
   * throws its failure after the queued events, as `next()` does.
   */
  async nextBatch(): Promise<FeedEvent[] | null> {
    for (;;) {
      if (this.ended) return null;
      if (this.head < this.queue.length) {
        const batch: FeedEvent[] = new Array(this.queue.length - this.head);
        for (let index = 0; index < batch.length; index++) batch[index] = this.take();
        return batch;
      }
      if (this.failure !== null) {
        const failure = this.failure;
        this.end();
        throw failure;
      }
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  async return(): Promise<IteratorResult<FeedEvent>> {
    this.end();
    return { value: undefined, done: true };
  }

  /** True when the consumer waits on an empty queue and has heard nothing for `idleMs`. */
  idleFor(idleMs: number, nowMs: number): boolean {
    return this.wake !== null && this.head >= this.queue.length && nowMs - this.lastEmitMs >= idleMs;
  }

  heartbeat(): void {
    this.queue.push({ kind: "heartbeat" });
    this.notify();
  }

  /** Ends with an error after the queued events (or at once, discarding them, when `discardQueue`). */
  fail(error: StreamgateError, discardQueue = false): void {
    if (this.ended || this.failure !== null) return;
    this.failure = error;
    if (discardQueue) {
      this.queue = [];
      this.head = 0;
      this.queuedBytes = 0;
    }
    this.detach();
    this.notify();
  }

  /** Ends the iteration now (abort, return, hub close). */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.queue = [];
    this.head = 0;
    this.queuedBytes = 0;
    this.detach();
    this.notify();
  }

  private detach(): void {
    if (this.detached) return;
    this.detached = true;
    this.markCaughtUp();
    this.feed.live.delete(this);
    this.roomWaiter?.();
    this.roomWaiter = null;
    this.context.onDetach(this);
  }

  private accept(page: readonly StoredMessage[], live: boolean): void {
    if (this.detached) return;
    const { maxBufferBytes } = this.context;
    const filter = this.filter;
    // The consumer kept up when it had taken everything and was waiting for more as this page came: overflowing
    // the buffer is then this page's size (one large Publish), not the consumer's pace. (A consumer that took
    // everything but is stuck on its own backpressure is not waiting: it is dropped as before.)
    const keptUp = this.queuedBytes === 0 && this.wake !== null;
    for (const message of page) {
      if (message.offset < this.nextOffset) continue;
      if (message.offset > this.nextOffset) this.pushGap(message.offset);
      const size = filter(message.attributes) ? queuedSize(message) : 0;
      // An empty queue always takes one message, so a message larger than the limit still flows.
      if (live && size > 0 && this.queuedBytes > 0 && this.queuedBytes + size > maxBufferBytes) {
        if (!keptUp) {
          this.dropSlow();
          return;
        }
        this.fallBackToHistory();
        break;
      }
      this.nextOffset = message.offset + 1;
      if (size === 0) continue;
      this.queue.push({ kind: "message", message });
      this.queuedBytes += size;
    }
    this.notify();
  }

  private pushGap(firstAvailable: number): void {
    const fromOffset = this.nextOffset;
    this.queue.push({ kind: "gap", fromOffset, firstAvailable, lost: firstAvailable - fromOffset });
    this.nextOffset = firstAvailable;
  }

  private dropSlow(): void {
    const behind = this.queue.length - this.head;
    const { maxBufferBytes } = this.context;
    const feed = this.feed;
    const error = new StreamgateError(
      Code.RESOURCE_EXHAUSTED,
      `slow consumer: more than ${maxBufferBytes} bytes (${behind} events) queued behind the live tail of ${feed.topic}; ` +
        "reconnect and resume after the last offset you received",
      { reason: "SLOW_CONSUMER", details: { lastSent: String(this.lastOffset) } },
    );
    this.context.onSlowConsumer();
    this.fail(error, true);
  }

  private take(): FeedEvent {
    const event = this.queue[this.head]!;
    this.queue[this.head++] = undefined;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.lastEmitMs = Date.now();
    if (event.kind === "gap") this.lastOffset = event.firstAvailable - 1;
    else if (event.kind === "message") {
      this.lastOffset = event.message.offset;
      this.queuedBytes -= queuedSize(event.message);
      if (this.roomWaiter !== null && this.queuedBytes < this.context.maxBufferBytes / 2) {
        const resolve = this.roomWaiter;
        this.roomWaiter = null;
        resolve();
      }
    }
    return event;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}
