// The official @google-cloud/pubsub client, unchanged, against a real streamgate server.
import assert from "node:assert/strict";
import { after, before, describe, type TestContext, test } from "node:test";
import { Duration, type Message, PubSub, type SubscriberOptions, type Subscription } from "@google-cloud/pubsub";
import { type NatsServer, startNatsServer } from "../harness/nats-server.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";
import { delay, waitFor } from "../harness/wait-for.js";

/** One PubSub client and the subscriptions it listens on; `close()` ends them all, streams first. */
interface ClientSession {
  pubsub: PubSub;
  /** Opens a streaming subscriber; errors are collected in `errors` instead of crashing the test. */
  listen(name: string, onMessage: (message: Message) => void, options?: SubscriberOptions): Subscription;
  errors: Error[];
}

// The client probes the GCE metadata server for credentials; there is none here, and the probe only adds warnings.
process.env.METADATA_SERVER_DETECTION ??= "none";

describe("pubsub client", () => {
  let server: TestServer;
  // STREAMGATE_TEST_ENGINE=jetstream runs this suite unchanged on the jetstream engine (pubsub-client-jetstream.test.ts).
  let nats: NatsServer | undefined;

  before(async () => {
    if (process.env.STREAMGATE_TEST_ENGINE === "jetstream") {
      nats = await startNatsServer();
      server = await startTestServer({ engine: "jetstream", natsUrl: nats.url });
    } else server = await startTestServer();
  });
  after(async () => {
    await server?.close();
    await nats?.stop();
  });

  async function withClient(fn: (session: ClientSession) => Promise<void>): Promise<void> {
    const pubsub = new PubSub({ projectId: "test", apiEndpoint: server.hostPort, emulatorMode: true });
    const opened: Subscription[] = [];
    const errors: Error[] = [];
    const session: ClientSession = {
      pubsub,
      errors,
      listen(name, onMessage, options) {
        const subscription = pubsub.subscription(name, options);
        subscription.on("error", (error: Error) => errors.push(error));
        subscription.on("message", onMessage);
        opened.push(subscription);
        return subscription;
      },
    };
    try {
      await fn(session);
      assert.deepEqual(
        errors.map((error) => error.message),
        [],
        "the subscriber reported no stream errors",
      );
    } finally {
      // close() flushes pending acks; removing the last "message" listener first would start an un-awaited close.
      for (const subscription of opened) await subscription.close();
      // The client's ack/modack queues drop their requests on close but keep their batch timer (100 ms); when it
      // fires after pubsub.close() it lazily creates a new gRPC client that nobody closes. Let it fire first.
      if (opened.length > 0) await delay(300);
      await pubsub.close();
    }
  }

  async function createTopicAndSubscription(
    pubsub: PubSub,
    prefix: string,
    subscriptionOptions: Record<string, unknown> = {},
  ): Promise<{ topicName: string; subscriptionName: string }> {
    const topicName = uniqueName(prefix);
    const subscriptionName = uniqueName(`${prefix}-sub`);
    const [topic] = await pubsub.createTopic(topicName);
    await topic.createSubscription(subscriptionName, subscriptionOptions);
    return { topicName, subscriptionName };
  }

  test("pubsub client - 10,000 batched messages with attributes all arrive and are acked, none lost", {
    timeout: 45_000,
  }, async (t: TestContext) => {
    await withClient(async ({ pubsub, listen }) => {
      const total = 10_000;
      const { topicName, subscriptionName } = await createTopicAndSubscription(pubsub, "bulk");
      const received = new Map<string, number>();
      let deliveries = 0;
      let badAttributes = 0;
      listen(subscriptionName, (message) => {
        deliveries++;
        const seq = message.attributes.seq ?? "";
        if (message.attributes.kind !== "bulk" || message.data.toString() !== `message-${seq}`) badAttributes++;
        received.set(message.id, (received.get(message.id) ?? 0) + 1);
        message.ack();
      });

      const topic = pubsub.topic(topicName, { batching: { maxMessages: 500, maxMilliseconds: 20 } });
      const started = Date.now();
      const ids = await Promise.all(
        Array.from({ length: total }, (_, i) =>
          topic.publishMessage({ data: Buffer.from(`message-${i}`), attributes: { seq: String(i), kind: "bulk" } }),
        ),
      );
      const published = Date.now();
      assert.equal(new Set(ids).size, total, "every publish got its own message id");

      await waitFor(() => received.size >= total, {
        timeoutMs: 40_000,
        describe: () => `received ${received.size}/${total} distinct messages`,
      });
      const duplicates = deliveries - received.size;
      t.diagnostic(
        `published ${total} in ${published - started} ms, all received after ${Date.now() - started} ms; ` +
          `${duplicates} duplicate deliveries (allowed: at-least-once)`,
      );
      assert.deepEqual([...received.keys()].sort(), [...ids].sort(), "exactly the published ids arrived");
      assert.equal(badAttributes, 0, "data and attributes arrive as published");
    });
  });

  test("pubsub client - a nacked message is redelivered", { timeout: 45_000 }, async () => {
    await withClient(async ({ pubsub, listen }) => {
      const { topicName, subscriptionName } = await createTopicAndSubscription(pubsub, "nack");
      const deliveries: { id: string; data: string; at: number }[] = [];
      listen(subscriptionName, (message) => {
        deliveries.push({ id: message.id, data: message.data.toString(), at: Date.now() });
        if (deliveries.length === 1) message.nack();
        else message.ack();
      });
      const id = await pubsub.topic(topicName).publishMessage({ data: Buffer.from("try again") });
      await waitFor(() => deliveries.length >= 2, {
        timeoutMs: 10_000,
        describe: () => `${deliveries.length} deliveries`,
      });
      assert.deepEqual(
        deliveries.slice(0, 2).map(({ id, data }) => ({ id, data })),
        [
          { id, data: "try again" },
          { id, data: "try again" },
        ],
      );
      assert.ok(
        deliveries[1]!.at - deliveries[0]!.at < 5_000,
        "a nack redelivers without waiting for the ack deadline",
      );
    });
  });

  test("pubsub client - an unacked message comes back after its 10 s ack deadline", { timeout: 40_000 }, async () => {
    await withClient(async ({ pubsub, listen }) => {
      const { topicName, subscriptionName } = await createTopicAndSubscription(pubsub, "expire", {
        ackDeadlineSeconds: 10,
      });
      const deliveries: { id: string; at: number }[] = [];
      // Leases stop being extended after 1 s (so the server's 10 s deadline decides). Not 0: with 0 the
      // client's close() returns before flushing acks and reconnects afterwards, leaking a connection.
      const options: SubscriberOptions = {
        minAckDeadline: Duration.from({ seconds: 10 }),
        maxAckDeadline: Duration.from({ seconds: 10 }),
        maxExtensionTime: Duration.from({ seconds: 1 }),
      };
      listen(
        subscriptionName,
        (message) => {
          deliveries.push({ id: message.id, at: Date.now() });
          if (deliveries.length > 1) message.ack();
        },
        options,
      );
      const id = await pubsub.topic(topicName).publishMessage({ data: Buffer.from("forget me") });
      await waitFor(() => deliveries.length >= 2, {
        timeoutMs: 25_000,
        describe: () => `${deliveries.length} deliveries`,
      });
      const [first, second] = deliveries as [{ id: string; at: number }, { id: string; at: number }];
      assert.equal(first.id, id);
      assert.equal(second.id, id);
      const gap = second.at - first.at;
      assert.ok(gap >= 8_000, `redelivered after ${gap} ms, before the 10 s deadline ran out`);
      assert.ok(gap <= 20_000, `redelivered only after ${gap} ms`);
    });
  });

  test("pubsub client - after 5 failed delivery attempts the message goes to the dead-letter topic", {
    timeout: 45_000,
  }, async () => {
    await withClient(async ({ pubsub, listen }) => {
      const dead = await createTopicAndSubscription(pubsub, "dlq");
      const { topicName, subscriptionName } = await createTopicAndSubscription(pubsub, "dl-main", {
        deadLetterPolicy: { deadLetterTopic: `projects/test/topics/${dead.topicName}`, maxDeliveryAttempts: 5 },
      });
      const attempts: number[] = [];
      listen(subscriptionName, (message) => {
        attempts.push(message.deliveryAttempt);
        message.nack();
      });
      const deadLettered: Message[] = [];
      listen(dead.subscriptionName, (message) => {
        deadLettered.push(message);
        message.ack();
      });
      await pubsub.topic(topicName).publishMessage({ data: Buffer.from("poison"), attributes: { origin: "dl-test" } });
      await waitFor(() => deadLettered.length >= 1, {
        timeoutMs: 20_000,
        describe: () => `attempts so far ${JSON.stringify(attempts)}; nothing on the dead-letter topic`,
      });
      await delay(500);
      assert.deepEqual(attempts, [1, 2, 3, 4, 5], "deliveryAttempt counts 1..5, then no more deliveries");
      const [message] = deadLettered as [Message];
      assert.equal(message.data.toString(), "poison");
      assert.equal(message.attributes.origin, "dl-test");
      assert.equal(deadLettered.length, 1);
    });
  });

  test("pubsub client - messages with ordering keys arrive in publish order per key", { timeout: 45_000 }, async () => {
    await withClient(async ({ pubsub, listen }) => {
      const { topicName, subscriptionName } = await createTopicAndSubscription(pubsub, "ordered", {
        enableMessageOrdering: true,
      });
      const keys = ["alpha", "beta", "gamma", "delta"];
      const perKey = 50;
      const arrivals = new Map<string, number[]>(keys.map((key) => [key, []]));
      let distinct = 0;
      const seen = new Set<string>();
      listen(subscriptionName, (message) => {
        arrivals.get(message.orderingKey ?? "")?.push(Number(message.attributes.seq));
        if (!seen.has(message.id)) distinct++;
        seen.add(message.id);
        message.ack();
      });
      const topic = pubsub.topic(topicName, {
        messageOrdering: true,
        batching: { maxMessages: 7, maxMilliseconds: 5 },
      });
      const publishes: Promise<string>[] = [];
      for (let seq = 0; seq < perKey; seq++) {
        for (const key of keys) {
          publishes.push(
            topic.publishMessage({
              data: Buffer.from(`${key}-${seq}`),
              orderingKey: key,
              attributes: { seq: String(seq) },
            }),
          );
        }
      }
      await Promise.all(publishes);
      await waitFor(() => distinct >= keys.length * perKey, {
        timeoutMs: 20_000,
        describe: () => `received ${distinct}/${keys.length * perKey}`,
      });
      for (const key of keys) {
        const order = arrivals.get(key)!;
        // A redelivery may repeat earlier messages; what must hold is that no message arrives before its predecessor.
        const firstSeen = order.filter((seq, index) => order.indexOf(seq) === index);
        assert.deepEqual(
          firstSeen,
          Array.from({ length: perKey }, (_, i) => i),
          `key ${key} arrived as ${order.join(",")}`,
        );
      }
    });
  });

  test("pubsub client - a subscription filter delivers only matching messages", { timeout: 45_000 }, async () => {
    await withClient(async ({ pubsub, listen }) => {
      const filter = 'attributes.kind = "a"';
      const { topicName, subscriptionName } = await createTopicAndSubscription(pubsub, "filtered", { filter });
      const [metadata] = await pubsub.subscription(subscriptionName).getMetadata();
      assert.equal(metadata.filter, filter);
      const received: Record<string, string>[] = [];
      listen(subscriptionName, (message) => {
        received.push({ ...message.attributes, data: message.data.toString() });
        message.ack();
      });
      const topic = pubsub.topic(topicName);
      const publishes: Promise<string>[] = [];
      for (let i = 0; i < 10; i++) {
        publishes.push(topic.publishMessage({ data: Buffer.from(`a${i}`), attributes: { kind: "a" } }));
        publishes.push(topic.publishMessage({ data: Buffer.from(`b${i}`), attributes: { kind: "b" } }));
        publishes.push(topic.publishMessage({ data: Buffer.from(`n${i}`), attributes: { other: "a" } }));
      }
      await Promise.all(publishes);
      await waitFor(() => received.length >= 10, { timeoutMs: 10_000, describe: () => `${received.length}/10` });
      await delay(1_000);
      assert.deepEqual(
        received.map((r) => r.data).sort(),
        Array.from({ length: 10 }, (_, i) => `a${i}`).sort(),
        "only kind=a messages arrive",
      );
    });
  });

  test("pubsub client - seek to a time replays acked messages of a subscription that retains them", {
    timeout: 45_000,
  }, async () => {
    await withClient(async ({ pubsub, listen }) => {
      const { topicName, subscriptionName } = await createTopicAndSubscription(pubsub, "seek", {
        retainAckedMessages: true,
      });
      const received: string[] = [];
      const subscription = listen(subscriptionName, (message) => {
        received.push(message.data.toString());
        message.ack();
      });
      const before = new Date();
      const topic = pubsub.topic(topicName);
      await Promise.all(
        ["s0", "s1", "s2", "s3", "s4"].map((text) => topic.publishMessage({ data: Buffer.from(text) })),
      );
      await waitFor(() => received.length >= 5, { timeoutMs: 10_000, describe: () => `${received.length}/5` });
      // Let the client flush its batched acks before seeking.
      await delay(500);
      assert.deepEqual([...received].sort(), ["s0", "s1", "s2", "s3", "s4"]);
      await subscription.seek(before);
      await waitFor(() => received.length >= 10, {
        timeoutMs: 10_000,
        describe: () => `after seek: ${received.length - 5}/5 replayed`,
      });
      assert.deepEqual(
        received.slice(5).sort(),
        ["s0", "s1", "s2", "s3", "s4"],
        "the seek replays every retained message",
      );
    });
  });

  test("pubsub client - flow control maxMessages 5 never hands out more than 5 messages at once", {
    timeout: 45_000,
  }, async () => {
    await withClient(async ({ pubsub, listen }) => {
      const { topicName, subscriptionName } = await createTopicAndSubscription(pubsub, "flow");
      const total = 40;
      let held = 0;
      let maxHeld = 0;
      const seen = new Set<string>();
      listen(
        subscriptionName,
        (message) => {
          held++;
          maxHeld = Math.max(maxHeld, held);
          seen.add(message.data.toString());
          setTimeout(() => {
            held--;
            message.ack();
          }, 60);
        },
        { flowControl: { maxMessages: 5, allowExcessMessages: false } },
      );
      const topic = pubsub.topic(topicName);
      await Promise.all(Array.from({ length: total }, (_, i) => topic.publishMessage({ data: Buffer.from(`f${i}`) })));
      await waitFor(() => seen.size >= total, { timeoutMs: 20_000, describe: () => `${seen.size}/${total}` });
      assert.ok(maxHeld <= 5, `${maxHeld} messages were held at once`);
      assert.ok(maxHeld >= 1);
    });
  });
});
