// Unit tests of the stream hub over the embedded engine: positions, handoff to the shared tail, gaps, slow consumers.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { StoredMessage } from "../broker/types.js";
import { createEmbeddedEngine, type EmbeddedEngine } from "../engines/embedded/index.js";
import { Code, StreamgateError } from "../errors/index.js";
import { createStreamHub } from "./stream-hub.js";
import type { FeedEvent, FeedSubscription } from "./types.js";

const text = (value: string) => ({ data: new TextEncoder().encode(value), attributes: {}, orderingKey: "" });

describe("stream hub", () => {
  let dataDir: string;
  let engine: EmbeddedEngine;
  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "streamgate-hub-"));
    engine = await createEmbeddedEngine({ dataDir });
  });
  after(async () => {
    await engine.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  async function take(subscription: FeedSubscription, count: number): Promise<FeedEvent[]> {
    const events: FeedEvent[] = [];
    const iterator = subscription[Symbol.asyncIterator]();
    while (events.length < count) {
      const result = await iterator.next();
      if (result.done === true) break;
      if (result.value.kind !== "heartbeat") events.push(result.value);
    }
    return events;
  }
  const offsets = (events: FeedEvent[]) =>
    events.map((event) =>
      event.kind === "message" ? event.message.offset : `gap:${event.kind === "gap" ? event.lost : 0}`,
    );

  it("stream hub - earliest catches up from history and joins the live tail without gap or duplicate", async () => {
    const topic = "projects/p/topics/handoff";
    await engine.createTopic({ name: topic });
    await engine.publish(
      topic,
      Array.from({ length: 1200 }, (_, index) => text(`h${index}`)),
    );
    const hub = createStreamHub({ engine, batchMaxMessages: 100 });
    const controller = new AbortController();
    const live = await hub.subscribe({ topic, from: { kind: "latest" }, filter: "", signal: controller.signal });
    const history = await hub.subscribe({ topic, from: { kind: "earliest" }, filter: "", signal: controller.signal });
    const publishing = (async () => {
      for (let index = 0; index < 30; index++) await engine.publish(topic, [text(`l${index}`)]);
    })();
    const all = await take(history, 1230);
    await publishing;
    assert.deepEqual(
      offsets(all),
      Array.from({ length: 1230 }, (_, index) => index + 1),
    );
    assert.deepEqual(
      offsets(await take(live, 30)),
      Array.from({ length: 30 }, (_, index) => 1201 + index),
    );
    assert.equal(hub.stats().topics, 1);
    controller.abort();
    assert.equal(hub.stats().subscribers, 0);
    assert.equal(hub.stats().topics, 0);
    await hub.close();
  });

  it("stream hub - after N resumes at N+1, filters apply, unknown topic and bad positions are rejected", async () => {
    const topic = "projects/p/topics/resume";
    await engine.createTopic({ name: topic });
    await engine.publish(
      topic,
      Array.from({ length: 10 }, (_, index) => ({
        ...text(`${index}`),
        attributes: { even: String(index % 2 === 0) },
      })),
    );
    const hub = createStreamHub({ engine });
    const controller = new AbortController();
    const resumed = await hub.subscribe({
      topic,
      from: { kind: "after", offset: 7 },
      filter: "",
      signal: controller.signal,
    });
    assert.deepEqual(offsets(await take(resumed, 3)), [8, 9, 10]);
    assert.equal(resumed.lastOffset, 10);
    const filtered = await hub.subscribe({
      topic,
      from: { kind: "earliest" },
      filter: 'attributes.even = "true"',
      signal: controller.signal,
    });
    assert.deepEqual(offsets(await take(filtered, 5)), [1, 3, 5, 7, 9]);
    await assert.rejects(
      hub.subscribe({
        topic: "projects/p/topics/none",
        from: { kind: "latest" },
        filter: "",
        signal: controller.signal,
      }),
      (error: unknown) => error instanceof StreamgateError && error.code === Code.NOT_FOUND,
    );
    await assert.rejects(
      hub.subscribe({ topic, from: { kind: "after", offset: 99 }, filter: "", signal: controller.signal }),
      (error: unknown) => error instanceof StreamgateError && error.code === Code.INVALID_ARGUMENT,
    );
    await assert.rejects(
      hub.subscribe({ topic, from: { kind: "latest" }, filter: "attributes.x ==", signal: controller.signal }),
      (error: unknown) => error instanceof StreamgateError && error.code === Code.INVALID_ARGUMENT,
    );
    controller.abort();
    await hub.close();
  });

  it("stream hub - a position below retention gets a gap event first", async () => {
    const topic = "projects/p/topics/gap";
    await engine.createTopic({ name: topic, retentionBytes: 100 });
    await engine.publish(
      topic,
      Array.from({ length: 10 }, (_, index) => text(`${index}`.padStart(30, "x"))),
    );
    await engine.runMaintenance();
    const stats = await engine.topicStats(topic);
    assert.ok(stats.firstOffset > 1, "retention trimmed the log");
    const hub = createStreamHub({ engine });
    const controller = new AbortController();
    const subscription = await hub.subscribe({
      topic,
      from: { kind: "after", offset: 0 },
      filter: "",
      signal: controller.signal,
    });
    const [gap, first] = await take(subscription, 2);
    assert.deepEqual(gap, {
      kind: "gap",
      fromOffset: 1,
      firstAvailable: stats.firstOffset,
      lost: stats.firstOffset - 1,
    });
    assert.equal((first as { message: StoredMessage }).message.offset, stats.firstOffset);
    controller.abort();
    await hub.close();
  });

  it("stream hub - a subscriber that does not read is dropped as SLOW_CONSUMER; others and heartbeats go on", async () => {
    const topic = "projects/p/topics/slow";
    await engine.createTopic({ name: topic });
    const hub = createStreamHub({ engine, maxBufferBytes: 64 * 1024, heartbeatMs: 100 });
    const controller = new AbortController();
    const slow = await hub.subscribe({ topic, from: { kind: "latest" }, filter: "", signal: controller.signal });
    const fast = await hub.subscribe({ topic, from: { kind: "latest" }, filter: "", signal: controller.signal });
    const keepAlive = setInterval(() => undefined, 1000); // the hub's own timer is unref'd
    const iterator = fast[Symbol.asyncIterator]();
    assert.deepEqual((await iterator.next()).value, { kind: "heartbeat" });
    const payload = "y".repeat(1024);
    const received = (async () => {
      let count = 0;
      while (count < 200) {
        const result = await iterator.next();
        if (result.value?.kind === "message") count++;
      }
      return count;
    })();
    for (let index = 0; index < 200; index++) await engine.publish(topic, [text(payload)]);
    assert.equal(await received, 200);
    await assert.rejects(take(slow, 1000), (error: unknown) => {
      assert.ok(error instanceof StreamgateError);
      assert.equal(error.code, Code.RESOURCE_EXHAUSTED);
      assert.equal(error.reason, "SLOW_CONSUMER");
      assert.match(error.message, /resume after the last offset you received/);
      assert.equal(error.details?.lastSent, "0");
      return true;
    });
    assert.equal(hub.stats().droppedSlowConsumers, 1);
    clearInterval(keepAlive);
    controller.abort();
    await hub.close();
  });
  it("stream hub - nextBatch takes every queued event at once, in order, then null after abort; a slow consumer's drop rejects it", async () => {
    const topic = "projects/p/topics/batches";
    await engine.createTopic({ name: topic });
    await engine.publish(
      topic,
      Array.from({ length: 5 }, (_, index) => text(`b${index}`)),
    );
    const hub = createStreamHub({ engine, maxBufferBytes: 4 * 1024 });
    const controller = new AbortController();
    const subscription = await hub.subscribe({
      topic,
      from: { kind: "earliest" },
      filter: "",
      signal: controller.signal,
    });
    await subscription.caughtUp;
    const first = await subscription.nextBatch();
    assert.deepEqual(offsets([...(first ?? [])]), [1, 2, 3, 4, 5], "the whole history page in one batch");
    assert.equal(subscription.lastOffset, 5);
    // Two publishes while nobody reads: one batch of both, in order.
    await engine.publish(topic, [text("l1")]);
    await engine.publish(topic, [text("l2"), text("l3")]);
    let live: FeedEvent[] = [];
    while (live.length < 3) live = [...live, ...((await subscription.nextBatch()) ?? [])];
    assert.deepEqual(offsets(live), [6, 7, 8]);
    controller.abort();
    assert.equal(await subscription.nextBatch(), null);

    // A subscriber that never reads overflows its queue: the failure is thrown by nextBatch, queue discarded.
    const stalled = new AbortController();
    const slow = await hub.subscribe({ topic, from: { kind: "latest" }, filter: "", signal: stalled.signal });
    await slow.caughtUp;
    for (let index = 0; index < 20; index++) await engine.publish(topic, [text("x".repeat(1024))]);
    await assert.rejects(
      async () => {
        for (;;) if ((await slow.nextBatch()) === null) return;
      },
      (error: StreamgateError) => error.reason === "SLOW_CONSUMER",
    );
    stalled.abort();
    await hub.close();
  });
});
