// JetStream-only: an ack of a keyed message's earlier delivery that lands while its redelivery is being recorded in the lease book.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { startNatsPeer, startNatsServer } from "../../../test/harness/nats-server.js";
import type { ReceivedMessage, SubscriptionName, TopicName } from "../../broker/types.js";
import { createJetStreamEngine, type JetStreamEngine } from "./index.js";

const never = new AbortController().signal;

const { peer: server, missing } = await startNatsPeer(() => startNatsServer());

const text = (received: ReceivedMessage) => Buffer.from(received.message.data).toString();

describe("jetstream engine: ordered redelivery racing an ack", { skip: missing }, () => {
  let engine: JetStreamEngine;

  before(async () => {
    engine = await createJetStreamEngine({ natsUrl: server!.url, namespace: `r${randomBytes(4).toString("hex")}` });
  });

  after(async () => {
    await engine?.destroy();
    await engine?.close();
    await server?.stop();
  });

  it("a redelivery whose earlier delivery was acked while the book recorded it is not handed out, and the key goes on", async () => {
    const topic = "projects/race/topics/ordered" as TopicName;
    const subscription = "projects/race/subscriptions/ordered" as SubscriptionName;
    await engine.createTopic({ name: topic });
    await engine.createSubscription({ name: subscription, topic, enableMessageOrdering: true, ackDeadlineSeconds: 30 });
    await engine.publish(
      topic,
      ["k:0", "k:1", "k:2"].map((data) => ({ data: Buffer.from(data), attributes: {}, orderingKey: "k" })),
    );

    // k:0 and k:1 leased together (the first pull also takes the subscription's ordering lease).
    let first: ReceivedMessage[] = [];
    const deadline = Date.now() + 10_000;
    while (first.length === 0 && Date.now() < deadline) {
      first = await engine.pull(subscription, { maxMessages: 2, waitMs: 500, signal: never });
    }
    assert.deepEqual(first.map(text), ["k:0", "k:1"]);
    const [zero, one] = first as [ReceivedMessage, ReceivedMessage];

    // Nacking k:0 takes k:1 back too: JetStream redelivers both.
    await engine.modifyAckDeadline(subscription, [zero.ackId], 0);
    // This pull brings both redeliveries in; they wait for the lease book, so it returns nothing yet...
    const meanwhile = await engine.pull(subscription, { maxMessages: 2, waitMs: 0, signal: never });
    assert.deepEqual(meanwhile.map(text), []);
    // ...and the client's ack of k:1's first delivery lands now: JetStream acks by sequence, so k:1 is done.
    const acked = await engine.acknowledge(subscription, [one.ackId]);
    assert.deepEqual(acked.invalidAckIds, []);

    // What follows: k:0 again, then k:2. A k:1 handed out again would be a delivery JetStream no longer
    // has pending: nacked, it would never come back, and k:2 would wait behind it for good.
    const delivered: string[] = [];
    const until = Date.now() + 10_000;
    while (!delivered.includes("k:2#1") && Date.now() < until) {
      for (const received of await engine.pull(subscription, { maxMessages: 1, waitMs: 500, signal: never })) {
        delivered.push(`${text(received)}#${received.deliveryAttempt}`);
        if (text(received) === "k:1") await engine.modifyAckDeadline(subscription, [received.ackId], 0);
        else await engine.acknowledge(subscription, [received.ackId]);
      }
    }
    assert.deepEqual(delivered, ["k:0#2", "k:2#1"]);
  });
});
