// Two streamgate processes on one nats-server: acks made through an instance that is then killed (kill -9) stay acked for seeks and snapshots made through the other.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createGrpcJsClients, type GrpcJsClients, unary } from "../harness/grpc-js-clients.js";
import { startNatsPeer, startNatsServer } from "../harness/nats-server.js";
import { type SpawnedServer, spawnServer } from "../harness/spawn-server.js";
import { uniqueName } from "../harness/unique-name.js";
import { delay, waitFor } from "../harness/wait-for.js";

interface Received {
  ackId: string;
  message: { data: Buffer };
}

interface Instance {
  server: SpawnedServer;
  clients: GrpcJsClients;
  dataDir: string;
}

const PROJECT = "seekdeath";
/** Lease-book entries live this long here, so a test can outlast them (the default is 10 minutes). */
const RECORD_TTL_MS = 2_000;

const { peer: nats, missing } = await startNatsPeer(() => startNatsServer());

describe("jetstream seek after death", { skip: missing }, () => {
  const instances: Instance[] = [];
  let b: Instance;

  async function start(): Promise<Instance> {
    const dataDir = await mkdtemp(join(tmpdir(), "streamgate-seek-death-"));
    const server = await spawnServer([
      "--data-dir",
      dataDir,
      "--engine",
      "jetstream",
      "--nats-url",
      nats!.url,
      "--jetstream-delivery-record-ttl-ms",
      String(RECORD_TTL_MS),
    ]);
    const instance = { server, clients: createGrpcJsClients(server.hostPort), dataDir };
    instances.push(instance);
    return instance;
  }

  before(async () => {
    b = await start();
  });

  after(async () => {
    for (const instance of instances) {
      instance.clients.close();
      await instance.server.kill("SIGTERM");
      await rm(instance.dataDir, { recursive: true, force: true });
    }
    await nats?.stop();
  });

  const texts = (received: Received[]) => received.map((r) => r.message.data.toString()).sort();

  /** Pulls through `instance` until `count` messages came (retrying while it does not know the subscription yet). */
  async function pullAtLeast(instance: Instance, subscription: string, count: number): Promise<Received[]> {
    const received: Received[] = [];
    await waitFor(
      async () => {
        const response = await unary<{ receivedMessages: Received[] }>(
          instance.clients.subscriber,
          "Pull",
          { subscription, maxMessages: count - received.length },
          { deadlineMs: 3_000 },
        ).catch(() => ({ receivedMessages: [] as Received[] }));
        received.push(...response.receivedMessages);
        return received.length >= count;
      },
      { timeoutMs: 15_000, describe: () => `pulled ${received.length} of ${count}` },
    );
    return received;
  }

  /** What `instance` delivers within about 1.5 s after its first delivery (all of it acked, so nothing comes back). */
  async function drain(instance: Instance, subscription: string, expected: number): Promise<string[]> {
    const received = await pullAtLeast(instance, subscription, expected);
    await delay(500);
    for (let round = 0; round < 2; round++) {
      const more = await unary<{ receivedMessages: Received[] }>(instance.clients.subscriber, "Pull", {
        subscription,
        maxMessages: 100,
        returnImmediately: true,
      });
      received.push(...more.receivedMessages);
      await delay(500);
    }
    await unary(instance.clients.subscriber, "Acknowledge", { subscription, ackIds: received.map((r) => r.ackId) });
    return texts(received);
  }

  /**
   * Creates a topic and subscription through B, publishes m0..m19, pulls them all through a new
   * instance A, acks all but `unacked` through A (m0 among them keeps the ack floor at 0: every ack
   * is above it), then kills A with SIGKILL.
   */
  async function ackThroughDeadInstance(settings: Record<string, unknown>, unacked: string[]) {
    const topic = `projects/${PROJECT}/topics/${uniqueName("t")}`;
    const subscription = `projects/${PROJECT}/subscriptions/${uniqueName("s")}`;
    await unary(b.clients.publisher, "CreateTopic", { name: topic });
    await unary(b.clients.subscriber, "CreateSubscription", {
      name: subscription,
      topic,
      ackDeadlineSeconds: 60,
      ...settings,
    });
    const a = await start();
    const beforePublish = Date.now() - 1_000;
    const all = Array.from({ length: 20 }, (_, index) => `m${index}`);
    await unary(b.clients.publisher, "Publish", { topic, messages: all.map((text) => ({ data: Buffer.from(text) })) });
    const received = await pullAtLeast(a, subscription, all.length);
    assert.deepEqual(texts(received), [...all].sort());
    const toAck = received.filter((r) => !unacked.includes(r.message.data.toString()));
    await unary(a.clients.subscriber, "Acknowledge", { subscription, ackIds: toAck.map((r) => r.ackId) });
    const exit = await a.server.kill("SIGKILL");
    assert.equal(exit.signal, "SIGKILL");
    return { topic, subscription, beforePublish };
  }

  test("jetstream seek after death - at-least-once: after kill -9 of the acking instance, a seek to a time and a snapshot through another replay no acked message", {
    timeout: 60_000,
  }, async () => {
    const unacked = ["m0", "m7"];
    const { subscription, beforePublish } = await ackThroughDeadInstance({}, unacked);

    const snapshot = `projects/${PROJECT}/snapshots/${uniqueName("after-death")}`;
    await unary(b.clients.subscriber, "CreateSnapshot", { name: snapshot, subscription });

    // A seek to a time before every message: acked messages stay acked (no retain_acked_messages).
    await unary(b.clients.subscriber, "Seek", { subscription, time: { seconds: Math.floor(beforePublish / 1000) } });
    assert.deepEqual(
      await drain(b, subscription, unacked.length),
      unacked.sort(),
      "only the unacked messages come back",
    );

    // Everything is acked now; the snapshot taken after the death restores its acked state.
    await unary(b.clients.subscriber, "Seek", { subscription, snapshot });
    assert.deepEqual(
      await drain(b, subscription, unacked.length),
      unacked.sort(),
      "the snapshot holds A's acks: only what was unacked then comes back",
    );
  });

  test("jetstream seek after death - exactly-once: acks through a killed instance stay acked for a seek made after the lease book forgot them", {
    timeout: 60_000,
  }, async () => {
    const unacked = ["m0", "m11"];
    const { subscription, beforePublish } = await ackThroughDeadInstance({ enableExactlyOnceDelivery: true }, unacked);
    await delay(RECORD_TTL_MS + 1_500); // the book's entries of those acks expire
    await unary(b.clients.subscriber, "Seek", { subscription, time: { seconds: Math.floor(beforePublish / 1000) } });
    assert.deepEqual(
      await drain(b, subscription, unacked.length),
      unacked.sort(),
      "only the unacked messages come back",
    );
  });
});
