// Engine contract: ack results for exactly-once delivery: stale ack ids are reported and never applied to a newer delivery.
import assert from "node:assert/strict";
import { describe } from "node:test";
import {
  assertNothingToPull,
  engineTest,
  type MakeEngine,
  message,
  pullAtLeast,
  text,
  topicWithSubscription,
} from "./contract-helpers.js";

/** Per-id ack results, as exactly-once delivery reports them. */
export function exactlyOnceContract(makeEngine: MakeEngine): void {
  describe("exactly-once", () => {
    engineTest(
      makeEngine,
      "exactly-once - an ack id whose lease expired and was redelivered is refused, not applied",
      async (engine) => {
        const { topic, subscription } = await topicWithSubscription(engine, "eod-stale", {
          enableExactlyOnceDelivery: true,
        });
        await engine.publish(topic, [message("once")]);
        const [first] = await pullAtLeast(engine, subscription, 1);
        const extended = await engine.modifyAckDeadline(subscription, [first!.ackId], 1);
        assert.deepEqual(extended, { invalidAckIds: [], temporaryFailedAckIds: [], exactlyOnce: true });
        const [second] = await pullAtLeast(engine, subscription, 1, 8000);
        assert.equal(text(second!), "once");
        // At least the second delivery (a loaded machine may see JetStream hand it back once more).
        assert.ok(second!.deliveryAttempt >= 2, `attempt ${second!.deliveryAttempt}`);

        const stale = await engine.acknowledge(subscription, [first!.ackId]);
        assert.deepEqual(stale.invalidAckIds, [first!.ackId], "the expired delivery's ack id is refused");
        const staleModack = await engine.modifyAckDeadline(subscription, [first!.ackId], 30);
        assert.deepEqual(staleModack.invalidAckIds, [first!.ackId]);
        assert.equal((await engine.subscriptionStats(subscription)).outstanding, 1, "the new delivery is untouched");

        const applied = await engine.acknowledge(subscription, [second!.ackId]);
        assert.deepEqual(applied, { invalidAckIds: [], temporaryFailedAckIds: [], exactlyOnce: true });
        const again = await engine.acknowledge(subscription, [second!.ackId]);
        assert.deepEqual(again.invalidAckIds, [second!.ackId], "an ack id is good for one ack");
        await assertNothingToPull(engine, subscription);
        assert.equal((await engine.subscriptionStats(subscription)).backlog, 0);
      },
    );

    engineTest(
      makeEngine,
      "exactly-once - results list only the failed ids; other subscriptions report exactlyOnce false",
      async (engine) => {
        const { topic, subscription } = await topicWithSubscription(engine, "eod-mixed", {
          enableExactlyOnceDelivery: true,
        });
        await engine.publish(topic, [message("a"), message("b")]);
        const [a, b] = await pullAtLeast(engine, subscription, 2);
        await engine.modifyAckDeadline(subscription, [a!.ackId], 0);
        const [aAgain] = await pullAtLeast(engine, subscription, 1);
        const result = await engine.acknowledge(subscription, [a!.ackId, b!.ackId, aAgain!.ackId]);
        assert.deepEqual(result, { invalidAckIds: [a!.ackId], temporaryFailedAckIds: [], exactlyOnce: true });
        await assertNothingToPull(engine, subscription);

        const plain = await topicWithSubscription(engine, "eod-off");
        await engine.publish(plain.topic, [message("p")]);
        const [p] = await pullAtLeast(engine, plain.subscription, 1);
        assert.equal((await engine.acknowledge(plain.subscription, [p!.ackId])).exactlyOnce, false);
      },
    );
  });
}
