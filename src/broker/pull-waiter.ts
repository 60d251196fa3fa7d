// A unary pull as a consumer: takes up to maxMessages once, or gives up after its wait.
import type { Consumer, ConsumerCapacity, TrackedMessage } from "./tracked-message.js";

/** One unary pull: no flow control beyond its message count; leases are not tied to it after return. */
export class PullWaiter implements Consumer {
  /** Each pull answers on its own: no key stays with it. */
  readonly keyAffinity = false;
  /** Messages handed over; set once. */
  taken: TrackedMessage[] | null = null;
  private onTaken: (() => void) | null = null;

  constructor(
    private readonly maxMessages: number,
    readonly leaseMs: number,
  ) {}

  capacity(): ConsumerCapacity {
    return { messages: this.taken === null ? this.maxMessages : 0, bytes: Number.POSITIVE_INFINITY, idle: true };
  }

  accept(messages: TrackedMessage[]): void {
    this.taken = messages;
    this.onTaken?.();
  }

  release(): void {}

  /** Resolves when messages are handed over, or when `signal` aborts or `waitMs` passes. */
  wait(waitMs: number, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.onTaken = null;
        resolve();
      };
      // Not unref'd: a waiting pull is work in progress on a caller's behalf, bounded by waitMs.
      const timer = setTimeout(done, waitMs);
      signal.addEventListener("abort", done, { once: true });
      this.onTaken = done;
      if (signal.aborted || this.taken !== null) done();
    });
  }
}
