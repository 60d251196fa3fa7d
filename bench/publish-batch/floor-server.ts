// The floor of Publish (100 × 256 B): bare node:http2 plus better-sqlite3 doing only what a durable batched publish
// needs — read the framed PublishRequest, pick each message's data out of the protobuf, insert the batch with
// multi-row INSERTs into the same table and pragmas as the embedded engine, commit, answer 100 message ids.
// No validation, no interceptors, no protobuf library, no group commit across requests.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";

const dir = mkdtempSync(join(tmpdir(), "publish-floor-"));
const db = new Database(join(dir, "floor.db"));
db.pragma("locking_mode = EXCLUSIVE");
db.pragma("journal_mode = WAL");
db.pragma("synchronous = NORMAL");
db.pragma("cache_size = -32768");
db.pragma("temp_store = MEMORY");
db.exec(`
  CREATE TABLE topics (id INTEGER PRIMARY KEY, next_offset INTEGER NOT NULL, bytes INTEGER NOT NULL) STRICT;
  CREATE TABLE messages (
    topic_id INTEGER NOT NULL, message_offset INTEGER NOT NULL, publish_time INTEGER NOT NULL,
    ordering_key TEXT NOT NULL, attributes TEXT, data BLOB NOT NULL, size INTEGER NOT NULL,
    PRIMARY KEY (topic_id, message_offset)
  ) STRICT, WITHOUT ROWID;
  INSERT INTO topics VALUES (1, 1, 0);`);

/** Rows per INSERT, largest first (100 = 64 + 32 + 4). */
const CHUNKS = [64, 32, 4, 1];
const inserts = CHUNKS.map((rows) =>
  db.prepare(
    `INSERT INTO messages (topic_id, message_offset, publish_time, ordering_key, attributes, data, size) VALUES ${Array.from(
      { length: rows },
      (_, row) => `(?1, ?2 + ${row}, ?3, '', NULL, ?, ?)`,
    ).join(", ")}`,
  ),
);
const saveCounters = db.prepare("UPDATE topics SET next_offset = ?, bytes = ? WHERE id = 1");
let nextOffset = 1;
let bytes = 0;

/** Reads a protobuf varint at `position`; returns [value, next position]. */
function varint(buffer: Buffer, position: number): [number, number] {
  let value = 0;
  let shift = 0;
  for (;;) {
    const byte = buffer[position++]!;
    value += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) return [value, position];
    shift += 7;
  }
}

/** The `data` of every `messages` entry (field 2) of a PublishRequest; other fields are skipped. */
function messagesData(request: Buffer): Buffer[] {
  const data: Buffer[] = [];
  let position = 0;
  while (position < request.length) {
    const [tag, afterTag] = varint(request, position);
    const [length, start] = varint(request, afterTag);
    position = start + length;
    if (tag !== ((2 << 3) | 2)) continue;
    let inner = start;
    while (inner < position) {
      const [innerTag, afterInnerTag] = varint(request, inner);
      const [innerLength, innerStart] = varint(request, afterInnerTag);
      inner = innerStart + innerLength;
      if (innerTag === ((1 << 3) | 2)) data.push(request.subarray(innerStart, inner));
    }
  }
  return data;
}

const commit = db.transaction((data: Buffer[]) => {
  const now = Date.now();
  let index = 0;
  while (index < data.length) {
    const shape = CHUNKS.findIndex((rows) => rows <= data.length - index);
    const rows = CHUNKS[shape]!;
    const parameters: unknown[] = [];
    for (let row = 0; row < rows; row++) {
      const item = data[index + row]!;
      parameters.push(item, item.length);
      bytes += item.length;
    }
    inserts[shape]!.run(parameters, { 1: 1, 2: nextOffset + index, 3: now });
    index += rows;
  }
  const first = nextOffset;
  nextOffset += data.length;
  saveCounters.run(nextOffset, bytes);
  return first;
});

/** A PublishResponse: `message_ids` (field 1) as `1-<offset>`, framed. */
function response(first: number, count: number): Buffer {
  const parts: Buffer[] = [];
  for (let offset = first; offset < first + count; offset++) {
    const id = Buffer.from(`1-${offset}`);
    parts.push(Buffer.from([0x0a, id.length]), id);
  }
  const body = Buffer.concat(parts);
  const header = Buffer.alloc(5);
  header.writeUInt32BE(body.length, 1);
  return Buffer.concat([header, body]);
}

const server = createServer();
server.on("stream", (stream) => {
  const chunks: Buffer[] = [];
  stream.on("data", (chunk: Buffer) => chunks.push(chunk));
  stream.on("end", () => {
    const frame = Buffer.concat(chunks);
    const data = messagesData(frame.subarray(5, 5 + frame.readUInt32BE(1)));
    // Committed before the answer, as streamgate acknowledges a publish only after its commit.
    const first = commit(data);
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.end(response(first, data.length));
  });
});
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  process.stdout.write(`${typeof address === "object" && address !== null ? address.port : 0}\n`);
});
process.on("SIGTERM", () => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
});
