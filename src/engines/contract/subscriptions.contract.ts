// Engine contract: subscription CRUD, defaults, validation, listing, detach, deleted topics.
import assert from "node:assert/strict";
import { describe } from "node:test";
import { DELETED_TOPIC } from "../../broker/types.js";
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
  subscriptionName,
  text,
  topicName,
  topicWithSubscription,
} from "./contract-helpers.js";

const DAY_MS = 86_400_000;

/** Subscription CRUD and lifecycle. */
export function subscriptionContract(makeEngine: MakeEngine): void {
  describe("subscriptions", () => {
    engineTest(makeEngine, "subscriptions - defaults follow Pub/Sub", async (engine) => {
      const topic = topicName("defaults");
      await engine.createTopic({ name: topic });
      const name = subscriptionName("defaults");
      const created = await engine.createSubscription({ name, topic });
      assert.equal(created.topic, topic);
      assert.equal(created.ackDeadlineSeconds, 10);
      assert.equal(created.messageRetentionDurationMs, 7 * DAY_MS);
      assert.equal(created.expirationTtlMs, 31 * DAY_MS);
      assert.equal(created.retainAckedMessages, false);
      assert.equal(created.enableMessageOrdering, false);
      assert.equal(created.filter, "");
      assert.equal(created.deadLetterPolicy, null);
      assert.equal(created.retryPolicy, null);
      assert.equal(created.detached, false);
      assert.deepEqual(await engine.getSubscription(name), created);
      const zero = await engine.createSubscription({ name: subscriptionName("zero"), topic, ackDeadlineSeconds: 0 });
      assert.equal(zero.ackDeadlineSeconds, 10, "0 means the default");
    });

    engineTest(makeEngine, "subscriptions - update applies masked fields only", async (engine) => {
      const { subscription } = await topicWithSubscription(engine, "update", { labels: { a: "1" } });
      const updated = await engine.updateSubscription(subscription, {
        patch: {
          ackDeadlineSeconds: 60,
          retainAckedMessages: true,
          retryPolicy: { minimumBackoffMs: 1000, maximumBackoffMs: 5000 },
          labels: { ignored: "x" },
        },
        paths: ["ack_deadline_seconds", "retain_acked_messages", "retry_policy"],
      });
      assert.equal(updated.ackDeadlineSeconds, 60);
      assert.equal(updated.retainAckedMessages, true);
      assert.deepEqual(updated.retryPolicy, { minimumBackoffMs: 1000, maximumBackoffMs: 5000 });
      assert.deepEqual(updated.labels, { a: "1" }, "labels were not in the mask");
      assert.deepEqual(await engine.getSubscription(subscription), updated);
      const cleared = await engine.updateSubscription(subscription, { patch: {}, paths: ["retry_policy"] });
      assert.equal(cleared.retryPolicy, null, "a masked field absent from the patch is reset");
    });

    engineTest(makeEngine, "subscriptions - errors carry precise codes", async (engine) => {
      const { topic, subscription } = await topicWithSubscription(engine, "errors");
      await assertCode(engine.createSubscription({ name: subscription, topic }), Code.ALREADY_EXISTS, subscription);
      await assertCode(
        engine.createSubscription({ name: subscriptionName("orphan"), topic: topicName("missing") }),
        Code.NOT_FOUND,
      );
      await assertCode(
        engine.createSubscription({
          name: subscriptionName("dlq"),
          topic,
          deadLetterPolicy: { deadLetterTopic: topicName("missing-dlq"), maxDeliveryAttempts: 5 },
        }),
        Code.NOT_FOUND,
      );
      for (const ackDeadlineSeconds of [5, 601]) {
        await assertCode(
          engine.createSubscription({ name: subscriptionName("deadline"), topic, ackDeadlineSeconds }),
          Code.INVALID_ARGUMENT,
          "ack_deadline_seconds",
        );
      }
      await assertCode(
        engine.createSubscription({
          name: subscriptionName("attempts"),
          topic,
          deadLetterPolicy: { deadLetterTopic: topic, maxDeliveryAttempts: 101 },
        }),
        Code.INVALID_ARGUMENT,
        "max_delivery_attempts",
      );
      await assertCode(
        engine.createSubscription({ name: subscriptionName("filter"), topic, filter: "attributes.x = " }),
        Code.INVALID_ARGUMENT,
        "filter",
      );
      await assertCode(
        engine.createSubscription({ name: subscriptionName("retention"), topic, messageRetentionDurationMs: 1000 }),
        Code.INVALID_ARGUMENT,
        "message_retention_duration",
      );
      await assertCode(
        engine.updateSubscription(subscription, { patch: { filter: "attributes:x" }, paths: ["filter"] }),
        Code.INVALID_ARGUMENT,
        "filter",
      );
      await assertCode(
        engine.updateSubscription(subscription, {
          patch: { enableMessageOrdering: true },
          paths: ["enable_message_ordering"],
        }),
        Code.INVALID_ARGUMENT,
        "enable_message_ordering",
      );
      await assertCode(
        engine.updateSubscription(subscription, { patch: {}, paths: ["bogus_field"] }),
        Code.INVALID_ARGUMENT,
        "bogus_field",
      );
      await assertCode(engine.getSubscription(subscriptionName("missing")), Code.NOT_FOUND);
      await assertCode(engine.getSubscription("projects/p/topics/not-a-subscription"), Code.INVALID_ARGUMENT);
      await assertCode(engine.deleteSubscription(subscriptionName("missing")), Code.NOT_FOUND);
    });

    engineTest(makeEngine, "subscriptions - listing by project and by topic is sorted and paged", async (engine) => {
      const project = `subs-${process.pid}-${Date.now()}`;
      const topic = `projects/${project}/topics/shared`;
      const other = `projects/${project}/topics/other`;
      await engine.createTopic({ name: topic });
      await engine.createTopic({ name: other });
      const names = ["s-c", "s-a", "s-b"].map((id) => `projects/${project}/subscriptions/${id}`);
      for (const name of names) await engine.createSubscription({ name, topic });
      await engine.createSubscription({ name: `projects/${project}/subscriptions/s-other`, topic: other });
      const firstPage = await engine.listSubscriptions(project, { pageSize: 3, pageToken: "" });
      assert.deepEqual(
        firstPage.items.map((item) => item.name),
        [...names, `projects/${project}/subscriptions/s-other`].sort().slice(0, 3),
      );
      const secondPage = await engine.listSubscriptions(project, { pageSize: 3, pageToken: firstPage.nextPageToken });
      assert.equal(secondPage.items.length, 1);
      assert.equal(secondPage.nextPageToken, "");
      const seen: string[] = [];
      let pageToken = "";
      do {
        const page = await engine.listTopicSubscriptions(topic, { pageSize: 2, pageToken });
        seen.push(...page.items);
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      assert.deepEqual(seen, [...names].sort());
      await assertCode(
        engine.listTopicSubscriptions(topicName("missing"), { pageSize: 1, pageToken: "" }),
        Code.NOT_FOUND,
      );
      const empty = await engine.listSubscriptions(`${project}-none`, { pageSize: 10, pageToken: "" });
      assert.deepEqual(empty, { items: [], nextPageToken: "" });
      assert.ok((await engine.listSubscriptions(PROJECT, { pageSize: 1, pageToken: "" })).items.length <= 1);
    });

    engineTest(makeEngine, "subscriptions - deleting one ends its delivery", async (engine) => {
      const { topic, subscription } = await topicWithSubscription(engine, "delete");
      await engine.publish(topic, [message("a")]);
      const [received] = await pullAtLeast(engine, subscription, 1);
      await engine.deleteSubscription(subscription);
      await assertCode(engine.getSubscription(subscription), Code.NOT_FOUND);
      await assertCode(engine.acknowledge(subscription, [received!.ackId]), Code.NOT_FOUND);
      const again = await engine.createSubscription({ name: subscription, topic });
      assert.equal(again.name, subscription);
      await assertCode(engine.acknowledge(subscription, [received!.ackId]), Code.INVALID_ARGUMENT, "ack");
      await assertNothingToPull(engine, subscription);
    });

    engineTest(makeEngine, "detach - no more messages and pulls fail with FAILED_PRECONDITION", async (engine) => {
      const { topic, subscription } = await topicWithSubscription(engine, "detach");
      await engine.publish(topic, [message("pending")]);
      await engine.detachSubscription(subscription);
      assert.equal((await engine.getSubscription(subscription)).detached, true);
      await engine.publish(topic, [message("later")]);
      await assertCode(
        engine.pull(subscription, { maxMessages: 10, waitMs: 0, signal: new AbortController().signal }),
        Code.FAILED_PRECONDITION,
      );
      assert.equal((await engine.subscriptionStats(subscription)).backlog, 0, "pending messages were dropped");
      await engine.detachSubscription(subscription);
    });

    engineTest(
      makeEngine,
      "delete topic - subscriptions stay on _deleted-topic_ and receive nothing",
      async (engine) => {
        const { topic, subscription } = await topicWithSubscription(engine, "deleted-topic");
        await engine.publish(topic, [message("before")]);
        await engine.deleteTopic(topic);
        const orphan = await engine.getSubscription(subscription);
        assert.equal(orphan.topic, DELETED_TOPIC);
        await engine.createTopic({ name: topic });
        await engine.publish(topic, [message("after")]);
        await assertNothingToPull(engine, subscription);
        const listed = await engine.listTopicSubscriptions(topic, { pageSize: 10, pageToken: "" });
        assert.deepEqual(listed.items, [], "the recreated topic has no subscriptions");
        const fresh = subscriptionName("fresh");
        await engine.createSubscription({ name: fresh, topic });
        await engine.publish(topic, [message("new")]);
        assert.deepEqual((await drain(engine, fresh, 1)).map(text), ["new"]);
      },
    );
  });
}
