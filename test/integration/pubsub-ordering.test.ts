// Ordering keys at speed with the official @google-cloud/pubsub client, unchanged, on both engines: 10,000 messages, 10 keys, nacks sprinkled in.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type Message, PubSub } from "@google-cloud/pubsub";
import {
  findNatsServerBinary,
  NATS_SERVER_NOT_FOUND,
  type NatsServer,
  startNatsServer,
} from "../harness/nats-server.js";
import { peersRequired, startTestServer, type TestServer } from "../harness/start-test-server.js";
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
  console.warn(`pubsub-ordering: ${natsMissing}`);
}

const KEYS = 10;
const PER_KEY = 1000;
/** Nacked on first sight: about 1 in 50 messages of every key. */
const nackedOnce = (index: number) => index % 50 === 17;

for (const engine of ["embedded", "jetstream"] as const) {
  describe(`pubsub client ordering (${engine})`, { skip: engine === "jetstream" && natsMissing }, () => {
    let nats: NatsServer | undefined;
    let server: TestServer;
    before(async () => {
      if (engine === "jetstream") {
        nats = await startNatsServer();
        server = await startTestServer({ engine: "jetstream", natsUrl: nats.url });
      } else server = await startTestServer();
    });
    after(async () => {
      await server?.close();
      await nats?.stop();
    });

    test("ordering - 10,000 messages over 10 keys arrive in order per key, nacks sprinkled in", {
      timeout: 240_000,
    }, async () => {
      const pubsub = new PubSub({ projectId: "test", apiEndpoint: server.hostPort, emulatorMode: true });
      const [created] = await pubsub.createTopic(uniqueName("ordered"));
      const topic = pubsub.topic(created.name, { messageOrdering: true });
      const [subscription] = await topic.createSubscription(uniqueName("ordered-sub"), {
        enableMessageOrdering: true,
      });
      const errors: Error[] = [];
      /** Per key: every delivery's index, in arrival order. */
      const deliveries = new Map<string, number[]>();
      const nacked = new Map<string, Set<number>>();
      const acked = new Map<string, Set<number>>();
      let ackedCount = 0;
      subscription.on("error", (error: Error) => errors.push(error));
      subscription.on("message", (message: Message) => {
        const key = message.orderingKey ?? "";
        const index = Number(message.data.toString());
        deliveries.get(key)!.push(index);
        if (nackedOnce(index) && !nacked.get(key)!.has(index)) {
          nacked.get(key)!.add(index);
          message.nack();
          return;
        }
        const keyAcked = acked.get(key)!;
        if (!keyAcked.has(index)) {
          keyAcked.add(index);
          ackedCount++;
        }
        message.ack();
      });
      try {
        const publishes: Promise<string>[] = [];
        for (let key = 0; key < KEYS; key++) {
          const name = `key-${key}`;
          deliveries.set(name, []);
          nacked.set(name, new Set());
          acked.set(name, new Set());
        }
        for (let index = 0; index < PER_KEY; index++) {
          for (let key = 0; key < KEYS; key++) {
            publishes.push(topic.publishMessage({ data: Buffer.from(String(index)), orderingKey: `key-${key}` }));
          }
        }
        await Promise.all(publishes);
        await waitFor(() => ackedCount === KEYS * PER_KEY, {
          timeoutMs: 180_000,
          intervalMs: 100,
          describe: () => `${ackedCount} of ${KEYS * PER_KEY} acked`,
        });

        let unexplainedReplays = 0;
        for (const [key, indexes] of deliveries) {
          // In order, as Pub/Sub promises: each delivery is the next one; or a step back, which replays the key
          // from there in order (a nack, or at-least-once: an ack that came too late, a stream that ended); or a
          // step forward past messages already acked. Never a message whose predecessor was not delivered before it.
          let highest = -1;
          for (const [position, index] of indexes.entries()) {
            assert.ok(index <= highest + 1, `${key}: ${index} delivered before ${highest + 1} (at ${position})`);
            const previous = indexes[position - 1];
            if (previous !== undefined && index <= previous) {
              if (!nacked.get(key)!.has(index)) unexplainedReplays++;
            } else if (previous !== undefined && index > previous + 1) {
              // A step forward (in a replay, or past it) only over messages the client had acked.
              for (let skipped = previous + 1; skipped < index; skipped++) {
                assert.ok(acked.get(key)!.has(skipped), `${key}: ${index} came after ${previous}, skipping ${skipped}`);
              }
            }
            highest = Math.max(highest, index);
          }
          assert.equal(acked.get(key)!.size, PER_KEY, `${key}: every message acked`);
          for (const index of nacked.get(key)!) {
            const times = indexes.filter((value) => value === index).length;
            assert.ok(times >= 2, `${key}: nacked ${index} was redelivered`);
          }
        }
        // Replays that no nack explains (late acks, ended streams) are allowed by at-least-once delivery but
        // should be rare: shown in the log, bounded here.
        if (unexplainedReplays > 0) console.log(`${unexplainedReplays} replays without a nack`);
        assert.ok(unexplainedReplays <= KEYS, `${unexplainedReplays} replays without a nack`);
        assert.equal(
          [...nacked.values()].reduce((sum, set) => sum + set.size, 0),
          KEYS * (PER_KEY / 50),
          "the nacks were sprinkled",
        );
        assert.deepEqual(
          errors.map((error) => error.message),
          [],
        );
      } finally {
        await subscription.close();
        await delay(300);
        await pubsub.close();
      }
    });
  });
}
