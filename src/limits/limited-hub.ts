// Decorates the live-stream hub: each subscription counts against its principal until it ends.
import type { FeedEvent, FeedSubscription, StreamHub } from "../streams/index.js";
import type { KeyedCounter } from "./keyed-counter.js";
import { tooManyPrincipalSubscriptionsError } from "./limit-errors.js";
import { LimitName } from "./limits-options.js";
import { currentLimitKey } from "./principal-key.js";

/** Returns a hub whose subscribe refuses a principal at its subscription limit (RESOURCE_EXHAUSTED). */
export function limitHub(
  hub: StreamHub,
  subscriptions: KeyedCounter,
  onLimited: (limit: LimitName) => void,
): StreamHub {
  return {
    async subscribe(options) {
      const key = currentLimitKey();
      if (key === undefined) return hub.subscribe(options);
      const release = subscriptions.tryAcquire(key);
      if (release === null) {
        onLimited(LimitName.subscriptionsPerPrincipal);
        throw tooManyPrincipalSubscriptionsError(subscriptions.max);
      }
      let subscription: FeedSubscription;
      try {
        subscription = await hub.subscribe(options);
      } catch (error) {
        release();
        throw error;
      }
      if (options.signal.aborted) release();
      else options.signal.addEventListener("abort", release, { once: true });
      return new ReleasingSubscription(subscription, release);
    },
    stats: () => hub.stats(),
    close: () => hub.close(),
  };
}

/**
 * The same subscription, releasing its count also when iteration ends (error or completion) before the signal
 * aborts. A class, not closures per stream: an idle stream holds one small object here.
 */
class ReleasingSubscription implements FeedSubscription {
  constructor(
    private readonly inner: FeedSubscription,
    private readonly release: () => void,
  ) {}

  get lastOffset(): number {
    return this.inner.lastOffset;
  }

  get caughtUp(): Promise<void> {
    return this.inner.caughtUp;
  }

  nextBatch(): Promise<readonly FeedEvent[] | null> {
    return this.inner.nextBatch().then(
      (batch) => {
        if (batch === null) this.release();
        return batch;
      },
      (error: unknown) => {
        this.release();
        throw error;
      },
    );
  }

  // A plain iterator, not an async generator: one fewer promise hop per event on the fan-out path.
  [Symbol.asyncIterator](): AsyncIterator<FeedEvent> {
    const inner = this.inner[Symbol.asyncIterator]();
    const release = this.release;
    return {
      next: () =>
        inner.next().then(
          (result) => {
            if (result.done === true) release();
            return result;
          },
          (error: unknown) => {
            release();
            throw error;
          },
        ),
      return: (value?: unknown) => {
        release();
        return inner.return === undefined
          ? Promise.resolve({ done: true as const, value: undefined })
          : inner.return(value);
      },
    };
  }
}
