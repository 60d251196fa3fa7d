// Unit tests of the in-memory tail of a topic's log: contiguity, bounds, reads as SQLite answers them, trimming.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { MessageInput, PublishedRef } from "../../broker/types.js";
import { RECENT_MAX_BYTES, RECENT_MAX_MESSAGES, RecentMessages } from "./recent-messages.js";

function batch(fromOffset: number, count: number, bytes = 10): { messages: MessageInput[]; refs: PublishedRef[] } {
  const messages: MessageInput[] = [];
  const refs: PublishedRef[] = [];
  for (let index = 0; index < count; index++) {
    const offset = fromOffset + index;
    messages.push({
      data: new Uint8Array(bytes).fill(offset % 256),
      attributes: { n: String(offset) },
      orderingKey: "",
    });
    refs.push({ offset, messageId: `7-${offset}` });
  }
  return { messages, refs };
}

describe("recent messages", () => {
  it("recent messages - reads what was appended, with the ids, time and copies of data and attributes", () => {
    const recent = new RecentMessages();
    const { messages, refs } = batch(1, 3);
    recent.append(messages, refs, 1234);
    const read = recent.read(2, 10, 1_000_000);
    assert.deepEqual(
      read?.map((message) => [message.offset, message.messageId, message.publishTimeMs, message.attributes.n]),
      [
        [2, "7-2", 1234, "2"],
        [3, "7-3", 1234, "3"],
      ],
    );
    assert.ok(Buffer.isBuffer(read?.[0]?.data));
    messages[1]!.data[0] = 99;
    messages[1]!.attributes!.n = "changed";
    assert.equal(read?.[0]?.data[0], 2);
    assert.equal(read?.[0]?.attributes.n, "2");
  });

  it("recent messages - offsets outside the window are not answered (the caller reads SQLite)", () => {
    const recent = new RecentMessages();
    assert.equal(recent.read(1, 10, 1000), null);
    const { messages, refs } = batch(5, 2);
    recent.append(messages, refs, 1);
    assert.equal(recent.read(4, 10, 1000), null);
    assert.equal(recent.read(7, 10, 1000), null);
    assert.equal(recent.read(6, 10, 1000)?.length, 1);
  });

  it("recent messages - a gap restarts the window", () => {
    const recent = new RecentMessages();
    const first = batch(1, 3);
    recent.append(first.messages, first.refs, 1);
    const later = batch(10, 2);
    recent.append(later.messages, later.refs, 2);
    assert.equal(recent.firstOffset, 10);
    assert.equal(recent.read(2, 10, 1000), null);
  });

  it("recent messages - stops at max messages and at max bytes, always returning at least one", () => {
    const recent = new RecentMessages();
    const { messages, refs } = batch(1, 10, 100);
    recent.append(messages, refs, 1);
    // Each message counts 100 bytes of data plus "n" and its value.
    assert.equal(recent.read(1, 4, 1_000_000)?.length, 4);
    assert.equal(recent.read(1, 10, 250)?.length, 2);
    assert.equal(recent.read(1, 10, 10)?.length, 1);
  });

  it("recent messages - keeps at most the newest RECENT_MAX_MESSAGES and RECENT_MAX_BYTES", () => {
    const recent = new RecentMessages();
    let last = 0;
    while (last < 3 * RECENT_MAX_MESSAGES) {
      const { messages, refs } = batch(last + 1, 100);
      recent.append(messages, refs, 1);
      last += 100;
    }
    assert.equal(recent.firstOffset, last - RECENT_MAX_MESSAGES + 1);
    assert.equal(recent.read(last, 10, 1000)?.[0]?.offset, last);
    const big = new RecentMessages();
    const { messages, refs } = batch(1, 3, RECENT_MAX_BYTES / 2);
    big.append(messages, refs, 1);
    assert.equal(big.firstOffset, 3);
    const huge = batch(4, 1, RECENT_MAX_BYTES + 1);
    big.append(huge.messages, huge.refs, 1);
    assert.equal(big.firstOffset, null);
  });

  it("recent messages - dropBefore forgets trimmed offsets", () => {
    const recent = new RecentMessages();
    const { messages, refs } = batch(1, 5);
    recent.append(messages, refs, 1);
    recent.dropBefore(4);
    assert.equal(recent.firstOffset, 4);
    assert.equal(recent.read(3, 10, 1000), null);
    recent.dropBefore(100);
    assert.equal(recent.firstOffset, null);
  });
});
