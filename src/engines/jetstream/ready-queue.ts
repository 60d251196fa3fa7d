// A worker's deliverable messages in stream-sequence order, for the round-robin hand-out.
import { TrackedState } from "../../broker/tracked-message.js";

/** What the queue orders: a tracked delivery with its stream sequence. */
export interface Sequenced {
  readonly sequence: number;
  state: TrackedState;
}

/**
 * Ready messages in sequence order. Entries that left the ready state (acked, leased elsewhere,
 * reset) may linger until {@link compact}; a hand-out walks the queue by index and then keeps what
 * it passed over (keys bound to another stream) ahead of what it did not reach.
 */
export class ReadyQueue<T extends Sequenced> {
  private items: T[] = [];

  get length(): number {
    return this.items.length;
  }

  at(index: number): T | undefined {
    return this.items[index];
  }

  /** Adds a message in sequence order: appended in the usual case, else inserted (binary search). */
  insert(item: T): void {
    const items = this.items;
    if (items.length === 0 || items[items.length - 1]!.sequence < item.sequence) {
      items.push(item);
      return;
    }
    let low = 0;
    let high = items.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (items[middle]!.sequence < item.sequence) low = middle + 1;
      else high = middle;
    }
    if (items[low] !== item) items.splice(low, 0, item);
  }

  /** Drops entries that left the ready state since they were queued. */
  compact(): void {
    if (this.items.some((item) => item.state !== TrackedState.ready)) {
      this.items = this.items.filter((item) => item.state === TrackedState.ready);
    }
  }

  /**
   * Ends a hand-out that walked the first `reached` entries: those it `passed` over stay first,
   * the others it reached are gone (taken).
   */
  consumed(reached: number, passed: readonly T[]): void {
    if (passed.length > 0) {
      this.items = [...passed, ...this.items.slice(reached)].filter((item) => item.state === TrackedState.ready);
    } else {
      this.items.splice(0, reached);
    }
  }

  clear(): void {
    this.items = [];
  }
}
