// An ordered subscription taken over while the previous holder's client still has messages of one key out: only that key waits for them; the other keys flow at once, and every key stays in order.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import type { ReceivedMessage } from "../../src/broker/types.js";
import { jetStreamFleet } from "../harness/jetstream-fleet.js";
import { startNatsPeer, startNatsServer } from "../harness/nats-server.js";
import { waitFor } from "../harness/wait-for.js";

const { peer: nats, missing } = await startNatsPeer(() => startNatsServer());

const ACK_DEADLINE_SECONDS = 15;
const PER_KEY = 5;

describe("jetstream ordered takeover keys", { skip: missing }, () => {
  const fleet = jetStreamFleet(() => nats!.url, "ok");
  const open = () => fleet.open();

  after(async () => {
    await fleet.close();
    await nats?.stop();
  });

  test("jetstream ordered takeover keys - keys the previous holder had nothing out of are delivered by the new holder at once; the held key follows, in order, after its ack deadline", {
    timeout: 60_000,
  }, async () => {
    const a = await open();
    const b = await open();
    const topic = "projects/takeoverkeys/topics/keys";
    const subscription = "projects/takeoverkeys/subscriptions/keys";
    await a.createTopic({ name: topic });
    await a.createSubscription({
      name: subscription,
      topic,
      ackDeadlineSeconds: ACK_DEADLINE_SECONDS,
      enableMessageOrdering: true,
    });
    const message = (key: string, position: number) => ({
      data: Buffer.from(`${key}:${position}`),
      attributes: {},
      orderingKey: key,
    });
    // The held key's messages come first in the stream, so A's client gets them.
    await a.publish(
      topic,
      Array.from({ length: PER_KEY }, (_, position) => message("held", position)),
    );

    // A holds the subscription, its client has the held key's messages out (never acked), then A goes away.
    const stopA = new AbortController();
    const onA: ReceivedMessage[] = [];
    const streamA = a.openStream(subscription, {
      ackDeadlineSeconds: ACK_DEADLINE_SECONDS,
      maxOutstandingMessages: PER_KEY,
      maxOutstandingBytes: 0,
      clientId: "a",
      signal: stopA.signal,
    });
    const readerA = (async () => {
      for await (const batch of streamA) onA.push(...batch);
    })();
    await waitFor(() => onA.length >= PER_KEY, { timeoutMs: 10_000, describe: () => `A received ${onA.length}` });
    await a.publish(
      topic,
      ["free1", "free2"].flatMap((key) => Array.from({ length: PER_KEY }, (_, position) => message(key, position))),
    );
    stopA.abort();
    await readerA;
    await a.close();
    const closedAt = Date.now();

    const arrivals: { text: string; atMs: number }[] = [];
    const stopB = new AbortController();
    const streamB = b.openStream(subscription, {
      ackDeadlineSeconds: ACK_DEADLINE_SECONDS,
      maxOutstandingMessages: 100,
      maxOutstandingBytes: 0,
      clientId: "b",
      signal: stopB.signal,
    });
    const readerB = (async () => {
      for await (const batch of streamB) {
        for (const received of batch) {
          arrivals.push({ text: Buffer.from(received.message.data).toString(), atMs: Date.now() - closedAt });
        }
        await b.acknowledge(
          subscription,
          batch.map((received) => received.ackId),
        );
      }
    })();
    try {
      await waitFor(() => arrivals.length >= 3 * PER_KEY, {
        timeoutMs: (ACK_DEADLINE_SECONDS + 20) * 1000,
        describe: () => `B received ${arrivals.map((arrival) => `${arrival.text}@${arrival.atMs}`).join(" ")}`,
      });
      const byKey = new Map<string, { position: number; atMs: number }[]>();
      for (const arrival of arrivals) {
        const [key, position] = arrival.text.split(":") as [string, string];
        byKey.set(key, [...(byKey.get(key) ?? []), { position: Number(position), atMs: arrival.atMs }]);
      }
      for (const [key, list] of byKey) {
        assert.deepEqual(
          list.map((item) => item.position),
          Array.from({ length: PER_KEY }, (_, position) => position),
          `${key} in order, once each`,
        );
      }
      const lastFree = Math.max(...["free1", "free2"].flatMap((key) => byKey.get(key)!.map((item) => item.atMs)));
      const firstHeld = Math.min(...byKey.get("held")!.map((item) => item.atMs));
      assert.ok(
        lastFree < (ACK_DEADLINE_SECONDS * 1000) / 2,
        `the free keys came within half the ack deadline of the takeover (last at ${lastFree} ms)`,
      );
      assert.ok(firstHeld > lastFree, `the held key waited for its ack deadline (first at ${firstHeld} ms)`);
    } finally {
      stopB.abort();
      await readerB;
    }
  });
});
