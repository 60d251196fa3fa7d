// Three streamgate processes on one nats-server, one ordered subscription consumed through all three: order per key holds across instances, with random nacks and a kill -9 of the delivering instance.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { bidi, createGrpcJsClients, type GrpcJsClients, type grpc, unary } from "../harness/grpc-js-clients.js";
import { startNatsPeer, startNatsServer } from "../harness/nats-server.js";
import { type SpawnedServer, spawnServer } from "../harness/spawn-server.js";
import { delay, waitFor } from "../harness/wait-for.js";

interface Received {
  ackId: string;
  deliveryAttempt: number;
  message: { data: Buffer; orderingKey: string };
}

const KEYS = 50;
const PER_KEY = 200; // 10,000 messages
const NACK_RATE = 0.03;

const { peer: nats, missing } = await startNatsPeer(() => startNatsServer());

describe("jetstream ordered instances", { skip: missing }, () => {
  const instances: { server: SpawnedServer; clients: GrpcJsClients; dataDir: string }[] = [];

  before(async () => {
    for (let index = 0; index < 3; index++) {
      const dataDir = await mkdtemp(join(tmpdir(), "streamgate-ordered-"));
      const server = await spawnServer(["--data-dir", dataDir, "--engine", "jetstream", "--nats-url", nats!.url]);
      instances.push({ server, clients: createGrpcJsClients(server.hostPort), dataDir });
    }
  });

  after(async () => {
    for (const instance of instances) {
      instance.clients.close();
      await instance.server.kill("SIGTERM");
      await rm(instance.dataDir, { recursive: true, force: true });
    }
    await nats?.stop();
  });

  test("jetstream ordered instances - 10,000 messages over 50 keys through three instances with random nacks arrive in order per key; kill -9 of the delivering instance loses nothing", {
    timeout: 120_000,
  }, async () => {
    const topic = "projects/ordered/topics/across-instances";
    const subscription = "projects/ordered/subscriptions/across-instances";
    const first = instances[0]!.clients;
    await unary(first.publisher, "CreateTopic", { name: topic });
    await unary(first.subscriber, "CreateSubscription", {
      name: subscription,
      topic,
      ackDeadlineSeconds: 10,
      enableMessageOrdering: true,
    });

    /** Highest index of each key delivered so far, over every instance. */
    const highest = new Map<string, number>();
    const seen = new Set<string>();
    const violations: string[] = [];
    const lastDelivery = new Map<number, number>(); // instance -> time of its last delivery
    let deliveries = 0;
    let nacks = 0;
    let killed = -1;
    const calls = instances.map((instance, index) => {
      const call = bidi(instance.clients.subscriber, "StreamingPull");
      const ended = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
      call.on("error", () => {});
      call.on("data", (response: { receivedMessages: Received[] }) => {
        if (index === killed) return; // the process is gone; whatever is still buffered is not processed
        lastDelivery.set(index, Date.now());
        const ackIds: string[] = [];
        const nackIds: string[] = [];
        const nackedKeys = new Set<string>();
        for (const received of response.receivedMessages) {
          deliveries++;
          const key = received.message.orderingKey;
          const position = Number(received.message.data.toString().split(":")[1]);
          const top = highest.get(key) ?? -1;
          // Pub/Sub's rule: a key's messages come in order; a redelivery may go back, never skip ahead.
          if (position > top + 1) violations.push(`${key}: ${position} after ${top} (instance ${index})`);
          highest.set(key, Math.max(top, position));
          seen.add(`${key}:${position}`);
          // A client that nacks a message gives up the rest of its key in this batch too (they come back after it).
          if (nackedKeys.has(key) || Math.random() < NACK_RATE) {
            nackedKeys.add(key);
            nackIds.push(received.ackId);
            nacks++;
          } else {
            ackIds.push(received.ackId);
          }
        }
        call.write({
          ackIds,
          modifyDeadlineAckIds: nackIds,
          modifyDeadlineSeconds: nackIds.map(() => 0),
        });
      });
      call.write({ subscription, streamAckDeadlineSeconds: 10, maxOutstandingMessages: 200 });
      return { call, ended };
    });
    await delay(500);

    // Publish through the three instances in turn, one message of every key per batch.
    for (let position = 0; position < PER_KEY; position++) {
      const messages = Array.from({ length: KEYS }, (_, key) => ({
        data: Buffer.from(`k${key}:${position}`),
        orderingKey: `k${key}`,
      }));
      const publisher = instances[position % 3]!.clients.publisher;
      await unary(publisher, "Publish", { topic, messages });
    }

    try {
      await waitFor(() => seen.size >= 3_000, { timeoutMs: 30_000, describe: () => `received ${seen.size}` });
      // Kill -9 the instance delivering right now (the ordered subscription's owner).
      let owner = 0;
      for (const [index, time] of lastDelivery) if (time > (lastDelivery.get(owner) ?? 0)) owner = index;
      killed = owner;
      const exit = await instances[owner]!.server.kill("SIGKILL");
      assert.equal(exit.signal, "SIGKILL");
      await waitFor(() => seen.size >= KEYS * PER_KEY, {
        // Failover: the lease runs out (5 s), then the dead instance's deliveries come back after their ack deadline (10 s).
        timeoutMs: 75_000,
        describe: () => {
          const missing: string[] = [];
          for (let key = 0; key < KEYS; key++) {
            for (let position = 0; position < PER_KEY; position++) {
              if (!seen.has(`k${key}:${position}`)) missing.push(`k${key}:${position}`);
            }
          }
          return `received ${seen.size} of ${KEYS * PER_KEY} (killed instance ${owner}; missing ${missing.slice(0, 10).join(" ")}; ${violations.length} order violations: ${violations.slice(0, 5).join(", ")})`;
        },
      });
      assert.deepEqual(violations.slice(0, 10), [], "no key went out of order");
      assert.equal(seen.size, KEYS * PER_KEY, "every message was delivered");
      assert.ok(nacks > 0, "some messages were nacked");
      assert.ok(deliveries >= KEYS * PER_KEY);
    } finally {
      for (const [index, { call, ended }] of calls.entries()) {
        if (index === killed) {
          call.cancel();
          continue;
        }
        call.end();
        const closed = await Promise.race([ended, delay(3_000).then(() => undefined)]);
        if (closed === undefined) call.cancel();
      }
    }
  });
});
