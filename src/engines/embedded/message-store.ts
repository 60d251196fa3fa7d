// The topics' append-only logs in SQLite: prepared statements to append (multi-row INSERTs), read, search by time and trim.
import type Database from "better-sqlite3";
import type { BacklogPredicate } from "../../broker/dispatch-log.js";
import { messageSize } from "../../broker/message-limits.js";
import type { MessageInput, PublishedRef, StoredMessage } from "../../broker/types.js";

/** A topic log's counters, mirrored in the `topics` row and kept in memory. */
export interface LogCounters {
  /** The topic's generation (row id): never reused, so message ids stay unique across recreation. */
  readonly id: number;
  /** First retained offset (equals nextOffset when empty); retained offsets are contiguous. */
  firstOffset: number;
  nextOffset: number;
  bytes: number;
  /** Publish times never go backwards within a topic, even if the clock does. */
  lastPublishTimeMs: number;
}

/** A `messages` row as {@link MessageStore.read} selects it (raw): offset, publish time, ordering key, attributes JSON, data. */
type MessageRow = [offset: number, publishTime: number, orderingKey: string, attributes: string | null, data: Buffer];

/**
 * Rows per multi-row INSERT statement, largest first: a batch is written as greedy chunks of these
 * (100 messages = 64 + 16 + 16 + 4, four statements instead of 100). A handful of prepared shapes
 * keeps the statement cache small; 256 rows bind at most 1,027 parameters, far below SQLite's limit
 * (SQLITE_MAX_VARIABLE_NUMBER, 32,766 since 3.32) and each step keeps per-row overhead low.
 */
export const INSERT_CHUNK_ROWS = [256, 64, 16, 4, 1] as const;

/**
 * What a chunk's rows bind besides the three values shared by the whole chunk. Binding is most of the
 * JavaScript-side cost of an INSERT (better-sqlite3 reads each parameter from the array and converts it),
 * so the topic id, the first offset and the publish time are bound once per statement (`?1`, `?2 + row`,
 * `?3`), and a chunk of plain messages (no attributes, no ordering key: the common case) binds only
 * data and size per row, with `''` and `NULL` written into the statement.
 */
const RowShape = {
  /** ordering_key, attributes, data, size per row. */
  full: 0,
  /** data, size per row; ordering_key '' and attributes NULL. */
  plain: 1,
} as const;
type RowShape = (typeof RowShape)[keyof typeof RowShape];

/** Per-row parameters of each {@link RowShape}. */
const ROW_PARAMETERS: Record<RowShape, number> = { [RowShape.full]: 4, [RowShape.plain]: 2 };

/** Message ids: the topic's generation and the offset, unique even after a topic is recreated. */
export function messageIdOf(topicId: number, offset: number): string {
  return `${topicId}-${offset}`;
}

/** Prepared statements over the `messages` table. */
export class MessageStore {
  /** Prepared INSERTs by {@link RowShape} and {@link INSERT_CHUNK_ROWS} index, prepared on first use. */
  private readonly insertChunks: (Database.Statement | undefined)[][] = [
    INSERT_CHUNK_ROWS.map(() => undefined),
    INSERT_CHUNK_ROWS.map(() => undefined),
  ];
  private readonly updateCounters: Database.Statement;
  private readonly selectFrom: Database.Statement;
  private readonly selectPublishTime: Database.Statement;
  private readonly selectAttributesFrom: Database.Statement;
  private readonly selectSizesFrom: Database.Statement;
  private readonly deleteRange: Database.Statement;
  private readonly sumRange: Database.Statement;
  private readonly selectPurgeBound: Database.Statement;
  private readonly deleteBelow: Database.Statement;

  /**
   * One better-sqlite3 transaction function for every call of {@link transaction}: `db.transaction()` builds a
   * wrapper and its four variants each time, which the group commit paid on every commit.
   */
  private readonly runInTransaction: (work: () => unknown) => unknown;

  constructor(private readonly db: Database.Database) {
    this.runInTransaction = db.transaction((work: () => unknown) => work());
    this.updateCounters = db.prepare(
      "UPDATE topics SET first_offset = ?, next_offset = ?, bytes = ?, last_publish_time = ? WHERE id = ?",
    );
    // Rows as arrays (raw): no object with named keys per row on the read path of every delivery.
    this.selectFrom = db
      .prepare(
        "SELECT message_offset, publish_time, ordering_key, attributes, data FROM messages WHERE topic_id = ? AND message_offset >= ? ORDER BY message_offset LIMIT ?",
      )
      .raw();
    this.selectPublishTime = db
      .prepare("SELECT publish_time FROM messages WHERE topic_id = ? AND message_offset = ?")
      .pluck();
    this.selectAttributesFrom = db
      .prepare(
        "SELECT message_offset, publish_time, attributes FROM messages WHERE topic_id = ? AND message_offset >= ? ORDER BY message_offset",
      )
      .raw();
    this.selectSizesFrom = db
      .prepare(
        "SELECT message_offset, size FROM messages WHERE topic_id = ? AND message_offset >= ? ORDER BY message_offset LIMIT ?",
      )
      .raw();
    this.deleteRange = db.prepare("DELETE FROM messages WHERE topic_id = ? AND message_offset < ?");
    this.sumRange = db
      .prepare("SELECT coalesce(sum(size), 0) FROM messages WHERE topic_id = ? AND message_offset < ?")
      .pluck();
    this.selectPurgeBound = db
      .prepare("SELECT message_offset FROM messages WHERE topic_id = ? ORDER BY message_offset LIMIT 1 OFFSET ?")
      .pluck();
    this.deleteBelow = db.prepare("DELETE FROM messages WHERE topic_id = ? AND message_offset <= ?");
  }

  /**
   * Appends messages to a topic's log and advances `counters`; call inside a transaction, on a
   * draft of the counters that the caller applies after commit.
   */
  append(counters: LogCounters, messages: MessageInput[], nowMs: number): PublishedRef[] {
    const publishTime = Math.max(nowMs, counters.lastPublishTimeMs);
    const refs: PublishedRef[] = new Array(messages.length);
    let index = 0;
    while (index < messages.length) {
      const size = chunkSizeFor(messages.length - index);
      const rows = INSERT_CHUNK_ROWS[size];
      const shape = shapeOf(messages, index, rows);
      const parameters: unknown[] = new Array(rows * ROW_PARAMETERS[shape]);
      const shared = { 1: counters.id, 2: counters.nextOffset, 3: publishTime };
      for (let row = 0, slot = 0; row < rows; row++, index++) {
        const message = messages[index]!;
        const offset = counters.nextOffset++;
        let bytes = message.data.byteLength;
        if (shape === RowShape.full) {
          const attributes = message.attributes ?? {};
          bytes = messageSize({ data: message.data, attributes });
          parameters[slot++] = message.orderingKey ?? "";
          parameters[slot++] = hasKeys(attributes) ? JSON.stringify(attributes) : null;
        }
        // better-sqlite3 binds any Uint8Array as a BLOB (copied by SQLite): no Buffer view needed.
        parameters[slot++] = message.data;
        parameters[slot++] = bytes;
        counters.bytes += bytes;
        refs[index] = { offset, messageId: messageIdOf(counters.id, offset) };
      }
      this.insertStatement(shape, size).run(parameters, shared);
    }
    counters.lastPublishTimeMs = publishTime;
    return refs;
  }

  /** The prepared INSERT of `INSERT_CHUNK_ROWS[size]` rows of `shape`. */
  private insertStatement(shape: RowShape, size: number): Database.Statement {
    let statement = this.insertChunks[shape]![size];
    if (statement === undefined) {
      const values: string[] = [];
      for (let row = 0; row < INSERT_CHUNK_ROWS[size]; row++) {
        values.push(
          shape === RowShape.plain ? `(?1, ?2 + ${row}, ?3, '', NULL, ?, ?)` : `(?1, ?2 + ${row}, ?3, ?, ?, ?, ?)`,
        );
      }
      statement = this.db.prepare(
        `INSERT INTO messages (topic_id, message_offset, publish_time, ordering_key, attributes, data, size) VALUES ${values.join(", ")}`,
      );
      this.insertChunks[shape]![size] = statement;
    }
    return statement;
  }

  /** Writes a topic's counters to its row; call inside the transaction that changed them. */
  saveCounters(counters: LogCounters): void {
    const { firstOffset, nextOffset, bytes, lastPublishTimeMs, id } = counters;
    this.updateCounters.run(firstOffset, nextOffset, bytes, lastPublishTimeMs, id);
  }

  /** Messages from `fromOffset` in order: at most `maxMessages`, stopping once `maxBytes` is reached (at least one). */
  read(topicId: number, fromOffset: number, maxMessages: number, maxBytes: number): StoredMessage[] {
    const messages: StoredMessage[] = [];
    let bytes = 0;
    for (const row of this.selectFrom.iterate(topicId, fromOffset, maxMessages) as IterableIterator<MessageRow>) {
      const [offset, publishTimeMs, orderingKey, attributes, data] = row;
      const message: StoredMessage = {
        offset,
        messageId: messageIdOf(topicId, offset),
        publishTimeMs,
        data,
        attributes: attributes === null ? {} : (JSON.parse(attributes) as Record<string, string>),
        orderingKey,
      };
      bytes += attributes === null ? data.byteLength : messageSize(message);
      if (messages.length > 0 && bytes > maxBytes) break;
      messages.push(message);
      if (bytes >= maxBytes) break;
    }
    return messages;
  }

  /** First offset published at or after `timeMs` (next offset if none): binary search, as publish times never decrease. */
  offsetAtTime(counters: LogCounters, timeMs: number): number {
    let low = counters.firstOffset;
    let high = counters.nextOffset;
    while (low < high) {
      const middle = Math.floor((low + high) / 2);
      const time = this.selectPublishTime.get(counters.id, middle) as number | undefined;
      if (time === undefined || time >= timeMs) high = middle;
      else low = middle + 1;
    }
    return low;
  }

  /** Counts retained messages at or after `fromOffset` that `accept` admits, and the first one's publish time. */
  count(
    counters: LogCounters,
    fromOffset: number,
    accept: BacklogPredicate | null,
  ): { count: number; firstPublishTimeMs: number | null } {
    const start = Math.max(fromOffset, counters.firstOffset);
    if (accept === null) {
      const count = Math.max(0, counters.nextOffset - start);
      const first = count > 0 ? (this.selectPublishTime.get(counters.id, start) as number | undefined) : undefined;
      return { count, firstPublishTimeMs: first ?? null };
    }
    let count = 0;
    let firstPublishTimeMs: number | null = null;
    for (const row of this.selectAttributesFrom.iterate(counters.id, start) as IterableIterator<
      [number, number, string | null]
    >) {
      const attributes = row[2] === null ? {} : (JSON.parse(row[2]) as Record<string, string>);
      if (!accept(row[0], attributes)) continue;
      count++;
      firstPublishTimeMs ??= row[1];
    }
    return { count, firstPublishTimeMs };
  }

  /**
   * The offset below which the log must go for its bytes to fit `retentionBytes`, looking at no
   * more than `maxRows` messages (callers trim in chunks).
   */
  sizeCutoff(counters: LogCounters, retentionBytes: number, maxRows: number): number {
    let excess = counters.bytes - retentionBytes;
    let cutoff = counters.firstOffset;
    if (excess <= 0) return cutoff;
    for (const [offset, size] of this.selectSizesFrom.iterate(counters.id, cutoff, maxRows) as IterableIterator<
      [number, number]
    >) {
      cutoff = offset + 1;
      excess -= size;
      if (excess <= 0) break;
    }
    return cutoff;
  }

  /** Deletes messages below `offset` and moves the counters; call inside a transaction on a draft. */
  trimBefore(counters: LogCounters, offset: number): void {
    if (offset <= counters.firstOffset) return;
    const end = Math.min(offset, counters.nextOffset);
    counters.bytes -= this.sumRange.get(counters.id, end) as number;
    this.deleteRange.run(counters.id, end);
    counters.firstOffset = end;
  }

  /** Deletes up to `limit` messages of a deleted topic; returns how many went. */
  purgeChunk(topicId: number, limit: number): number {
    const bound = this.selectPurgeBound.get(topicId, limit - 1) as number | undefined;
    if (bound === undefined) return this.deleteRange.run(topicId, Number.MAX_SAFE_INTEGER).changes;
    return this.deleteBelow.run(topicId, bound).changes;
  }

  /** Runs `work` in one transaction (nested calls become savepoints). */
  transaction<T>(work: () => T): T {
    return this.runInTransaction(work) as T;
  }
}

/** Index in {@link INSERT_CHUNK_ROWS} of the largest chunk that fits `remaining` rows (at least 1). */
function chunkSizeFor(remaining: number): number {
  let size = 0;
  while (INSERT_CHUNK_ROWS[size]! > remaining) size++;
  return size;
}

/** {@link RowShape.plain} when none of `rows` messages from `start` has attributes or an ordering key. */
function shapeOf(messages: MessageInput[], start: number, rows: number): RowShape {
  for (let index = start; index < start + rows; index++) {
    const message = messages[index]!;
    if ((message.orderingKey ?? "") !== "" || (message.attributes !== undefined && hasKeys(message.attributes))) {
      return RowShape.full;
    }
  }
  return RowShape.plain;
}

function hasKeys(record: Record<string, string>): boolean {
  for (const _ in record) return true;
  return false;
}
