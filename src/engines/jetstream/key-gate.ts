// Per-ordering-key admission within one instance: only each key's lowest unfinished sequence is deliverable.
import { type TrackedMessage, TrackedState } from "../../broker/tracked-message.js";

/** A tracked message with its stream sequence. */
export interface SequencedMessage extends TrackedMessage {
  readonly sequence: number;
}

/**
 * The ordering gate of the JetStream worker. Unlike the embedded engine's gate, messages can
 * arrive out of order (JetStream redelivers a nacked head after later messages of its key), so a
 * lower sequence takes the head back from a higher one that is not yet leased.
 */
export class KeyGate<T extends SequencedMessage> {
  private readonly heads = new Map<string, number>();
  private readonly held = new Map<string, T[]>();

  /**
   * Registers an arrival of a keyed message; true when it is its key's head (deliverable now),
   * else it is held (its state set to held).
   * @param lookup - the tracked message of a sequence, to demote a head that lost its place.
   */
  admit(message: T, lookup: (sequence: number) => T | undefined): boolean {
    const key = message.message.orderingKey;
    const head = this.heads.get(key);
    if (head === message.sequence) return true;
    if (head === undefined || head > message.sequence) {
      const previous = head === undefined ? undefined : lookup(head);
      if (previous !== undefined && previous.state !== TrackedState.leased) this.hold(key, previous);
      this.heads.set(key, message.sequence);
      return true;
    }
    this.hold(key, message);
    return false;
  }

  /** The key's head is done (acked or dead-lettered): returns the next message of the key, now its head. */
  finish(message: T): T | undefined {
    const key = message.message.orderingKey;
    if (this.heads.get(key) !== message.sequence) return undefined;
    const queue = this.held.get(key);
    const next = queue?.shift();
    if (next === undefined) {
      this.heads.delete(key);
      this.held.delete(key);
      return undefined;
    }
    this.heads.set(key, next.sequence);
    if (queue!.length === 0) this.held.delete(key);
    return next;
  }

  get size(): number {
    return this.heads.size;
  }

  clear(): void {
    this.heads.clear();
    this.held.clear();
  }

  private hold(key: string, message: T): void {
    const queue = this.held.get(key) ?? [];
    if (!queue.includes(message)) {
      queue.push(message);
      queue.sort((a, b) => a.sequence - b.sequence);
    }
    this.held.set(key, queue);
    message.state = TrackedState.held;
  }
}
