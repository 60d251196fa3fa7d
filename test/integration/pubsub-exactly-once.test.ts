// Exactly-once delivery with the official @google-cloud/pubsub client, unchanged, on both engines: stale acks refused, acks durable across kill -9.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { AckError, AckResponses, type Message, PubSub, type Subscription, type Topic } from "@google-cloud/pubsub";
import { createGrpcJsClients, unary } from "../harness/grpc-js-clients.js";
import { type HoldProxy, startHoldProxy } from "../harness/hold-proxy.js";
import {
  findNatsServerBinary,
  NATS_SERVER_NOT_FOUND,
  type NatsServer,
  startNatsServer,
} from "../harness/nats-server.js";
import { type SpawnedServer, spawnServer } from "../harness/spawn-server.js";
import { peersRequired } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";
import { delay, waitFor } from "../harness/wait-for.js";

// The client probes the GCE metadata server for credentials; there is none here, and the probe only adds warnings.
process.env.METADATA_SERVER_DETECTION ??= "none";

let natsMissing: string | false = false;
try {
  findNatsServerBinary();
} catch (error) {
  if (!String(error).includes(NATS_SERVER_NOT_FOUND) || peersRequired()) throw error;
  natsMissing = `SKIPPED: ${String(error)}`;
  console.warn(`pubsub-exactly-once: ${natsMissing}`);
}

/** What `ackWithResponse()` resolved or rejected with: an AckResponses code. */
function ackCode(message: Message): Promise<string> {
  return message.ackWithResponse().then(
    (code) => code,
    (error: unknown) => (error instanceof AckError ? error.errorCode : `not an AckError: ${String(error)}`),
  );
}

/** The messages one subscriber received, in arrival order, by data. */
function collect(subscription: Subscription, errors: Error[]): Message[] {
  const received: Message[] = [];
  subscription.on("message", (message: Message) => received.push(message));
  subscription.on("error", (error: Error) => errors.push(error));
  return received;
}

const received = (messages: Message[], data: string) => messages.filter((message) => message.data.toString() === data);

for (const engine of ["embedded", "jetstream"] as const) {
  describe(`pubsub client exactly-once (${engine})`, { skip: engine === "jetstream" && natsMissing }, () => {
    let nats: NatsServer | undefined;
    let dataDir: string;
    let server: SpawnedServer | undefined;
    let proxy: HoldProxy | undefined;
    const args = () => [
      "--data-dir",
      dataDir,
      ...(nats === undefined ? [] : ["--engine", "jetstream", "--nats-url", nats.url]),
    ];

    before(async () => {
      if (engine === "jetstream") nats = await startNatsServer();
      dataDir = await mkdtemp(join(tmpdir(), "streamgate-eod-"));
      server = await spawnServer(args());
      proxy = await startHoldProxy(server.port);
    });
    after(async () => {
      await proxy?.close();
      await server?.kill("SIGKILL");
      await nats?.stop();
      if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
    });

    async function withClient(
      fn: (pubsub: PubSub, errors: Error[], opened: Subscription[]) => Promise<void>,
    ): Promise<void> {
      const pubsub = new PubSub({ projectId: "test", apiEndpoint: proxy!.hostPort, emulatorMode: true });
      const errors: Error[] = [];
      const opened: Subscription[] = [];
      try {
        await fn(pubsub, errors, opened);
      } finally {
        // A test that failed while answers were held back must not leave the client waiting on them.
        proxy?.release();
        for (const subscription of opened) await subscription.close();
        // The ack/modack queues keep a 100 ms batch timer after close; let it fire before the client closes.
        await delay(300);
        await pubsub.close();
      }
    }

    async function exactlyOnceSubscription(
      pubsub: PubSub,
      label: string,
    ): Promise<{ topic: Topic; subscription: Subscription }> {
      const [topic] = await pubsub.createTopic(uniqueName(label));
      const [subscription] = await topic.createSubscription(uniqueName(`${label}-sub`), {
        enableExactlyOnceDelivery: true,
      });
      return { topic, subscription };
    }

    test("exactly-once - an ack whose lease expired and was redelivered is refused: ackWithResponse gives INVALID", {
      timeout: 120_000,
    }, async () => {
      await withClient(async (pubsub, errors, opened) => {
        const { topic, subscription } = await exactlyOnceSubscription(pubsub, "eod-stale");
        opened.push(subscription);
        const deliveries = collect(subscription, errors);
        await topic.publishMessage({ data: Buffer.from("once") });
        await waitFor(() => deliveries.length === 1, { timeoutMs: 15_000, describe: () => "first delivery" });
        const first = deliveries[0]!;

        // The client keeps extending its lease; a raw ModifyAckDeadline of 1 s lets it run out on the server.
        const raw = createGrpcJsClients(proxy!.hostPort);
        try {
          await unary(raw.subscriber, "ModifyAckDeadline", {
            subscription: subscription.name,
            ackIds: [first.ackId],
            ackDeadlineSeconds: 1,
          });
        } finally {
          raw.close();
        }
        await waitFor(() => deliveries.length === 2, { timeoutMs: 15_000, describe: () => "the redelivery" });
        const second = deliveries[1]!;
        assert.equal(second.id, first.id, "the same message came back");
        assert.notEqual(second.ackId, first.ackId, "under a new ack id");

        assert.equal(await ackCode(first), AckResponses.Invalid, "the stale ack id is refused");
        assert.equal(await ackCode(second), AckResponses.Success, "the current one is accepted");
        await delay(1500);
        assert.equal(deliveries.length, 2, "acked once: never delivered again");
        assert.deepEqual(
          errors.map((error) => error.message),
          [],
        );
      });
    });

    test("exactly-once - a message acked before a kill -9 (confirmation lost) is not delivered again after restart", {
      timeout: 120_000,
    }, async () => {
      await withClient(async (pubsub, errors, opened) => {
        const { topic, subscription } = await exactlyOnceSubscription(pubsub, "eod-kill");
        opened.push(subscription);
        const deliveries = collect(subscription, errors);
        await topic.publishMessage({ data: Buffer.from("acked-once") });
        await waitFor(() => deliveries.length === 1, { timeoutMs: 15_000, describe: () => "first delivery" });

        // The ack reaches the server, whose answer is held back; the server applies it (its backlog, read
        // past the proxy, drops to 0) and dies before the client hears the answer.
        const backlogMetric = async () => {
          const response = await fetch(`${server!.url}/metrics`, { headers: { connection: "close" } });
          const text = await response.text();
          const series = `streamgate_subscription_backlog_messages{subscription="${subscription.name}"} `;
          const line = text.split("\n").find((row) => row.startsWith(series));
          return line === undefined ? null : Number(line.split(" ").at(-1));
        };
        assert.equal(await backlogMetric(), 1, "one message outstanding before the ack");
        proxy!.hold();
        const acked = ackCode(deliveries[0]!);
        await waitFor(async () => (await backlogMetric()) === 0, {
          timeoutMs: 15_000,
          intervalMs: 50,
          describe: () => "the server applying the ack",
        });
        assert.ok(proxy!.sentSinceHold() > 0, "the ack went through the proxy");
        const killed = await server!.kill("SIGKILL");
        assert.equal(killed.signal, "SIGKILL");

        server = await spawnServer(args());
        proxy!.retarget(server.port);
        proxy!.release();

        await topic.publishMessage({ data: Buffer.from("after-restart") });
        await waitFor(() => received(deliveries, "after-restart").length > 0, {
          timeoutMs: 30_000,
          describe: () => `delivery after restart; got ${deliveries.map((message) => message.data.toString())}`,
        });
        // A lost ack would come back at once after the restart (the new process has no leases).
        await delay(2000);
        assert.equal(received(deliveries, "acked-once").length, 1, "the acked message was delivered exactly once");
        // The client retried its unconfirmed ack on the new process: that delivery is no longer current.
        assert.ok(
          [AckResponses.Invalid, AckResponses.Success].includes((await acked) as "INVALID" | "SUCCESS"),
          `ack result ${await acked}`,
        );
        assert.equal(await ackCode(received(deliveries, "after-restart")[0]!), AckResponses.Success);
      });
    });
  });
}
