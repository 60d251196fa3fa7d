// Tests of the dashboard's history over a real embedded engine: samples in order, bounded per series and in count,
// and a deleted resource loses its series.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createEmbeddedEngine, type EmbeddedEngine } from "../../engines/embedded/index.js";
import { createStatsHistory } from "./stats-history.js";

const text = (value: string) => ({ data: new TextEncoder().encode(value), attributes: {}, orderingKey: "" });

describe("dashboard stats history", () => {
  let dataDir: string;
  let engine: EmbeddedEngine;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "streamgate-history-"));
    engine = await createEmbeddedEngine({ dataDir });
  });
  after(async () => {
    await engine?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  test("stats history - samples topics and subscriptions in time order and keeps at most `capacity` per series", async () => {
    const topic = "projects/h1/topics/orders";
    const subscription = "projects/h1/subscriptions/billing";
    await engine.createTopic({ name: topic });
    await engine.createSubscription({ name: subscription, topic });
    const history = createStatsHistory({ engine, intervalMs: 1_000, capacity: 3 });
    try {
      for (let round = 1; round <= 5; round++) {
        await engine.publish(topic, [text(`m${round}`)]);
        await history.sampleNow();
      }
      const topicSamples = history.topic(topic);
      assert.deepEqual(
        topicSamples.map((sample) => sample.nextOffset),
        [4, 5, 6],
        "offsets start at 1; the two oldest samples were evicted",
      );
      assert.ok(topicSamples.every((sample, index) => index === 0 || sample.atMs >= topicSamples[index - 1]!.atMs));
      assert.deepEqual(
        history.subscription(subscription).map((sample) => sample.backlog),
        [3, 4, 5],
      );
      assert.ok(history.subscription(subscription).every((sample) => sample.oldestUnackedAgeMs >= 0));
    } finally {
      await history.close();
    }
  });

  test("stats history - a deleted topic or subscription loses its series at the next sample", async () => {
    const topic = "projects/h2/topics/gone";
    const subscription = "projects/h2/subscriptions/gone-sub";
    await engine.createTopic({ name: topic });
    await engine.createSubscription({ name: subscription, topic });
    const history = createStatsHistory({ engine, intervalMs: 1_000 });
    try {
      await history.sampleNow();
      assert.equal(history.topic(topic).length, 1);
      assert.equal(history.subscription(subscription).length, 1);
      await engine.deleteSubscription(subscription);
      await engine.deleteTopic(topic);
      await history.sampleNow();
      assert.deepEqual(history.topic(topic), []);
      assert.deepEqual(history.subscription(subscription), []);
    } finally {
      await history.close();
    }
  });

  test("stats history - samples no more series than maxSeries, however many resources exist", async () => {
    for (let index = 0; index < 6; index++) await engine.createTopic({ name: `projects/h3/topics/topic-${index}` });
    const history = createStatsHistory({ engine, intervalMs: 1_000, maxSeries: 4, capacity: 2 });
    try {
      for (let round = 0; round < 3; round++) await history.sampleNow();
      assert.equal(history.seriesCount(), 4, "six topics here (and others before) share four series");
      const sampled = Array.from({ length: 6 }, (_, index) => history.topic(`projects/h3/topics/topic-${index}`));
      assert.ok(sampled.every((samples) => samples.length <= 2));
    } finally {
      await history.close();
    }
  });

  test("stats history - the timer samples on its own and close() stops it", async () => {
    const topic = "projects/h4/topics/ticks";
    await engine.createTopic({ name: topic });
    const history = createStatsHistory({ engine, intervalMs: 20 });
    history.start();
    const deadline = Date.now() + 5_000;
    while (history.topic(topic).length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.ok(history.topic(topic).length >= 3, "three samples within 5 s at a 20 ms interval");
    await history.close();
    assert.deepEqual(history.topic(topic), [], "close() drops the series");
  });

  test("stats history - refuses an interval below 10 ms", () => {
    assert.throws(() => createStatsHistory({ engine, intervalMs: 1 }), /sample interval must be >= 10 ms/);
  });
});
