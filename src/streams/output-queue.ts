// A bounded queue between many producers (subscriptions, command handlers) and one response stream.
import { errors } from "../errors/index.js";

/** Limits of an {@link OutputQueue}. */
export interface OutputQueueLimits {
  /** Items queued before `push()` waits for the reader; this is what turns a slow reader into backpressure. */
  maxQueued: number;
  /** Items queued before `pushNow()` fails the queue: replies to a client that sends commands but never reads. */
  maxForced: number;
}

/**
 * Producers `push()` (waits while the queue is full) or `pushNow()` (small replies that must not wait);
 * one consumer iterates `drain()`. Memory stays bounded: waiting producers hold at most one item each.
 */
export class OutputQueue<T> {
  readonly #items: T[] = [];
  readonly #limits: OutputQueueLimits;
  #roomWaiters: (() => void)[] = [];
  #wakeReader: (() => void) | null = null;
  #ended = false;
  #failure: unknown = undefined;

  constructor(limits: OutputQueueLimits) {
    this.#limits = limits;
  }

  /** True once ended or failed: further pushes are dropped. */
  get closed(): boolean {
    return this.#ended;
  }

  /** Queues `item`, waiting while the queue holds `maxQueued` items; resolves false if the queue closed. */
  async push(item: T): Promise<boolean> {
    while (!this.#ended && this.#items.length >= this.#limits.maxQueued) {
      await new Promise<void>((resolve) => this.#roomWaiters.push(resolve));
    }
    if (this.#ended) return false;
    this.#items.push(item);
    this.#wake();
    return true;
  }

  /** Queues `item` at once; fails the queue with RESOURCE_EXHAUSTED past `maxForced` items. */
  pushNow(item: T): void {
    if (this.#ended) return;
    if (this.#items.length >= this.#limits.maxForced) {
      this.fail(
        errors.resourceExhausted(
          "SLOW_CONSUMER",
          `the client is not reading its responses (${this.#items.length} queued); reconnect and resume`,
        ),
      );
      return;
    }
    this.#items.push(item);
    this.#wake();
  }

  /** No more items: the reader finishes after the queued ones. */
  end(): void {
    this.#ended = true;
    this.#releaseProducers();
    this.#wake();
  }

  /** Ends the stream with `error` after the queued items. */
  fail(error: unknown): void {
    if (this.#ended) return;
    this.#failure = error;
    this.end();
  }

  /** The single consumer: yields items in order, then returns or throws the failure. */
  async *drain(): AsyncGenerator<T> {
    for (;;) {
      const item = this.#items.shift();
      if (item !== undefined) {
        this.#roomWaiters.shift()?.();
        yield item;
        continue;
      }
      if (this.#ended) {
        if (this.#failure !== undefined) throw this.#failure;
        return;
      }
      await new Promise<void>((resolve) => {
        this.#wakeReader = resolve;
      });
    }
  }

  #wake(): void {
    const wake = this.#wakeReader;
    this.#wakeReader = null;
    wake?.();
  }

  #releaseProducers(): void {
    const waiters = this.#roomWaiters;
    this.#roomWaiters = [];
    for (const wake of waiters) wake();
  }
}
