// Lease deadlines and retry backoffs of one subscription, driven by a single unref'd timer.
import { MinHeap } from "./min-heap.js";
import { type TrackedMessage, TrackedState } from "./tracked-message.js";

interface TimerItem {
  at: number;
  message: TrackedMessage;
  /** The message's version when scheduled; a later change makes the item stale. */
  version: number;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/** Heap size below which stale items are never swept. */
const MIN_SWEEP_SIZE = 4096;

/**
 * Two heaps (lease deadlines, backoff ends) with lazy deletion: an item whose message changed
 * state or version since it was scheduled is skipped. One timer fires at the earliest item.
 */
export class DeliveryTimers {
  private readonly leases = new MinHeap<TimerItem>();
  private readonly backoffs = new MinHeap<TimerItem>();
  /** Sweep the lease heap once it grows past this (twice its size after the last sweep). */
  private sweepLeasesAt = MIN_SWEEP_SIZE;
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Number.POSITIVE_INFINITY;
  private stopped = false;

  /** @param onDue - called when the timer fires; it should call {@link due} and then {@link arm}. */
  constructor(private readonly onDue: () => void) {}

  /** Schedules the expiry of a lease at `message.deadlineMs`. */
  lease(message: TrackedMessage): void {
    this.leases.push({ at: message.deadlineMs, message, version: message.version });
    // An acked lease stays in the heap until its deadline (lazy deletion), holding its message: at
    // thousands of acks a second that is minutes of messages. Sweep them once they dominate.
    if (this.leases.size > this.sweepLeasesAt) {
      this.leases.retain((item) => isCurrent(item, TrackedState.leased));
      this.sweepLeasesAt = Math.max(MIN_SWEEP_SIZE, 2 * this.leases.size);
    }
  }

  /** Schedules the end of a backoff at `message.deadlineMs`. */
  backoff(message: TrackedMessage): void {
    this.backoffs.push({ at: message.deadlineMs, message, version: message.version });
  }

  /** Removes and returns what is due at `now`: expired leases, and delayed messages whose backoff ended. */
  due(now: number): { expired: TrackedMessage[]; ready: TrackedMessage[] } {
    return {
      expired: drain(this.leases, now, TrackedState.leased),
      ready: drain(this.backoffs, now, TrackedState.delayed),
    };
  }

  /** (Re)arms the timer for the earliest pending item. */
  arm(now: number): void {
    const next = Math.min(
      this.leases.peek()?.at ?? Number.POSITIVE_INFINITY,
      this.backoffs.peek()?.at ?? Number.POSITIVE_INFINITY,
    );
    if (next === this.timerAt && this.timer !== null) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = next;
    if (next === Number.POSITIVE_INFINITY || this.stopped) return;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.onDue();
      },
      Math.min(Math.max(0, next - now), MAX_TIMER_MS),
    );
    // Background work: it must never keep the process alive on its own.
    this.timer.unref();
  }

  clear(): void {
    this.leases.clear();
    this.backoffs.clear();
  }

  stop(): void {
    this.stopped = true;
    this.clear();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

function drain(heap: MinHeap<TimerItem>, now: number, state: TrackedState): TrackedMessage[] {
  const due: TrackedMessage[] = [];
  for (let top = heap.peek(); top !== undefined && top.at <= now; top = heap.peek()) {
    heap.pop();
    if (isCurrent(top, state)) due.push(top.message);
  }
  return due;
}

/** True while the item's message is still in `state` at the version it was scheduled for. */
function isCurrent(item: TimerItem, state: TrackedState): boolean {
  return item.message.state === state && item.message.version === item.version;
}
