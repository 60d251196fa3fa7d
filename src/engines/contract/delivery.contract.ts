// Engine contract: pull delivery, acks, nacks, ack ids, retry, dead letters, ordering, filters, stats.
import assert from "node:assert/strict";
import { describe } from "node:test";
import type { ReceivedMessage } from "../../broker/types.js";
import { Code } from "../../errors/index.js";
import {
  assertCode,
  assertNothingToPull,
  drain,
  engineTest,
  type MakeEngine,
  message,
  pullAtLeast,
  sleep,
  subscriptionName,
  text,
  topicName,
  topicWithSubscription,
} from "./contract-helpers.js";

const never = new AbortController().signal;

/** Unary pull delivery semantics. */
export function deliveryContract(makeEngine: MakeEngine): void {
  describe("delivery", () => {
    engineTest(
      makeEngine,
      "pull - delivers only messages published after creation, once acked never again",
      async (engine) => {
        const topic = topicName("after-create");
        await engine.createTopic({ name: topic });
        await engine.publish(topic, [message("before")]);
        const subscription = subscriptionName("after-create");
        await engine.createSubscription({ name: subscription, topic });
        await engine.publish(topic, [message("m1", { a: "1" }), message("m2")]);
        const received = await drain(engine, subscription, 2);
        assert.deepEqual(received.map(text), ["m1", "m2"]);
        assert.deepEqual(received[0]!.message.attributes, { a: "1" });
        assert.equal(received[0]!.deliveryAttempt, 1);
        assert.notEqual(received[0]!.ackId, received[1]!.ackId);
        await assertNothingToPull(engine, subscription);
        assert.equal((await engine.subscriptionStats(subscription)).backlog, 0);
      },
    );

    engineTest(makeEngine, "pull - waits for a message, or returns [] after waitMs or on abort", async (engine) => {
      const { topic, subscription } = await topicWithSubscription(engine, "wait");
      const started = Date.now();
      assert.deepEqual(await engine.pull(subscription, { maxMessages: 5, waitMs: 100, signal: never }), []);
      assert.ok(Date.now() - started >= 80, "waited about waitMs");
      const waiting = engine.pull(subscription, { maxMessages: 5, waitMs: 5000, signal: never });
      await sleep(20);
      await engine.publish(topic, [message("wake")]);
      assert.deepEqual((await waiting).map(text), ["wake"]);
      const abort = new AbortController();
      const aborted = engine.pull(subscription, { maxMessages: 5, waitMs: 10_000, signal: abort.signal });
      const abortedAt = Date.now();
      setTimeout(() => abort.abort(), 20);
      assert.deepEqual(await aborted, []);
      assert.ok(Date.now() - abortedAt < 5000, "abort ended the wait");
      assert.deepEqual((await engine.pull(subscription, { maxMessages: 5, waitMs: 0, signal: never })).length, 0);
      await assertCode(engine.pull(subscription, { maxMessages: 0, waitMs: 0, signal: never }), Code.INVALID_ARGUMENT);
      await assertCode(
        engine.pull(subscriptionName("missing"), { maxMessages: 1, waitMs: 0, signal: never }),
        Code.NOT_FOUND,
      );
    });

    engineTest(makeEngine, "pull - respects maxMessages and shares messages between pullers", async (engine) => {
      const { topic, subscription } = await topicWithSubscription(engine, "max");
      await engine.publish(
        topic,
        Array.from({ length: 10 }, (_, index) => message(`m${index}`)),
      );
      const first = await engine.pull(subscription, { maxMessages: 4, waitMs: 1000, signal: never });
      assert.equal(first.length, 4);
      const rest = await pullAtLeast(engine, subscription, 6);
      const all = [...first, ...rest].map(text).sort();
      assert.equal(new Set(all).size, 10, "each message leased to one puller at a time");
      await assertNothingToPull(engine, subscription);
    });

    engineTest(makeEngine, "nack - redelivers with deliveryAttempt + 1; the old ack id is stale", async (engine) => {
      const { topic, subscription } = await topicWithSubscription(engine, "nack");
      await engine.publish(topic, [message("again")]);
      const [first] = await pullAtLeast(engine, subscription, 1);
      assert.equal(first!.deliveryAttempt, 1);
      await engine.modifyAckDeadline(subscription, [first!.ackId], 0);
      const [second] = await pullAtLeast(engine, subscription, 1);
      assert.equal(text(second!), "again");
      assert.equal(second!.deliveryAttempt, 2);
      assert.notEqual(second!.ackId, first!.ackId);
      await engine.acknowledge(subscription, [first!.ackId]);
      await engine.modifyAckDeadline(subscription, [first!.ackId], 0);
      assert.equal((await engine.subscriptionStats(subscription)).outstanding, 1, "a stale ack id changes nothing");
      await engine.acknowledge(subscription, [second!.ackId]);
      await assertNothingToPull(engine, subscription);
    });

    engineTest(makeEngine, "ack ids - malformed or foreign are INVALID_ARGUMENT naming the id", async (engine) => {
      const { topic, subscription } = await topicWithSubscription(engine, "ack-ids");
      const other = subscriptionName("ack-ids-other");
      await engine.createSubscription({ name: other, topic });
      await engine.publish(topic, [message("x")]);
      const [mine] = await pullAtLeast(engine, subscription, 1);
      await assertCode(engine.acknowledge(subscription, ["garbage-id"]), Code.INVALID_ARGUMENT, "garbage-id");
      await assertCode(engine.modifyAckDeadline(subscription, [""], 30), Code.INVALID_ARGUMENT);
      await assertCode(engine.acknowledge(other, [mine!.ackId]), Code.INVALID_ARGUMENT, mine!.ackId);
      await assertCode(engine.acknowledge(subscription, [mine!.ackId, "bad"]), Code.INVALID_ARGUMENT, "bad");
      assert.equal((await engine.subscriptionStats(subscription)).outstanding, 1, "a rejected request acks nothing");
      await engine.acknowledge(subscription, [mine!.ackId]);
      await engine.acknowledge(subscription, [mine!.ackId]);
      await engine.acknowledge(subscription, []);
      assert.equal((await engine.subscriptionStats(subscription)).backlog, 0);
    });

    engineTest(
      makeEngine,
      "modifyAckDeadline - extending keeps the lease; out of range is INVALID_ARGUMENT",
      async (engine) => {
        const { topic, subscription } = await topicWithSubscription(engine, "modack");
        await engine.publish(topic, [message("held")]);
        const [received] = await pullAtLeast(engine, subscription, 1);
        await engine.modifyAckDeadline(subscription, [received!.ackId], 60);
        await assertNothingToPull(engine, subscription);
        await assertCode(engine.modifyAckDeadline(subscription, [received!.ackId], 601), Code.INVALID_ARGUMENT);
        await assertCode(engine.modifyAckDeadline(subscription, [received!.ackId], -1), Code.INVALID_ARGUMENT);
        await engine.acknowledge(subscription, [received!.ackId]);
        assert.equal((await engine.subscriptionStats(subscription)).backlog, 0);
      },
    );

    engineTest(makeEngine, "retry policy - a nacked message waits out its backoff", async (engine) => {
      const { topic, subscription } = await topicWithSubscription(engine, "retry", {
        retryPolicy: { minimumBackoffMs: 400, maximumBackoffMs: 400 },
      });
      await engine.publish(topic, [message("later")]);
      const [first] = await pullAtLeast(engine, subscription, 1);
      const nackedAt = Date.now();
      await engine.modifyAckDeadline(subscription, [first!.ackId], 0);
      await assertNothingToPull(engine, subscription, 100);
      const [second] = await pullAtLeast(engine, subscription, 1, 3000);
      assert.ok(Date.now() - nackedAt >= 350, "redelivered only after the backoff");
      assert.equal(second!.deliveryAttempt, 2);
      await engine.acknowledge(subscription, [second!.ackId]);
    });

    engineTest(
      makeEngine,
      "dead letter - after maxDeliveryAttempts the message moves to the dead-letter topic",
      async (engine) => {
        const deadLetterTopic = topicName("dlq");
        await engine.createTopic({ name: deadLetterTopic });
        const deadLetters = subscriptionName("dlq-reader");
        await engine.createSubscription({ name: deadLetters, topic: deadLetterTopic });
        const { topic, subscription } = await topicWithSubscription(engine, "dead-letter", {
          deadLetterPolicy: { deadLetterTopic, maxDeliveryAttempts: 5 },
        });
        await engine.publish(topic, [message("poison", { kind: "bad" }), message("fine")]);
        const received = await pullAtLeast(engine, subscription, 2);
        const fine = received.find((item) => text(item) === "fine")!;
        await engine.acknowledge(subscription, [fine.ackId]);
        let poison = received.find((item) => text(item) === "poison")!;
        for (let attempt = 1; attempt <= 5; attempt++) {
          assert.equal(poison.deliveryAttempt, attempt);
          await engine.modifyAckDeadline(subscription, [poison.ackId], 0);
          if (attempt < 5) [poison] = (await pullAtLeast(engine, subscription, 1)) as [ReceivedMessage];
        }
        await assertNothingToPull(engine, subscription);
        const [dead] = await drain(engine, deadLetters, 1);
        assert.equal(text(dead!), "poison");
        assert.equal(dead!.message.attributes.kind, "bad");
        const stats = await engine.subscriptionStats(subscription);
        assert.equal(stats.deadLettered, 1);
        assert.equal(stats.backlog, 0);
      },
    );

    engineTest(makeEngine, "filter - filtered-out messages are never delivered nor counted", async (engine) => {
      const { topic, subscription } = await topicWithSubscription(engine, "filter", {
        filter: 'attributes.color = "red"',
      });
      await engine.publish(topic, [
        message("red1", { color: "red" }),
        message("blue", { color: "blue" }),
        message("plain"),
        message("red2", { color: "red" }),
      ]);
      assert.equal((await engine.subscriptionStats(subscription)).backlog, 2);
      const received = await drain(engine, subscription, 2);
      assert.deepEqual(received.map(text), ["red1", "red2"]);
      await assertNothingToPull(engine, subscription);
      assert.equal((await engine.subscriptionStats(subscription)).backlog, 0);
    });

    engineTest(makeEngine, "stats - backlog, outstanding and oldest unacked age", async (engine) => {
      const { topic, subscription } = await topicWithSubscription(engine, "stats");
      assert.deepEqual(await engine.subscriptionStats(subscription), {
        backlog: 0,
        oldestUnackedAgeMs: 0,
        deadLettered: 0,
        outstanding: 0,
      });
      await engine.publish(topic, [message("a"), message("b"), message("c")]);
      await sleep(30);
      const stats = await engine.subscriptionStats(subscription);
      assert.equal(stats.backlog, 3);
      assert.ok(stats.oldestUnackedAgeMs >= 20, `age ${stats.oldestUnackedAgeMs}`);
      const received = await pullAtLeast(engine, subscription, 2);
      const leased = await engine.subscriptionStats(subscription);
      assert.equal(leased.outstanding, 2);
      assert.equal(leased.backlog, 3, "outstanding messages are still backlog");
      await engine.acknowledge(
        subscription,
        received.map((item) => item.ackId),
      );
      const after = await engine.subscriptionStats(subscription);
      assert.equal(after.backlog, 1);
      assert.equal(after.outstanding, 0);
    });
  });
}
