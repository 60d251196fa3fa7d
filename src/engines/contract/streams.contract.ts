// Engine contract: streaming delivery with flow control, shared consumers, lease settings, ending streams.
import assert from "node:assert/strict";
import { describe } from "node:test";
import type { ReceivedMessage, SubscriptionName } from "../../broker/types.js";
import { Code } from "../../errors/index.js";
import type { DeliveryOptions, DeliveryStream, Engine } from "../engine.js";
import {
  assertCode,
  engineTest,
  eventually,
  type MakeEngine,
  message,
  sleep,
  subscriptionName,
  text,
  topicWithSubscription,
} from "./contract-helpers.js";

function streamOptions(signal: AbortSignal, overrides: Partial<DeliveryOptions> = {}): DeliveryOptions {
  return {
    ackDeadlineSeconds: 60,
    maxOutstandingMessages: 0,
    maxOutstandingBytes: 0,
    clientId: "contract",
    signal,
    ...overrides,
  };
}

/** Consumes a stream in the background, calling `onBatch` for each batch. */
function consume(stream: DeliveryStream, onBatch: (batch: ReceivedMessage[]) => void | Promise<void>): Promise<void> {
  return (async () => {
    for await (const batch of stream) await onBatch(batch);
  })();
}

/**
 * A flow-controlled consumer that acks each message after a short delay and fails the test if it
 * ever holds more than its limits.
 */
function flowControlledConsumer(
  engine: Engine,
  subscription: SubscriptionName,
  stream: DeliveryStream,
  limits: { messages: number; bytes: number },
  acked: string[],
  violations: string[],
): Promise<void> {
  const outstanding = new Map<string, number>();
  let bytes = 0;
  return consume(stream, (batch) => {
    for (const item of batch) {
      const size = item.message.data.byteLength;
      outstanding.set(item.ackId, size);
      bytes += size;
    }
    if (outstanding.size > limits.messages) violations.push(`${outstanding.size} messages outstanding`);
    if (bytes > limits.bytes && outstanding.size > 1) violations.push(`${bytes} bytes outstanding`);
    for (const item of batch) {
      setTimeout(
        () => {
          // Forget the message before acking: the engine may deliver more as soon as the ack lands.
          bytes -= outstanding.get(item.ackId)!;
          outstanding.delete(item.ackId);
          acked.push(text(item));
          void engine.acknowledge(subscription, [item.ackId]);
        },
        1 + Math.floor(Math.random() * 4),
      );
    }
  });
}

/** StreamingPull semantics. */
export function streamContract(makeEngine: MakeEngine): void {
  describe("streams", () => {
    engineTest(
      makeEngine,
      "streams - flow control is never exceeded; streams and pulls share messages",
      async (engine) => {
        const { topic, subscription } = await topicWithSubscription(engine, "flow");
        const total = 300;
        const abort = new AbortController();
        const acked: string[] = [];
        const violations: string[] = [];
        const consumers = [
          flowControlledConsumer(
            engine,
            subscription,
            engine.openStream(subscription, streamOptions(abort.signal, { maxOutstandingMessages: 7 })),
            { messages: 7, bytes: Number.POSITIVE_INFINITY },
            acked,
            violations,
          ),
          flowControlledConsumer(
            engine,
            subscription,
            engine.openStream(
              subscription,
              streamOptions(abort.signal, { maxOutstandingMessages: 100, maxOutstandingBytes: 40 }),
            ),
            { messages: 100, bytes: 40 },
            acked,
            violations,
          ),
        ];
        const pulled = (async () => {
          while (!abort.signal.aborted) {
            const batch = await engine.pull(subscription, { maxMessages: 3, waitMs: 50, signal: abort.signal });
            if (batch.length === 0) continue;
            acked.push(...batch.map(text));
            await engine.acknowledge(
              subscription,
              batch.map((item) => item.ackId),
            );
          }
        })();
        for (let sent = 0; sent < total; sent += 50) {
          await engine.publish(
            topic,
            Array.from({ length: 50 }, (_, index) => message(`m${String(sent + index).padStart(3, "0")}`)),
          );
        }
        await eventually(() => acked.length >= total, `${total} acks (have ${acked.length})`, 15_000);
        await sleep(50);
        abort.abort();
        await Promise.all([...consumers, pulled]);
        assert.deepEqual(violations, []);
        assert.equal(acked.length, total, "each message delivered and acked exactly once");
        assert.equal(new Set(acked).size, total);
        assert.equal((await engine.subscriptionStats(subscription)).backlog, 0);
      },
    );

    engineTest(makeEngine, "streams - an idle stream gets one message larger than its byte limit", async (engine) => {
      const { topic, subscription } = await topicWithSubscription(engine, "oversize");
      await engine.publish(topic, [message("x".repeat(100)), message("y".repeat(100))]);
      const abort = new AbortController();
      const stream = engine.openStream(subscription, streamOptions(abort.signal, { maxOutstandingBytes: 10 }));
      const batches: ReceivedMessage[][] = [];
      const done = consume(stream, (batch) => {
        batches.push(batch);
      });
      await eventually(() => batches.length === 1, "the first oversize message");
      await sleep(50);
      assert.equal(batches.flat().length, 1, "one oversize message at a time");
      await engine.acknowledge(subscription, [batches[0]![0]!.ackId]);
      await eventually(() => batches.flat().length === 2, "the second message after the ack");
      abort.abort();
      await done;
    });

    engineTest(makeEngine, "streams - raising flow control and nacking free room", async (engine) => {
      const { topic, subscription } = await topicWithSubscription(engine, "raise");
      await engine.publish(
        topic,
        Array.from({ length: 5 }, (_, index) => message(`m${index}`)),
      );
      const abort = new AbortController();
      const stream = engine.openStream(subscription, streamOptions(abort.signal, { maxOutstandingMessages: 1 }));
      const received: ReceivedMessage[] = [];
      const done = consume(stream, (batch) => {
        received.push(...batch);
      });
      await eventually(() => received.length === 1, "one message");
      await sleep(50);
      assert.equal(received.length, 1);
      await engine.modifyAckDeadline(subscription, [received[0]!.ackId], 0);
      await eventually(() => received.length === 2, "a delivery after the nack freed room");
      stream.setFlowControl(10, 0);
      await eventually(() => received.length === 6, "the rest after raising the limit");
      stream.setAckDeadline(30);
      abort.abort();
      await done;
      assert.throws(
        () => stream.setAckDeadline(5),
        (error: Error) => error.message.includes("ack_deadline"),
      );
    });

    engineTest(makeEngine, "streams - abort ends the iterator and leaves leases to expire", async (engine) => {
      const { topic, subscription } = await topicWithSubscription(engine, "abort");
      const abort = new AbortController();
      const stream = engine.openStream(subscription, streamOptions(abort.signal));
      const received: ReceivedMessage[] = [];
      const done = consume(stream, (batch) => {
        received.push(...batch);
      });
      await engine.publish(topic, [message("one")]);
      await eventually(() => received.length === 1, "delivery on the stream");
      abort.abort();
      await done;
      const stats = await engine.subscriptionStats(subscription);
      assert.equal(stats.outstanding, 1, "the lease stays until its deadline");
      await engine.acknowledge(subscription, [received[0]!.ackId]);
      assert.equal(
        (await engine.subscriptionStats(subscription)).backlog,
        0,
        "a lease of an ended stream can still be acked",
      );
    });

    engineTest(makeEngine, "streams - unknown subscription and bad options are refused", async (engine) => {
      const { subscription } = await topicWithSubscription(engine, "stream-errors");
      const signal = new AbortController().signal;
      await assertCode(() => engine.openStream(subscriptionName("missing"), streamOptions(signal)), Code.NOT_FOUND);
      await assertCode(
        () => engine.openStream(subscription, streamOptions(signal, { ackDeadlineSeconds: 700 })),
        Code.INVALID_ARGUMENT,
      );
      await assertCode(
        () => engine.openStream(subscription, streamOptions(signal, { maxOutstandingMessages: -1 })),
        Code.INVALID_ARGUMENT,
      );
    });
  });
}
