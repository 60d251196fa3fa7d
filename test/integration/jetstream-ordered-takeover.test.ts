// An ordered subscription taken over by an instance that fills up with newer messages before the previous holder's deliveries come back: it still collects them and delivers every key in order.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import type { ReceivedMessage } from "../../src/broker/types.js";
import { jetStreamFleet } from "../harness/jetstream-fleet.js";
import { startNatsPeer, startNatsServer } from "../harness/nats-server.js";
import { waitFor } from "../harness/wait-for.js";

const { peer: nats, missing } = await startNatsPeer(() => startNatsServer());

const KEYS = 4;
const PER_KEY = 50;
/** Each instance holds at most this many messages of the subscription: far fewer than the backlog. */
const MAX_TRACKED = 40;

describe("jetstream ordered takeover", { skip: missing }, () => {
  const fleet = jetStreamFleet(() => nats!.url, "ot", { maxTrackedMessages: MAX_TRACKED });
  const open = () => fleet.open();

  after(async () => {
    await fleet.close();
    await nats?.stop();
  });

  test("jetstream ordered takeover - a new holder full of newer messages still gets the previous holder's deliveries back and delivers every key in order", {
    timeout: 60_000,
  }, async () => {
    const a = await open();
    const b = await open();
    const topic = "projects/takeover/topics/backlog";
    const subscription = "projects/takeover/subscriptions/backlog";
    await a.createTopic({ name: topic });
    await a.createSubscription({ name: subscription, topic, ackDeadlineSeconds: 10, enableMessageOrdering: true });
    for (let position = 0; position < PER_KEY; position++) {
      await a.publish(
        topic,
        Array.from({ length: KEYS }, (_, key) => ({
          data: Buffer.from(`k${key}:${position}`),
          attributes: {},
          orderingKey: `k${key}`,
        })),
      );
    }

    // A holds the subscription and has MAX_TRACKED messages out (10 with its client, none acked), then goes away.
    const stopA = new AbortController();
    const onA: ReceivedMessage[] = [];
    const streamA = a.openStream(subscription, {
      ackDeadlineSeconds: 10,
      maxOutstandingMessages: 10,
      maxOutstandingBytes: 0,
      clientId: "a",
      signal: stopA.signal,
    });
    const readerA = (async () => {
      for await (const batch of streamA) onA.push(...batch);
    })();
    await waitFor(() => onA.length >= 10, { timeoutMs: 10_000, describe: () => `A received ${onA.length}` });
    stopA.abort();
    await readerA;
    await a.close();

    // B takes over at once (A released the lease); A's deliveries come back only after their ack deadline.
    const stopB = new AbortController();
    const highest = new Map<string, number>();
    const seen = new Set<string>();
    const violations: string[] = [];
    const streamB = b.openStream(subscription, {
      ackDeadlineSeconds: 10,
      maxOutstandingMessages: 100,
      maxOutstandingBytes: 0,
      clientId: "b",
      signal: stopB.signal,
    });
    const readerB = (async () => {
      for await (const batch of streamB) {
        for (const received of batch) {
          const [key, position] = Buffer.from(received.message.data).toString().split(":") as [string, string];
          const top = highest.get(key) ?? -1;
          if (Number(position) > top + 1) violations.push(`${key}: ${position} after ${top}`);
          highest.set(key, Math.max(top, Number(position)));
          seen.add(`${key}:${position}`);
        }
        await b.acknowledge(
          subscription,
          batch.map((received) => received.ackId),
        );
      }
    })();
    try {
      await waitFor(() => seen.size >= KEYS * PER_KEY, {
        timeoutMs: 40_000,
        describe: () => `B received ${seen.size} of ${KEYS * PER_KEY}; violations: ${violations.join(", ")}`,
      });
      assert.deepEqual(violations, [], "every key in order");
    } finally {
      stopB.abort();
      await readerB;
    }
  });
});
