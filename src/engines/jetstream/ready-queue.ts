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
  /** Entries from `head` on are queued; those before it were taken (dropped in bulk, not one splice per hand-out). */
  private items: T[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  at(index: number): T | undefined {
    return this.items[this.head + index];
  }

  /** Adds a message in sequence order: appended in the usual case, else inserted (binary search). */
  insert(item: T): void {
    const items = this.items;
    if (items.length === this.head || items[items.length - 1]!.sequence < item.sequence) {
      items.push(item);
      return;
    }
    let low = this.head;
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
    const items = this.items;
    for (let index = this.head; index < items.length; index++) {
      if (items[index]!.state !== TrackedState.ready) {
        this.items = items.slice(this.head).filter((item) => item.state === TrackedState.ready);
        this.head = 0;
        return;
      }
    }
  }

  /**
   * Ends a hand-out that walked the first `reached` entries: those it `passed` over stay first,
   * the others it reached are gone (taken).
   */
  consumed(reached: number, passed: readonly T[]): void {
    if (passed.length > 0) {
      const rest = this.items.slice(this.head + reached);
      this.items = [...passed, ...rest].filter((item) => item.state === TrackedState.ready);
      this.head = 0;
      return;
    }
    this.head += reached;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1_024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}
