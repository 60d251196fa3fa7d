// Two jetstream engine instances on one nats-server: deliveries an instance fetched and gave back without any client seeing them are no delivery attempts (Pub/Sub counts only what a subscriber received).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { ReceivedMessage } from "../../src/broker/types.js";
import type { JetStreamEngine } from "../../src/engines/jetstream/index.js";
import { jetStreamFleet } from "../harness/jetstream-fleet.js";
import { startNatsPeer, startNatsServer } from "../harness/nats-server.js";
import { delay, waitFor } from "../harness/wait-for.js";

const { peer: nats, missing } = await startNatsPeer(() => startNatsServer());

const MAX_ATTEMPTS = 5;

describe("jetstream unseen deliveries", { skip: missing }, () => {
  const fleet = jetStreamFleet(() => nats!.url, "ud");
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

  test("jetstream unseen deliveries - messages an instance fetched for a stream that closed unread, given back more often than maxDeliveryAttempts, reach the next client as attempt 1 and are not dead-lettered", {
    timeout: 60_000,
  }, async () => {
    const topic = "projects/unseen/topics/work";
    const deadLetters = "projects/unseen/topics/dead";
    const subscription = "projects/unseen/subscriptions/work";
    const deadLetterSubscription = "projects/unseen/subscriptions/dead";
    await a.createTopic({ name: topic });
    await a.createTopic({ name: deadLetters });
    await a.createSubscription({ name: deadLetterSubscription, topic: deadLetters });
    await a.createSubscription({
      name: subscription,
      topic,
      ackDeadlineSeconds: 60,
      deadLetterPolicy: { deadLetterTopic: deadLetters, maxDeliveryAttempts: MAX_ATTEMPTS },
    });
    await a.publish(
      topic,
      ["u1", "u2", "u3"].map((text) => ({ data: Buffer.from(text), attributes: {}, orderingKey: "" })),
    );

    // Each round A's worker fetches the three for a stream whose client never reads; the stream
    // closes, and A gives them back once it has had no client for two seconds.
    for (let round = 0; round < MAX_ATTEMPTS; round++) {
      const stop = new AbortController();
      const stream = a.openStream(subscription, {
        ackDeadlineSeconds: 60,
        maxOutstandingMessages: 10,
        maxOutstandingBytes: 0,
        clientId: `unread-${round}`,
        signal: stop.signal,
      });
      await waitFor(async () => (await a.subscriptionStats(subscription)).outstanding === 3, {
        timeoutMs: 10_000,
        describe: () => `round ${round}: A's stream holds the three messages`,
      });
      stop.abort();
      for await (const _ of stream) assert.fail("the stream's client reads nothing");
      await delay(3_500);
    }

    const received: ReceivedMessage[] = [];
    await waitFor(
      async () => {
        received.push(
          ...(await b.pull(subscription, { maxMessages: 10, waitMs: 1_000, signal: AbortSignal.timeout(5_000) })),
        );
        return received.length >= 3;
      },
      { timeoutMs: 15_000, describe: () => `B pulled ${received.length} of 3` },
    );
    assert.deepEqual(
      received.map((item) => [Buffer.from(item.message.data).toString(), item.deliveryAttempt]).sort(),
      [
        ["u1", 1],
        ["u2", 1],
        ["u3", 1],
      ],
      "the first delivery a client sees is attempt 1",
    );
    await b.acknowledge(
      subscription,
      received.map((item) => item.ackId),
    );
    const dead = await b.pull(deadLetterSubscription, {
      maxMessages: 10,
      waitMs: 500,
      signal: AbortSignal.timeout(5_000),
    });
    assert.deepEqual(dead, [], "nothing was dead-lettered");
  });
});
