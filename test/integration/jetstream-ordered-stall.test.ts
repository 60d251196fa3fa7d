// Two streamgate processes on one nats-server, one ordered subscription: the delivering instance stalls (SIGSTOP) past its ordering lease and comes back; order per key holds and nothing is lost.
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
  message: { data: Buffer; orderingKey: string };
}

const KEYS = 20;
const PER_KEY = 100; // 2,000 messages
const NACK_RATE = 0.03;
/** Longer than the ordering lease (5 s by default): another instance takes the subscription over meanwhile. */
const STALL_MS = 7_500;

const { peer: nats, missing } = await startNatsPeer(() => startNatsServer());

describe("jetstream ordered stall", { skip: missing }, () => {
  const instances: { server: SpawnedServer; clients: GrpcJsClients; dataDir: string }[] = [];

  before(async () => {
    for (let index = 0; index < 2; index++) {
      const dataDir = await mkdtemp(join(tmpdir(), "streamgate-stall-"));
      const server = await spawnServer(["--data-dir", dataDir, "--engine", "jetstream", "--nats-url", nats!.url]);
      instances.push({ server, clients: createGrpcJsClients(server.hostPort), dataDir });
    }
  });

  after(async () => {
    for (const instance of instances) {
      instance.server.child.kill("SIGCONT");
      instance.clients.close();
      await instance.server.kill("SIGTERM");
      await rm(instance.dataDir, { recursive: true, force: true });
    }
    await nats?.stop();
  });

  test("jetstream ordered stall - the delivering instance frozen past its lease and resumed: every message arrives, in order per key, with random nacks", {
    timeout: 90_000,
  }, async () => {
    const topic = "projects/ordered/topics/stall";
    const subscription = "projects/ordered/subscriptions/stall";
    const first = instances[0]!.clients;
    await unary(first.publisher, "CreateTopic", { name: topic });
    await unary(first.subscriber, "CreateSubscription", {
      name: subscription,
      topic,
      ackDeadlineSeconds: 10,
      enableMessageOrdering: true,
    });

    // Everything is published (through both instances) before anyone consumes: the instance frozen
    // below is then stopped mid-stream, not in the middle of a publish sent to it.
    for (let position = 0; position < PER_KEY; position++) {
      const messages = Array.from({ length: KEYS }, (_, key) => ({
        data: Buffer.from(`k${key}:${position}`),
        orderingKey: `k${key}`,
      }));
      await unary(instances[position % 2]!.clients.publisher, "Publish", { topic, messages });
    }

    /** Highest index of each key delivered so far, over both instances. */
    const highest = new Map<string, number>();
    const seen = new Set<string>();
    const violations: string[] = [];
    /** The instance frozen once 500 messages were seen (-1 until then). */
    let stalled = -1;
    const deliveredBy = [0, 0];
    let nacks = 0;
    const calls = instances.map((instance, index) => {
      const call = bidi(instance.clients.subscriber, "StreamingPull");
      const ended = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
      call.on("error", () => {});
      call.on("data", (response: { receivedMessages: Received[] }) => {
        const ackIds: string[] = [];
        const nackIds: string[] = [];
        const nackedKeys = new Set<string>();
        for (const received of response.receivedMessages) {
          deliveredBy[index]!++;
          const key = received.message.orderingKey;
          const position = Number(received.message.data.toString().split(":")[1]);
          const top = highest.get(key) ?? -1;
          // Pub/Sub's rule: a key's messages come in order; a redelivery may go back, never skip ahead.
          if (position > top + 1) violations.push(`${key}: ${position} after ${top} (instance ${index})`);
          highest.set(key, Math.max(top, position));
          seen.add(`${key}:${position}`);
          if (nackedKeys.has(key) || Math.random() < NACK_RATE) {
            nackedKeys.add(key);
            nackIds.push(received.ackId);
            nacks++;
          } else {
            ackIds.push(received.ackId);
          }
        }
        call.write({ ackIds, modifyDeadlineAckIds: nackIds, modifyDeadlineSeconds: nackIds.map(() => 0) });
        if (stalled === -1 && seen.size >= 500) {
          // Frozen right here, with most messages still to come (a poll of seen.size from a timer can
          // run late enough that the instance has delivered nearly everything by then): a long GC
          // pause, a suspended VM. Its lease runs out and the other instance takes over.
          stalled = index;
          assert.ok(instance.server.child.kill("SIGSTOP"));
        }
      });
      call.write({ subscription, streamAckDeadlineSeconds: 10, maxOutstandingMessages: 100 });
      return { call, ended };
    });

    const describeState = (stalled: number) => () => {
      const absent: string[] = [];
      for (let key = 0; key < KEYS; key++) {
        for (let position = 0; position < PER_KEY; position++) {
          if (!seen.has(`k${key}:${position}`)) absent.push(`k${key}:${position}`);
        }
      }
      return `received ${seen.size} of ${KEYS * PER_KEY} (stalled instance ${stalled}; deliveries ${deliveredBy.join("/")}; missing ${absent.slice(0, 10).join(" ")}; ${violations.length} order violations: ${violations.slice(0, 5).join(", ")})`;
    };
    try {
      await waitFor(() => stalled >= 0, { timeoutMs: 30_000, describe: () => `received ${seen.size}` });
      const owner = stalled;
      await delay(STALL_MS);
      assert.ok(instances[owner]!.server.child.kill("SIGCONT"));
      // Failover: the lease (5 s), then the stalled one's deliveries come back after their ack deadline (10 s).
      await waitFor(() => seen.size >= KEYS * PER_KEY, { timeoutMs: 45_000, describe: describeState(owner) });
      assert.deepEqual(violations.slice(0, 10), [], `no key went out of order: ${describeState(owner)()}`);
      assert.equal(seen.size, KEYS * PER_KEY, "every message was delivered");
      assert.ok(nacks > 0, "some messages were nacked");
      assert.ok(deliveredBy[1 - owner]! > 0, "the other instance took over");
    } finally {
      if (stalled >= 0) instances[stalled]!.server.child.kill("SIGCONT");
      for (const { call, ended } of calls) {
        call.end();
        const closed = await Promise.race([ended, delay(3_000).then(() => undefined)]);
        if (closed === undefined) call.cancel();
      }
    }
  });
});
