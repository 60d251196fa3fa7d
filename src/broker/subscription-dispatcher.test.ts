// Unit tests of the dispatcher over an in-memory log: memory bounds, redelivery order, ack persistence.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { AckChange, DispatchLog } from "./dispatch-log.js";
import { messageSize } from "./message-limits.js";
import { SubscriptionDispatcher } from "./subscription-dispatcher.js";
import { resolveSubscription } from "./subscription-settings.js";
import type { MessageInput, StoredMessage, Subscription } from "./types.js";

const never = new AbortController().signal;

/** An in-memory log that records what the dispatcher asks of it. */
class MemoryLog implements DispatchLog {
  readonly messages: StoredMessage[] = [];
  readonly saved: AckChange[] = [];
  readonly reads: { from: number; max: number }[] = [];
  readonly deadLetters: MessageInput[] = [];

  append(count: number, orderingKey = "", attributes: Record<string, string> = {}): number {
    for (let index = 0; index < count; index++) {
      const offset = this.messages.length + 1;
      this.messages.push({
        offset,
        messageId: String(offset),
        publishTimeMs: 1000 + offset,
        data: new TextEncoder().encode(`m${offset}`),
        attributes,
        orderingKey,
      });
    }
    return this.messages.length + 1;
  }

  read(fromOffset: number, maxMessages: number, maxBytes: number): StoredMessage[] {
    this.reads.push({ from: fromOffset, max: maxMessages });
    const out: StoredMessage[] = [];
    let bytes = 0;
    for (const message of this.messages) {
      if (message.offset < fromOffset) continue;
      if (out.length >= maxMessages || (out.length > 0 && bytes >= maxBytes)) break;
      bytes += messageSize(message);
      out.push(message);
    }
    return out;
  }

  count(fromOffset: number, accept: ((offset: number, attributes: Record<string, string>) => boolean) | null) {
    const rest = this.messages.filter((message) => message.offset >= fromOffset);
    const counted = accept === null ? rest : rest.filter((message) => accept(message.offset, message.attributes));
    return { count: counted.length, firstPublishTimeMs: counted[0]?.publishTimeMs ?? null };
  }

  saveAcks(change: AckChange): void {
    this.saved.push(change);
  }

  deadLetter(_topic: string, messages: MessageInput[], change: AckChange): void {
    this.deadLetters.push(...messages);
    this.saved.push(change);
  }
}

function dispatcher(log: MemoryLog, subscription: Partial<Subscription> = {}, limits = {}) {
  const config = resolveSubscription(
    { name: "projects/p/subscriptions/unit", topic: "projects/p/topics/unit", ...subscription },
    0,
  );
  return new SubscriptionDispatcher({
    subscriptionId: 7,
    subscription: config,
    ackState: { floor: 1, acked: [] },
    topicEnd: log.messages.length + 1,
    log,
    now: Date.now,
    limits,
  });
}

function offsets(received: { message: StoredMessage }[]): number[] {
  return received.map((item) => item.message.offset);
}

describe("subscription dispatcher", () => {
  it("dispatcher - stops reading the log while held-back messages reach the bound", async () => {
    const log = new MemoryLog();
    const end = log.append(3000, "one-key");
    const subject = dispatcher(log, { enableMessageOrdering: true }, { maxBufferedMessages: 50 });
    subject.onAppend(end);
    const first = await subject.pull({ maxMessages: 10, waitMs: 0, signal: never });
    assert.deepEqual(offsets(first), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], "several of one key outstanding, in order");
    const highest = () => Math.max(...log.reads.map((read) => read.from + read.max - 1));
    assert.ok(highest() <= 60, `read up to offset ${highest()}: 50 buffered plus the 10 leased`);
    subject.acknowledge(first.map((item) => item.ackId));
    const second = await subject.pull({ maxMessages: 10, waitMs: 0, signal: never });
    assert.deepEqual(offsets(second), [11, 12, 13, 14, 15, 16, 17, 18, 19, 20], "the key stays in order");
    assert.ok(highest() <= 70, "reading resumes only as buffered messages are leased");
    subject.close();
  });

  it("dispatcher - a nack or expiry redelivers the message and every later outstanding one of its key, in order", async () => {
    const log = new MemoryLog();
    const end = log.append(6, "one-key");
    const subject = dispatcher(log, { enableMessageOrdering: true });
    subject.onAppend(end);
    const first = await subject.pull({ maxMessages: 4, waitMs: 0, signal: never });
    assert.deepEqual(offsets(first), [1, 2, 3, 4]);
    subject.acknowledge([first[0]!.ackId]);
    const nacked = subject.modifyAckDeadline([first[1]!.ackId], 0);
    assert.deepEqual(nacked.invalidAckIds, []);
    const again = await subject.pull({ maxMessages: 10, waitMs: 0, signal: never });
    assert.deepEqual(offsets(again), [2, 3, 4, 5, 6], "2 and the later outstanding 3, 4 come back before 5, 6");
    assert.deepEqual(
      again.slice(0, 3).map((item) => item.deliveryAttempt),
      [2, 2, 2],
    );
    const stale = subject.acknowledge([first[2]!.ackId, again[1]!.ackId]);
    assert.deepEqual(stale.invalidAckIds, [first[2]!.ackId], "the first delivery's ack id of 3 is stale");
    subject.close();
  });

  it("dispatcher - due redeliveries go before messages never delivered", async () => {
    const log = new MemoryLog();
    const subject = dispatcher(log);
    subject.onAppend(log.append(3));
    const [first] = await subject.pull({ maxMessages: 1, waitMs: 0, signal: never });
    subject.modifyAckDeadline([first!.ackId], 0);
    const again = await subject.pull({ maxMessages: 2, waitMs: 0, signal: never });
    assert.deepEqual(offsets(again), [1, 2]);
    assert.equal(again[0]!.deliveryAttempt, 2);
    subject.close();
  });

  it("dispatcher - a stream that ends returns unread messages without costing an attempt", async () => {
    const log = new MemoryLog();
    const subject = dispatcher(log);
    subject.onAppend(log.append(5));
    const abort = new AbortController();
    subject.openStream({
      ackDeadlineSeconds: 60,
      maxOutstandingMessages: 0,
      maxOutstandingBytes: 0,
      clientId: "c",
      signal: abort.signal,
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(subject.stats().outstanding, 5, "leased into the stream's buffer");
    abort.abort();
    const received = await subject.pull({ maxMessages: 10, waitMs: 0, signal: never });
    assert.deepEqual(offsets(received), [1, 2, 3, 4, 5]);
    assert.ok(received.every((item) => item.deliveryAttempt === 1));
    subject.close();
  });

  it("dispatcher - persists the floor and only the acks above it, one change per call", async () => {
    const log = new MemoryLog();
    const subject = dispatcher(log);
    subject.onAppend(log.append(5));
    const received = await subject.pull({ maxMessages: 5, waitMs: 0, signal: never });
    subject.acknowledge([received[1]!.ackId, received[2]!.ackId]);
    assert.deepEqual(log.saved.at(-1), { floor: 1, previousFloor: 1, acked: [2, 3] });
    subject.acknowledge([received[0]!.ackId]);
    assert.deepEqual(log.saved.at(-1), { floor: 4, previousFloor: 1, acked: [] });
    subject.acknowledge([received[4]!.ackId, received[3]!.ackId]);
    assert.deepEqual(log.saved.at(-1), { floor: 6, previousFloor: 4, acked: [] });
    assert.equal(log.saved.length, 3);
    assert.equal(subject.ackFloor, 6);
    subject.close();
  });

  it("dispatcher - filtered-out messages move the floor without a write per message", async () => {
    const log = new MemoryLog();
    log.append(100, "", { kind: "skip" });
    const subject = dispatcher(log, { filter: 'attributes.kind = "keep"' });
    subject.onAppend(log.append(1, "", { kind: "keep" }));
    assert.equal(subject.stats().backlog, 1);
    const [kept] = await subject.pull({ maxMessages: 10, waitMs: 0, signal: never });
    assert.equal(kept!.message.offset, 101);
    assert.equal(log.saved.length, 0);
    subject.acknowledge([kept!.ackId]);
    assert.deepEqual(log.saved, [{ floor: 102, previousFloor: 1, acked: [] }]);
    subject.close();
  });

  it("dispatcher - resumes from persisted acks, skipping acked offsets above the floor", async () => {
    const log = new MemoryLog();
    const config = resolveSubscription({ name: "projects/p/subscriptions/resume", topic: "projects/p/topics/unit" }, 0);
    const subject = new SubscriptionDispatcher({
      subscriptionId: 8,
      subscription: config,
      ackState: { floor: 2, acked: [3, 5] },
      topicEnd: log.append(6),
      log,
      now: Date.now,
    });
    assert.equal(subject.stats().backlog, 3);
    const received = await subject.pull({ maxMessages: 10, waitMs: 0, signal: never });
    assert.deepEqual(offsets(received), [2, 4, 6]);
    subject.close();
  });
});
