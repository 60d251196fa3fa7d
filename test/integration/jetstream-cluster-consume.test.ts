// The jetstream engine on a 3-node NATS cluster (R3): killing the topic's stream leader during publish + consume on an exactly-once subscription.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { createJetStreamEngine, type JetStreamEngine } from "../../src/engines/jetstream/index.js";
import { type NatsCluster, startNatsCluster, startNatsPeer } from "../harness/nats-server.js";
import { delay } from "../harness/wait-for.js";

const { peer: cluster, missing } = await startNatsPeer(() => startNatsCluster(3));

const NAMESPACE = "consume";

/** The server name of the leader of the (only) topic stream of the namespace. */
async function streamLeader(urls: readonly string[]): Promise<string> {
  const connection = await connect({ servers: [...urls] });
  try {
    const jsm = await jetstreamManager(connection);
    for await (const info of jsm.streams.list()) {
      if (info.config.name.startsWith(`${NAMESPACE}-t-`)) return info.cluster?.leader ?? "";
    }
    return "";
  } finally {
    await connection.close();
  }
}

describe("jetstream cluster consume", { skip: missing }, () => {
  let engine: JetStreamEngine;

  before(async () => {
    engine = await createJetStreamEngine({ natsUrl: cluster!.urls.join(","), namespace: NAMESPACE, replicas: 3 });
  });

  after(async () => {
    await engine?.close();
    await cluster?.stop();
  });

  test("jetstream cluster consume - killing the stream leader during publish + consume: no acknowledged publish lost, no acked message redelivered (exactly-once)", {
    timeout: 60_000,
  }, async () => {
    const topic = "projects/cluster/topics/kill-the-leader";
    const subscription = "projects/cluster/subscriptions/kill-the-leader";
    await engine.createTopic({ name: topic });
    await engine.createSubscription({
      name: subscription,
      topic,
      ackDeadlineSeconds: 10,
      enableExactlyOnceDelivery: true,
    });

    const published = new Set<string>(); // acknowledged publishes
    const received = new Set<string>();
    const acked = new Set<string>(); // acks the engine reported applied
    const redeliveredAfterAck: string[] = [];
    let failedPublishes = 0;
    let sent = 0;
    let publishing = true;
    let consuming = true;

    const publisher = (async () => {
      while (publishing) {
        const texts = Array.from({ length: 10 }, () => `m${sent++}`);
        try {
          await engine.publish(
            topic,
            texts.map((text) => ({ data: Buffer.from(text), attributes: {}, orderingKey: "" })),
          );
          for (const text of texts) published.add(text);
        } catch {
          failedPublishes += texts.length; // not acknowledged: allowed to be lost
        }
        await delay(10);
      }
    })();

    const consumer = (async () => {
      let retry: { ackId: string; text: string }[] = [];
      while (consuming) {
        let batch: Awaited<ReturnType<typeof engine.pull>> = [];
        try {
          batch = await engine.pull(subscription, {
            maxMessages: 100,
            waitMs: 300,
            signal: AbortSignal.timeout(10_000),
          });
        } catch {
          await delay(100); // the cluster is failing over
        }
        const pending = [...retry];
        for (const entry of batch) {
          const text = Buffer.from(entry.message.data).toString();
          if (acked.has(text)) redeliveredAfterAck.push(`${text} (attempt ${entry.deliveryAttempt})`);
          received.add(text);
          pending.push({ ackId: entry.ackId, text });
        }
        retry = [];
        if (pending.length === 0) continue;
        try {
          const result = await engine.acknowledge(
            subscription,
            pending.map((entry) => entry.ackId),
          );
          const invalid = new Set(result.invalidAckIds);
          const temporary = new Set(result.temporaryFailedAckIds);
          for (const entry of pending) {
            if (temporary.has(entry.ackId)) retry.push(entry);
            else if (!invalid.has(entry.ackId)) acked.add(entry.text);
          }
        } catch {
          retry = pending; // the whole call failed: the client retries
        }
      }
    })();

    await delay(1_500);
    const leader = await streamLeader(cluster!.urls);
    let killed: NatsCluster["servers"][number] | undefined;
    for (const server of cluster!.servers) {
      const varz = (await (await fetch(`${server.monitorUrl}/varz`)).json()) as { server_name: string };
      if (varz.server_name === leader) killed = server;
    }
    assert.ok(killed !== undefined, `the topic stream's leader (${leader}) is one of the servers`);
    const before = published.size;
    await killed.stop("SIGKILL");
    const deadline = Date.now() + 25_000;
    while (published.size < before + 300 && Date.now() < deadline) await delay(100);
    publishing = false;
    await publisher;
    const drained = Date.now() + 25_000;
    while ([...published].some((text) => !received.has(text)) && Date.now() < drained) await delay(100);
    await delay(1_000); // a redelivery of an acked message would show up here
    consuming = false;
    await consumer;

    assert.ok(before > 0, "publishes were acknowledged before the kill");
    assert.ok(
      published.size >= before + 300,
      `publishing resumed (${before} before the kill, ${published.size} in all)`,
    );
    const lost = [...published].filter((text) => !received.has(text));
    assert.deepEqual(lost, [], `acknowledged publishes never delivered (${failedPublishes} publishes failed)`);
    assert.deepEqual(redeliveredAfterAck, [], "a message whose ack was reported applied came back");
    assert.ok(acked.size > before, `acks were applied (${acked.size})`);
  });
});
