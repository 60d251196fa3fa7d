// The jetstream engine on a 3-node NATS cluster (R3 streams): killing a node while publishing loses no acknowledged message.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Engine } from "../../src/engines/index.js";
import { createJetStreamEngine } from "../../src/engines/jetstream/index.js";
import { startNatsCluster, startNatsPeer } from "../harness/nats-server.js";
import { delay } from "../harness/wait-for.js";

const { peer: cluster, missing } = await startNatsPeer(() => startNatsCluster(3));

describe("jetstream cluster", { skip: missing }, () => {
  let engine: Engine;

  before(async () => {
    engine = await createJetStreamEngine({ natsUrl: cluster!.urls.join(","), namespace: "cluster", replicas: 3 });
  });

  after(async () => {
    await engine?.close();
    await cluster?.stop();
  });

  test("jetstream cluster - killing one of 3 NATS nodes while publishing loses no acknowledged message", {
    timeout: 50_000,
  }, async () => {
    const topic = "projects/cluster/topics/kill-a-node";
    await engine.createTopic({ name: topic });
    const acknowledged = new Map<number, string>();
    let failed = 0;
    let sent = 0;
    let stop = false;
    const publisher = (async () => {
      while (!stop) {
        const texts = Array.from({ length: 10 }, () => `m${sent++}`);
        try {
          const refs = await engine.publish(
            topic,
            texts.map((text) => ({ data: Buffer.from(text), attributes: { text }, orderingKey: "" })),
          );
          for (const [index, ref] of refs.entries()) acknowledged.set(ref.offset, texts[index]!);
        } catch {
          failed += texts.length; // not acknowledged: allowed to be lost
        }
        await delay(5);
      }
    })();
    await delay(1_000);
    const before = acknowledged.size;
    await cluster!.servers[0]!.stop("SIGKILL");
    const deadline = Date.now() + 20_000;
    while (acknowledged.size < before + 200 && Date.now() < deadline) await delay(100);
    stop = true;
    await publisher;
    assert.ok(before > 0, "publishes were acknowledged before the kill");
    assert.ok(
      acknowledged.size >= before + 200,
      `publishing resumed on the surviving nodes (${before} acknowledged before the kill, ${acknowledged.size} in all, ${failed} failed)`,
    );

    const offsets = [...acknowledged.keys()].sort((a, b) => a - b);
    const stored = new Map<number, string>();
    let from = 1;
    const last = offsets[offsets.length - 1]!;
    while (from <= last) {
      const batch = await engine.readTopic(topic, from, { maxMessages: 500, maxBytes: 1 << 20 });
      if (batch.length === 0) break;
      for (const message of batch) stored.set(message.offset, Buffer.from(message.data).toString());
      from = batch[batch.length - 1]!.offset + 1;
    }
    const lost = offsets.filter((offset) => stored.get(offset) !== acknowledged.get(offset));
    assert.deepEqual(lost, [], `acknowledged messages lost (${failed} publishes failed during the failover)`);
  });
});
