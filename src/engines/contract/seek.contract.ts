// Engine contract: seek to a time (with and without replaying acked messages), snapshots and seek to snapshot.
import assert from "node:assert/strict";
import { describe } from "node:test";
import { Code } from "../../errors/index.js";
import {
  assertCode,
  assertNothingToPull,
  drain,
  engineTest,
  type MakeEngine,
  message,
  PROJECT,
  pullAtLeast,
  sleep,
  snapshotName,
  subscriptionName,
  text,
  topicWithSubscription,
} from "./contract-helpers.js";

/** A time strictly between messages published before and after it. */
async function pause(): Promise<number> {
  await sleep(15);
  const time = Date.now();
  await sleep(15);
  return time;
}

/** Seek and snapshot semantics. */
export function seekContract(makeEngine: MakeEngine): void {
  describe("seek", () => {
    engineTest(makeEngine, "seek to time - replays acked messages with retain_acked_messages", async (engine) => {
      const { topic, subscription } = await topicWithSubscription(engine, "seek-retain", { retainAckedMessages: true });
      await engine.publish(topic, [message("old1"), message("old2")]);
      const middle = await pause();
      await engine.publish(topic, [message("new1"), message("new2")]);
      await drain(engine, subscription, 4);
      await engine.seek(subscription, { timeMs: middle });
      assert.deepEqual((await drain(engine, subscription, 2)).map(text), ["new1", "new2"]);
      await engine.seek(subscription, { timeMs: 0 });
      assert.deepEqual((await drain(engine, subscription, 4)).map(text), ["old1", "old2", "new1", "new2"]);
      await engine.seek(subscription, { timeMs: Date.now() + 60_000 });
      await assertNothingToPull(engine, subscription);
      assert.equal((await engine.subscriptionStats(subscription)).backlog, 0, "seeking to the future acks everything");
    });

    engineTest(makeEngine, "seek to time - without retained acks only unacked messages come back", async (engine) => {
      const { topic, subscription } = await topicWithSubscription(engine, "seek-plain");
      const start = await pause();
      await engine.publish(topic, [message("m1"), message("m2")]);
      const middle = await pause();
      await engine.publish(topic, [message("m3"), message("m4")]);
      const received = await pullAtLeast(engine, subscription, 4);
      await engine.acknowledge(
        subscription,
        received.filter((item) => ["m1", "m3"].includes(text(item))).map((item) => item.ackId),
      );
      await engine.seek(subscription, { timeMs: start });
      const replayed = await pullAtLeast(engine, subscription, 2);
      assert.deepEqual(replayed.map(text).sort(), ["m2", "m4"], "leases were cleared; acked ones stay acked");
      await assertNothingToPull(engine, subscription);
      await engine.seek(subscription, { timeMs: middle });
      assert.deepEqual((await drain(engine, subscription, 1)).map(text), ["m4"], "m2 was before the time: acked");
      await assertNothingToPull(engine, subscription);
    });

    engineTest(makeEngine, "seek to snapshot - restores the ack state captured at creation", async (engine) => {
      const { topic, subscription } = await topicWithSubscription(engine, "snap");
      await engine.publish(topic, [message("s1"), message("s2"), message("s3")]);
      const received = await pullAtLeast(engine, subscription, 3);
      await engine.acknowledge(subscription, [received.find((item) => text(item) === "s1")!.ackId]);
      const name = snapshotName("snap");
      const snapshot = await engine.createSnapshot(name, subscription, { purpose: "test" });
      assert.equal(snapshot.topic, topic);
      assert.deepEqual(snapshot.labels, { purpose: "test" });
      assert.ok(
        snapshot.expireTimeMs > Date.now() + 6 * 86_400_000,
        "expires about 7 days after the oldest unacked message",
      );
      await engine.acknowledge(
        subscription,
        received.map((item) => item.ackId),
      );
      await engine.publish(topic, [message("s4")]);
      await drain(engine, subscription, 1);
      await engine.seek(subscription, { snapshot: name });
      assert.deepEqual((await drain(engine, subscription, 3)).map(text), ["s2", "s3", "s4"]);
      await assertNothingToPull(engine, subscription);
    });

    engineTest(makeEngine, "snapshots - get, update, list, delete and errors", async (engine) => {
      const { topic, subscription } = await topicWithSubscription(engine, "snap-crud");
      const name = snapshotName("crud");
      const created = await engine.createSnapshot(name, subscription, {});
      assert.deepEqual(await engine.getSnapshot(name), created);
      await assertCode(engine.createSnapshot(name, subscription, {}), Code.ALREADY_EXISTS, name);
      await assertCode(engine.createSnapshot(snapshotName("orphan"), subscriptionName("missing"), {}), Code.NOT_FOUND);
      await assertCode(engine.getSnapshot(snapshotName("missing")), Code.NOT_FOUND);
      await assertCode(engine.seek(subscription, { snapshot: snapshotName("missing") }), Code.NOT_FOUND);
      const updated = await engine.updateSnapshot(name, { patch: { labels: { env: "dev" } }, paths: ["labels"] });
      assert.deepEqual(updated.labels, { env: "dev" });
      await assertCode(engine.updateSnapshot(name, { patch: {}, paths: ["topic"] }), Code.INVALID_ARGUMENT, "topic");
      const listed = await engine.listSnapshots(PROJECT, { pageSize: 1000, pageToken: "" });
      assert.ok(listed.items.some((item) => item.name === name));
      const byTopic = await engine.listTopicSnapshots(topic, { pageSize: 10, pageToken: "" });
      assert.deepEqual(byTopic.items, [name]);

      const other = await topicWithSubscription(engine, "snap-other");
      await assertCode(engine.seek(other.subscription, { snapshot: name }), Code.FAILED_PRECONDITION);
      await engine.deleteSnapshot(name);
      await assertCode(engine.getSnapshot(name), Code.NOT_FOUND);
      await assertCode(engine.deleteSnapshot(name), Code.NOT_FOUND);
    });
  });
}
