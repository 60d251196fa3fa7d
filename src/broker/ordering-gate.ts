// Per-ordering-key admission: many messages of a key may be outstanding, always leased in offset order.
import { type Consumer, type TrackedMessage, TrackedState } from "./tracked-message.js";

/**
 * The unfinished messages of one key in offset order. The leased ones always form a prefix (a
 * message is leased only when every earlier one is); `frontier` is the index of the first message
 * after that prefix: the only one of the key that may be deliverable.
 */
class KeyQueue {
  items: TrackedMessage[] = [];
  /** Index of the first item that is neither leased nor done (items.length when none). */
  frontier = 0;
  /** Items not yet finished. */
  live = 0;

  indexOf(message: TrackedMessage): number {
    const index = this.insertionPoint(message);
    return this.items[index] === message ? index : -1;
  }

  /** Where a message of this offset sits (or would be inserted) in offset order. */
  insertionPoint(message: TrackedMessage): number {
    const offset = message.message.offset;
    let low = 0;
    let high = this.items.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.items[middle]!.message.offset < offset) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** Moves the frontier past finished items; returns the item now at the frontier. */
  settleFrontier(): TrackedMessage | undefined {
    while (this.frontier < this.items.length && this.items[this.frontier]!.state === TrackedState.done) this.frontier++;
    return this.items[this.frontier];
  }

  /** Drops finished items at the front, so the arrays stay as long as what is unfinished. */
  compact(): void {
    let done = 0;
    while (done < this.items.length && this.items[done]!.state === TrackedState.done) done++;
    if (done > 64 && done * 2 > this.items.length) {
      this.items = this.items.slice(done);
      this.frontier -= done;
    }
  }
}

/**
 * Pub/Sub's ordering rule for one subscription: messages of a key are delivered in offset order,
 * several may be outstanding at once, and when one is nacked or its lease expires, it and every
 * later outstanding message of its key are redelivered, in order, before any newer message of the key.
 * The caller owns message states; the gate says which message of a key may be delivered next.
 */
export class OrderingGate {
  private readonly keys = new Map<string, KeyQueue>();

  /**
   * Registers a keyed message that arrived for delivery: newly read (usually in offset order), or
   * an engine's redelivery of one the gate already knows. `deliverable` says whether it may be
   * delivered now; `displaced` lists later messages of its key that were leased or deliverable and
   * must now wait behind it (only when it arrives below the key's frontier): the caller takes back
   * their leases and holds them.
   */
  admit(message: TrackedMessage): { deliverable: boolean; displaced: TrackedMessage[] } {
    const key = message.message.orderingKey;
    let queue = this.keys.get(key);
    if (queue === undefined) {
      queue = new KeyQueue();
      this.keys.set(key, queue);
    }
    queue.settleFrontier();
    let index = queue.indexOf(message);
    if (index < 0) {
      index = queue.insertionPoint(message);
      queue.items.splice(index, 0, message);
      queue.live++;
      if (index < queue.frontier) queue.frontier++;
    }
    if (index > queue.frontier) return { deliverable: false, displaced: [] };
    if (index === queue.frontier) {
      const after = queue.items[index + 1];
      const displaced = after !== undefined && after.state === TrackedState.ready ? [after] : [];
      return { deliverable: true, displaced };
    }
    return { deliverable: true, displaced: this.rewind(queue, index) };
  }

  /**
   * The consumer holding the latest leased message of `message`'s key, when that consumer keeps
   * keys (a stream): the key's next messages must go to it, or wait while it holds any.
   */
  owner(message: TrackedMessage): Consumer | null {
    const queue = this.keys.get(message.message.orderingKey);
    if (queue === undefined) return null;
    for (let position = queue.frontier - 1; position >= 0; position--) {
      const item = queue.items[position]!;
      if (item.state === TrackedState.leased) return item.holder?.keyAffinity === true ? item.holder : null;
      if (item.state !== TrackedState.done) return null;
    }
    return null;
  }

  /** True when `message` is its key's frontier: the one message of the key that may be delivered next. */
  isFrontier(message: TrackedMessage): boolean {
    const queue = this.keys.get(message.message.orderingKey);
    if (queue === undefined) return true;
    return queue.settleFrontier() === message;
  }

  /**
   * `message` (the key's frontier) was just leased; returns the key's next message, now deliverable,
   * when it waits held.
   */
  leased(message: TrackedMessage): TrackedMessage | undefined {
    const queue = this.keys.get(message.message.orderingKey);
    if (queue === undefined || queue.items[queue.frontier] !== message) return undefined;
    queue.frontier++;
    const next = queue.settleFrontier();
    return next?.state === TrackedState.held ? next : undefined;
  }

  /**
   * `message` lost its lease (nack, expiry, a stream that ended): it becomes the key's frontier again.
   * Returns the later messages of its key still leased, in offset order: they must be redelivered
   * after it, so the caller takes their leases back and holds them.
   */
  revoke(message: TrackedMessage): TrackedMessage[] {
    const queue = this.keys.get(message.message.orderingKey);
    if (queue === undefined) return [];
    const index = queue.indexOf(message);
    if (index < 0 || index >= queue.frontier) return [];
    return this.rewind(queue, index);
  }

  /** Moves the key's frontier back to `index`: the later leased (and deliverable) messages wait again. */
  private rewind(queue: KeyQueue, index: number): TrackedMessage[] {
    const later: TrackedMessage[] = [];
    for (let position = index + 1; position < queue.frontier; position++) {
      const item = queue.items[position]!;
      if (item.state === TrackedState.leased) later.push(item);
    }
    const after = queue.items[queue.frontier];
    queue.frontier = index;
    return after?.state === TrackedState.ready ? [...later, after] : later;
  }

  /**
   * `message` is finished (acked, dead-lettered or dropped; its state already done). Returns the
   * key's message that became deliverable, when one waits held.
   */
  finish(message: TrackedMessage): TrackedMessage | undefined {
    const key = message.message.orderingKey;
    const queue = this.keys.get(key);
    if (queue === undefined || queue.indexOf(message) < 0) return undefined;
    queue.live--;
    if (queue.live === 0) {
      this.keys.delete(key);
      return undefined;
    }
    const next = queue.settleFrontier();
    queue.compact();
    return next?.state === TrackedState.held ? next : undefined;
  }

  clear(): void {
    this.keys.clear();
  }
}
