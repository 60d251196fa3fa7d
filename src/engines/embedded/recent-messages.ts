// The newest committed messages of one topic's log, kept in memory so readers at the tail skip SQLite.
import { messageSize } from "../../broker/message-limits.js";
import type { MessageInput, PublishedRef, StoredMessage } from "../../broker/types.js";

/** Most messages kept per topic: a subscriber a batch or so behind the tail still reads from memory. */
export const RECENT_MAX_MESSAGES = 1024;

/** Most bytes (data plus attributes) kept per topic; older messages leave first. */
export const RECENT_MAX_BYTES = 1024 * 1024;

/**
 * A window of contiguous offsets at the end of a topic's log, filled right after each commit. A
 * dispatcher or live stream reading offsets inside the window gets the same messages a SQLite read
 * would return (the log is append-only; trimming drops them here too), without the query, row
 * decoding and JSON parsing; anything older is read from SQLite as before.
 */
export class RecentMessages {
  private items: StoredMessage[] = [];
  private sizes: number[] = [];
  /** Index in `items` of the oldest kept message (a moving head instead of shift()). */
  private head = 0;
  private bytes = 0;

  /** Offset of the oldest message kept, or null when empty. */
  get firstOffset(): number | null {
    return this.head < this.items.length ? this.items[this.head]!.offset : null;
  }

  /**
   * Adds messages just committed, in offset order. A gap after what is kept (messages appended while
   * no one read this topic) restarts the window.
   */
  append(messages: readonly MessageInput[], refs: readonly PublishedRef[], publishTimeMs: number): void {
    for (let index = 0; index < messages.length; index++) {
      const input = messages[index]!;
      const ref = refs[index]!;
      const last = this.items.length > this.head ? this.items[this.items.length - 1]! : undefined;
      if (last !== undefined && last.offset + 1 !== ref.offset) this.clear();
      const attributes = copyAttributes(input.attributes);
      const message: StoredMessage = {
        offset: ref.offset,
        messageId: ref.messageId,
        publishTimeMs,
        // A copy: the request's bytes may be a view into a larger network buffer.
        data: Buffer.from(input.data),
        attributes,
        orderingKey: input.orderingKey ?? "",
      };
      const size = messageSize(message);
      this.items.push(message);
      this.sizes.push(size);
      this.bytes += size;
    }
    while (this.items.length - this.head > RECENT_MAX_MESSAGES || (this.bytes > RECENT_MAX_BYTES && this.length > 1)) {
      this.dropOldest();
    }
    if (this.bytes > RECENT_MAX_BYTES) this.clear();
    this.compact();
  }

  /**
   * Messages from `fromOffset` as {@link MessageStore.read} returns them (at most `maxMessages`, stopping
   * once `maxBytes` is reached, at least one), or null when `fromOffset` is not in the window.
   */
  read(fromOffset: number, maxMessages: number, maxBytes: number): StoredMessage[] | null {
    const first = this.firstOffset;
    if (first === null || fromOffset < first) return null;
    const start = this.head + (fromOffset - first);
    if (start >= this.items.length) return null;
    const out: StoredMessage[] = [];
    let bytes = 0;
    for (let index = start; index < this.items.length && out.length < maxMessages; index++) {
      bytes += this.sizes[index]!;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(this.items[index]!);
      if (bytes >= maxBytes) break;
    }
    return out;
  }

  /** Forgets messages below `offset` (retention trimmed the log). */
  dropBefore(offset: number): void {
    while (this.head < this.items.length && this.items[this.head]!.offset < offset) this.dropOldest();
    this.compact();
  }

  clear(): void {
    this.items = [];
    this.sizes = [];
    this.head = 0;
    this.bytes = 0;
  }

  private get length(): number {
    return this.items.length - this.head;
  }

  private dropOldest(): void {
    this.bytes -= this.sizes[this.head]!;
    this.items[this.head] = undefined as unknown as StoredMessage;
    this.head++;
  }

  /** Drops the consumed prefix once it dominates, keeping appends amortized O(1). */
  private compact(): void {
    if (this.head === 0) return;
    if (this.head === this.items.length) {
      this.clear();
    } else if (this.head >= RECENT_MAX_MESSAGES) {
      this.items = this.items.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.head = 0;
    }
  }
}

/** A fresh attributes object, as a SQLite read parses one per message. */
function copyAttributes(attributes: Record<string, string> | undefined): Record<string, string> {
  const copy: Record<string, string> = {};
  for (const key in attributes) copy[key] = attributes[key]!;
  return copy;
}
