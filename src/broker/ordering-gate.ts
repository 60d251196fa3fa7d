// Per-ordering-key admission: one message of a key outstanding at a time, strictly in offset order.
import { FifoQueue } from "./fifo-queue.js";
import type { TrackedMessage } from "./tracked-message.js";

/**
 * Queues the tracked messages of each ordering key in offset order. Only a key's head may be
 * delivered (and redelivered); the rest are held until the head is finished.
 */
export class OrderingGate {
  private readonly keys = new Map<string, FifoQueue<TrackedMessage>>();
  /** Messages waiting behind their key's head. */
  held = 0;

  /** Registers a newly read keyed message; true when it is its key's head (deliverable now). */
  admit(message: TrackedMessage): boolean {
    const key = message.message.orderingKey;
    const queue = this.keys.get(key);
    if (queue === undefined) {
      const fresh = new FifoQueue<TrackedMessage>();
      fresh.push(message);
      this.keys.set(key, fresh);
      return true;
    }
    queue.push(message);
    this.held++;
    return false;
  }

  /**
   * The key's head is done (acked, dead-lettered or dropped); returns the key's next message,
   * which becomes the head and is deliverable, or undefined.
   */
  finish(message: TrackedMessage): TrackedMessage | undefined {
    const key = message.message.orderingKey;
    const queue = this.keys.get(key);
    if (queue === undefined || queue.peek() !== message) return undefined;
    queue.shift();
    const next = queue.peek();
    if (next === undefined) this.keys.delete(key);
    else this.held--;
    return next;
  }

  clear(): void {
    this.keys.clear();
    this.held = 0;
  }
}
