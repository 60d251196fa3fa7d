// Engine contract: ordering keys with several messages outstanding; nack and expiry redeliver the key's tail in order.
import assert from "node:assert/strict";
import { describe } from "node:test";
import type { ReceivedMessage, SubscriptionName } from "../../broker/types.js";
import type { Engine } from "../engine.js";
import {
  assertNothingToPull,
  engineTest,
  type MakeEngine,
  message,
  pullAtLeast,
  text,
  topicWithSubscription,
} from "./contract-helpers.js";

const never = new AbortController().signal;

/** Pulls until `count` messages of `key` arrived; every other message pulled meanwhile is acked. */
async function pullKey(
  engine: Engine,
  subscription: SubscriptionName,
  key: string,
  count: number,
): Promise<ReceivedMessage[]> {
  const received: ReceivedMessage[] = [];
  const deadline = Date.now() + 8000;
  while (received.length < count && Date.now() < deadline) {
    const batch = await engine.pull(subscription, { maxMessages: 100, waitMs: 300, signal: never });
    const others = batch.filter((item) => item.message.orderingKey !== key);
    if (others.length > 0)
      await engine.acknowledge(
        subscription,
        others.map((item) => item.ackId),
      );
    received.push(...batch.filter((item) => item.message.orderingKey === key));
  }
  assert.equal(received.length, count, `expected ${count} messages of key ${key}, got ${received.map(text)}`);
  return received;
}

/** Pub/Sub's ordering rule over the Engine interface. */
export function orderingContract(makeEngine: MakeEngine): void {
  describe("ordering", () => {
    engineTest(
      makeEngine,
      "ordering - several messages of a key outstanding at once, delivered in order per key",
      async (engine) => {
        const { topic, subscription } = await topicWithSubscription(engine, "ordering", {
          enableMessageOrdering: true,
        });
        const published = [];
        for (let index = 1; index <= 4; index++) {
          published.push(message(`A${index}`, {}, "A"), message(`B${index}`, {}, "B"));
        }
        published.push(message("free1"), message("free2"));
        await engine.publish(topic, published);
        const received = await pullAtLeast(engine, subscription, 10);
        const perKey = (key: string) => received.filter((item) => item.message.orderingKey === key).map(text);
        assert.deepEqual(perKey("A"), ["A1", "A2", "A3", "A4"], "all of A outstanding, in order");
        assert.deepEqual(perKey("B"), ["B1", "B2", "B3", "B4"], "all of B outstanding, in order");
        assert.equal((await engine.subscriptionStats(subscription)).outstanding, 10);
        await engine.acknowledge(
          subscription,
          received.map((item) => item.ackId),
        );
        await assertNothingToPull(engine, subscription);
      },
    );

    engineTest(
      makeEngine,
      "ordering - while a stream holds messages of a key, the key's next messages go to that stream only",
      async (engine) => {
        const { topic, subscription } = await topicWithSubscription(engine, "ordering-affinity", {
          enableMessageOrdering: true,
        });
        const abort = new AbortController();
        const received = new Map<string, ReceivedMessage[]>();
        const readers: Promise<void>[] = [];
        const open = (clientId: string, maxOutstandingMessages: number) => {
          received.set(clientId, []);
          const stream = engine.openStream(subscription, {
            ackDeadlineSeconds: 60,
            maxOutstandingMessages,
            maxOutstandingBytes: 0,
            clientId,
            signal: abort.signal,
          });
          readers.push(
            (async () => {
              for await (const batch of stream) received.get(clientId)!.push(...batch);
            })(),
          );
        };
        const keyed = (key: string, from: number, to: number) =>
          Array.from({ length: to - from + 1 }, (_, index) => message(`${key}${from + index}`, {}, key));
        const count = (clientId: string) => received.get(clientId)!.length;
        const waitUntil = async (condition: () => boolean) => {
          const deadline = Date.now() + 8000;
          while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
        };
        try {
          open("first", 20);
          await engine.publish(topic, [...keyed("K", 1, 10), ...keyed("L", 1, 10)]);
          await waitUntil(() => count("first") === 20);
          assert.equal(count("first"), 20);
          // The first stream is full and holds both keys: their next messages wait for it, not for the idle one.
          open("second", 0);
          await engine.publish(topic, [...keyed("K", 11, 20), ...keyed("L", 11, 20)]);
          await new Promise((resolve) => setTimeout(resolve, 500));
          assert.equal(count("second"), 0, "no message of a held key went to the other stream");
          await engine.acknowledge(
            subscription,
            received.get("first")!.map((item) => item.ackId),
          );
          await waitUntil(() => count("first") + count("second") === 40);
          const later = [...received.values()].flat();
          assert.equal(later.length, 40, "every message delivered once");
          for (const list of received.values()) {
            for (const key of ["K", "L"]) {
              const indexes = list
                .filter((item) => item.message.orderingKey === key)
                .map((item) => Number(text(item).slice(1)));
              assert.deepEqual(
                indexes,
                [...indexes].sort((a, b) => a - b),
                `key ${key} in order on each stream`,
              );
            }
          }
          await engine.acknowledge(
            subscription,
            later.filter((item) => Number(text(item).slice(1)) > 10).map((item) => item.ackId),
          );
        } finally {
          abort.abort();
          await Promise.all(readers);
        }
      },
    );

    engineTest(
      makeEngine,
      "ordering - a nack redelivers the message and every later outstanding one of its key, in order, before newer ones",
      async (engine) => {
        const { topic, subscription } = await topicWithSubscription(engine, "ordering-nack", {
          enableMessageOrdering: true,
        });
        await engine.publish(topic, [
          message("A1", {}, "A"),
          message("A2", {}, "A"),
          message("B1", {}, "B"),
          message("A3", {}, "A"),
          message("A4", {}, "A"),
        ]);
        const first = await pullKey(engine, subscription, "A", 4);
        assert.deepEqual(first.map(text), ["A1", "A2", "A3", "A4"]);
        await engine.acknowledge(subscription, [first[0]!.ackId]);
        await engine.modifyAckDeadline(subscription, [first[1]!.ackId], 0);
        await engine.publish(topic, [message("A5", {}, "A")]);

        const again = await pullKey(engine, subscription, "A", 4);
        assert.deepEqual(again.map(text), ["A2", "A3", "A4", "A5"], "A2's nack brings back A3 and A4 before A5");
        assert.deepEqual(
          again.map((item) => item.deliveryAttempt),
          [2, 2, 2, 1],
        );
        const stale = await engine.acknowledge(subscription, [first[2]!.ackId]);
        assert.deepEqual(stale.invalidAckIds, [first[2]!.ackId], "A3's first ack id is stale after its redelivery");
        await engine.acknowledge(
          subscription,
          again.map((item) => item.ackId),
        );
        await assertNothingToPull(engine, subscription);
      },
    );

    engineTest(
      makeEngine,
      "ordering - an expired lease redelivers the message and every later outstanding one of its key, in order",
      async (engine) => {
        const { topic, subscription } = await topicWithSubscription(engine, "ordering-expiry", {
          enableMessageOrdering: true,
        });
        await engine.publish(topic, [
          message("K1", {}, "K"),
          message("K2", {}, "K"),
          message("K3", {}, "K"),
          message("K4", {}, "K"),
        ]);
        const first = await pullKey(engine, subscription, "K", 4);
        assert.deepEqual(first.map(text), ["K1", "K2", "K3", "K4"]);
        // K1 keeps its lease; K2's runs out in a second while K3's and K4's would last a minute.
        await engine.modifyAckDeadline(subscription, [first[1]!.ackId], 1);
        await engine.modifyAckDeadline(subscription, [first[2]!.ackId, first[3]!.ackId], 60);
        const again = await pullKey(engine, subscription, "K", 3);
        assert.deepEqual(again.map(text), ["K2", "K3", "K4"], "K2 expired: K3 and K4 come back after it, in order");
        assert.deepEqual(
          again.map((item) => item.deliveryAttempt),
          [2, 2, 2],
        );
        const stale = await engine.acknowledge(subscription, [first[3]!.ackId]);
        assert.deepEqual(stale.invalidAckIds, [first[3]!.ackId]);
        await engine.acknowledge(subscription, [first[0]!.ackId, ...again.map((item) => item.ackId)]);
        await assertNothingToPull(engine, subscription);
      },
    );
  });
}
