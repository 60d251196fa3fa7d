// Two jetstream engine instances (own NATS connections, one namespace) on one nats-server: ack ids, seeks, snapshots and counts hold across instances.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { ReceivedMessage } from "../../src/broker/types.js";
import type { Engine } from "../../src/engines/index.js";
import { createJetStreamEngine, type JetStreamEngine } from "../../src/engines/jetstream/index.js";
import { jetStreamFleet } from "../harness/jetstream-fleet.js";
import { startNatsPeer, startNatsServer } from "../harness/nats-server.js";
import { uniqueName } from "../harness/unique-name.js";

const { peer: nats, missing } = await startNatsPeer(() => startNatsServer());

const message = (text: string) => ({ data: Buffer.from(text), attributes: {}, orderingKey: "" });
const textOf = (received: ReceivedMessage) => Buffer.from(received.message.data).toString();

/** Pulls on `engine` until `count` messages arrived (or fails after `timeoutMs`). */
async function pullAtLeast(engine: Engine, subscription: string, count: number, timeoutMs = 8_000) {
  const received: ReceivedMessage[] = [];
  const deadline = Date.now() + timeoutMs;
  while (received.length < count && Date.now() < deadline) {
    const batch = await engine.pull(subscription, {
      maxMessages: count - received.length,
      waitMs: Math.min(1_000, Math.max(0, deadline - Date.now())),
      signal: AbortSignal.timeout(timeoutMs),
    });
    received.push(...batch);
  }
  assert.ok(received.length >= count, `pulled ${received.length} of ${count}`);
  return received;
}

async function pullNothing(engine: Engine, subscription: string): Promise<void> {
  const batch = await engine.pull(subscription, { maxMessages: 10, waitMs: 500, signal: AbortSignal.timeout(5_000) });
  assert.deepEqual(batch.map(textOf), [], "nothing more to pull");
}

describe("jetstream scale-out", { skip: missing }, () => {
  const fleet = jetStreamFleet(() => nats!.url, "so");
  let a: JetStreamEngine;
  let b: JetStreamEngine;

  before(async () => {
    a = await fleet.open();
    b = await fleet.open();
  });

  after(async () => {
    await fleet.close();
    await nats?.stop();
  });

  async function topicWithSubscription(prefix: string, settings: Record<string, unknown> = {}) {
    const topic = `projects/scale/topics/${uniqueName(prefix)}`;
    const subscription = `projects/scale/subscriptions/${uniqueName(prefix)}`;
    await a.createTopic({ name: topic });
    await a.createSubscription({ name: subscription, topic, ackDeadlineSeconds: 10, ...settings });
    // B sees the catalog within milliseconds.
    for (let tries = 0; tries < 100; tries++) {
      if (
        await b.getSubscription(subscription).then(
          () => true,
          () => false,
        )
      )
        break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return { topic, subscription };
  }

  test("jetstream scale-out - exactly-once: an ack through A after the lease moved to B is refused at A; B's ack is applied once", {
    timeout: 30_000,
  }, async () => {
    const { topic, subscription } = await topicWithSubscription("eo-moved", { enableExactlyOnceDelivery: true });
    await a.publish(topic, [message("once")]);
    const [first] = await pullAtLeast(a, subscription, 1);
    // A's lease runs out; JetStream redelivers, and B (the only one pulling) gets the new delivery.
    await a.modifyAckDeadline(subscription, [first!.ackId], 1);
    const [second] = await pullAtLeast(b, subscription, 1, 10_000);
    assert.equal(textOf(second!), "once");
    assert.ok(second!.deliveryAttempt >= 2, `attempt ${second!.deliveryAttempt}`);

    const atA = await a.acknowledge(subscription, [first!.ackId]);
    assert.deepEqual(atA, { invalidAckIds: [first!.ackId], temporaryFailedAckIds: [], exactlyOnce: true });
    const modackAtA = await a.modifyAckDeadline(subscription, [first!.ackId], 30);
    assert.deepEqual(modackAtA.invalidAckIds, [first!.ackId], "a stale modack is refused too");
    assert.equal((await a.subscriptionStats(subscription)).outstanding, 1, "B's delivery is untouched");

    const atB = await b.acknowledge(subscription, [second!.ackId]);
    assert.deepEqual(atB, { invalidAckIds: [], temporaryFailedAckIds: [], exactlyOnce: true });
    // Once acked it is done on every instance: the id is refused on A as well.
    const again = await a.acknowledge(subscription, [second!.ackId]);
    assert.deepEqual(again.invalidAckIds, [second!.ackId]);
    await pullNothing(a, subscription);
    await pullNothing(b, subscription);
    assert.equal((await b.subscriptionStats(subscription)).backlog, 0);
  });

  test("jetstream scale-out - exactly-once: an ack of B's delivery sent through A is applied, and B's own retry is refused", {
    timeout: 20_000,
  }, async () => {
    const { topic, subscription } = await topicWithSubscription("eo-elsewhere", { enableExactlyOnceDelivery: true });
    await a.publish(topic, [message("through-a")]);
    const [delivered] = await pullAtLeast(b, subscription, 1);
    const atA = await a.acknowledge(subscription, [delivered!.ackId]);
    assert.deepEqual(atA, { invalidAckIds: [], temporaryFailedAckIds: [], exactlyOnce: true });
    const atB = await b.acknowledge(subscription, [delivered!.ackId]);
    assert.deepEqual(atB.invalidAckIds, [delivered!.ackId], "an ack id is good for one ack, on any instance");
    await pullNothing(b, subscription);
  });

  test("jetstream scale-out - without exactly-once a stale ack through A is ignored: B's delivery is not acked by it", {
    timeout: 40_000,
  }, async () => {
    const { topic, subscription } = await topicWithSubscription("al-moved");
    await a.publish(topic, [message("keep")]);
    const [first] = await pullAtLeast(a, subscription, 1);
    await a.modifyAckDeadline(subscription, [first!.ackId], 1);
    const [second] = await pullAtLeast(b, subscription, 1, 10_000);
    const atA = await a.acknowledge(subscription, [first!.ackId]);
    assert.equal(atA.exactlyOnce, false);
    // Had A's stale ack been applied, B's nack could not bring the message back.
    await b.modifyAckDeadline(subscription, [second!.ackId], 0);
    const [third] = await pullAtLeast(b, subscription, 1, 10_000);
    assert.equal(textOf(third!), "keep");
    assert.ok(third!.deliveryAttempt > second!.deliveryAttempt);
    await b.acknowledge(subscription, [third!.ackId]);
    await pullNothing(b, subscription);
  });

  test("jetstream scale-out - a snapshot taken on A sees acks made through B; seeking to it replays only the unacked", {
    timeout: 20_000,
  }, async () => {
    const { topic, subscription } = await topicWithSubscription("snap");
    await a.publish(topic, ["m1", "m2", "m3", "m4", "m5"].map(message));
    const received = await pullAtLeast(b, subscription, 5);
    const byText = new Map(received.map((entry) => [textOf(entry), entry]));
    // Acked through B above the ack floor (m1 stays unacked, so the floor cannot move past them).
    await b.acknowledge(subscription, [byText.get("m2")!.ackId, byText.get("m4")!.ackId]);
    const snapshot = `projects/scale/snapshots/${uniqueName("snap")}`;
    await a.createSnapshot(snapshot, subscription, {});
    await b.acknowledge(
      subscription,
      received.map((entry) => entry.ackId),
    );
    await a.seek(subscription, { snapshot });
    const replayed = await pullAtLeast(a, subscription, 3);
    assert.deepEqual(replayed.map(textOf).sort(), ["m1", "m3", "m5"]);
    await a.acknowledge(
      subscription,
      replayed.map((entry) => entry.ackId),
    );
    await pullNothing(a, subscription);
  });

  test("jetstream scale-out - exactly-once: a snapshot keeps acks made through an instance that is gone since", {
    timeout: 20_000,
  }, async () => {
    const { topic, subscription } = await topicWithSubscription("eo-gone", { enableExactlyOnceDelivery: true });
    await a.publish(topic, ["m1", "m2", "m3"].map(message));
    const c = await createJetStreamEngine({ natsUrl: nats!.url, namespace: fleet.namespace });
    try {
      const received = await pullAtLeast(c, subscription, 3);
      const m2 = received.find((entry) => textOf(entry) === "m2")!;
      assert.deepEqual((await c.acknowledge(subscription, [m2.ackId])).invalidAckIds, []);
    } finally {
      await c.close(); // C's memory of its acks is gone with it
    }
    const snapshot = `projects/scale/snapshots/${uniqueName("eo-gone")}`;
    await a.createSnapshot(snapshot, subscription, {});
    await a.seek(subscription, { snapshot });
    const replayed = await pullAtLeast(a, subscription, 2);
    assert.deepEqual(replayed.map(textOf).sort(), ["m1", "m3"], "m2, acked through C, stays acked");
    await a.acknowledge(
      subscription,
      replayed.map((entry) => entry.ackId),
    );
    await pullNothing(a, subscription);
  });

  test("jetstream scale-out - an ordered subscription is delivered by one instance at a time; a closing holder hands it over at once", {
    timeout: 30_000,
  }, async () => {
    const { topic, subscription } = await topicWithSubscription("ordered-holder", { enableMessageOrdering: true });
    const c = await createJetStreamEngine({ natsUrl: nats!.url, namespace: fleet.namespace });
    const abort = new AbortController();
    const onC: ReceivedMessage[] = [];
    try {
      const stream = c.openStream(subscription, {
        ackDeadlineSeconds: 10,
        maxOutstandingMessages: 100,
        maxOutstandingBytes: 0,
        clientId: "c",
        signal: abort.signal,
      });
      const reader = (async () => {
        for await (const batch of stream) {
          onC.push(...batch);
          await c.acknowledge(
            subscription,
            batch.map((entry) => entry.ackId),
          );
        }
      })();
      await new Promise((resolve) => setTimeout(resolve, 300)); // C takes the lease
      await a.publish(
        topic,
        ["k1", "k2", "k3"].map((text) => ({ ...message(text), orderingKey: "k" })),
      );
      const onB = await b.pull(subscription, { maxMessages: 10, waitMs: 1_500, signal: AbortSignal.timeout(5_000) });
      assert.deepEqual(onB.map(textOf), [], "B stands by while C holds the ordered subscription");
      assert.deepEqual(onC.map(textOf), ["k1", "k2", "k3"]);
      abort.abort();
      await reader;
    } finally {
      abort.abort();
      await c.close();
    }
    await a.publish(topic, [{ ...message("k4"), orderingKey: "k" }]);
    const started = Date.now();
    const [next] = await pullAtLeast(b, subscription, 1, 4_000);
    assert.equal(textOf(next!), "k4");
    assert.ok(Date.now() - started < 4_000, "well before C's lease would have run out");
    await b.acknowledge(subscription, [next!.ackId]);
  });

  test("jetstream scale-out - dead-letter counts add up over instances", { timeout: 40_000 }, async () => {
    const dead = `projects/scale/topics/${uniqueName("dead")}`;
    await a.createTopic({ name: dead });
    const { topic, subscription } = await topicWithSubscription("dlq", {
      deadLetterPolicy: { deadLetterTopic: dead, maxDeliveryAttempts: 5 },
    });
    // Each instance nacks one message through its five attempts, so each forwards one.
    for (const [engine, text] of [
      [a, "via-a"],
      [b, "via-b"],
    ] as const) {
      await a.publish(topic, [message(text)]);
      // (The other instance's last long poll may take the new message first and give it back: one attempt more.)
      for (let attempt = 0; attempt < 5; ) {
        const [entry] = await pullAtLeast(engine, subscription, 1, 10_000);
        assert.equal(textOf(entry!), text);
        assert.ok(entry!.deliveryAttempt > attempt, "attempts only grow");
        attempt = entry!.deliveryAttempt;
        await engine.modifyAckDeadline(subscription, [entry!.ackId], 0);
      }
    }
    const deadline = Date.now() + 10_000;
    let counts = [0, 0];
    while (Date.now() < deadline) {
      counts = [
        (await a.subscriptionStats(subscription)).deadLettered,
        (await b.subscriptionStats(subscription)).deadLettered,
      ];
      if (counts[0] === 2 && counts[1] === 2) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.deepEqual(counts, [2, 2], "both instances report both forwards");
  });
});
