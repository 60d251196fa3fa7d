// SIGTERM drain with the official client: its StreamingPull is ended, it reconnects to the restarted server, nothing is lost.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { type ClientConfig, PubSub, type Subscription } from "@google-cloud/pubsub";
import { freePort } from "../harness/free-port.js";
import { type SpawnedServer, spawnServer } from "../harness/spawn-server.js";

describe("drain", () => {
  it("drain - the official subscriber survives a SIGTERM restart without losing messages", {
    timeout: 240_000,
  }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "streamgate-drain-"));
    const port = await freePort();
    const args = ["--data-dir", dataDir, "--port", String(port), "--drain-ms", "2000"];
    let server: SpawnedServer = await spawnServer(args);
    // grpc-js backs off reconnects up to 120 s by default; while the server restarts (slowly on a loaded
    // machine: seconds) that backoff grows, and a channel whose stream was cut can stay without a
    // connection for a while (grpc-js "No connection established. Last error: null"). A deployment
    // restarting servers sets the same bounded backoff; the client library itself is unchanged.
    const channelOptions = { "grpc.initial_reconnect_backoff_ms": 250, "grpc.max_reconnect_backoff_ms": 2_000 };
    const pubsub = new PubSub({
      projectId: "drain",
      apiEndpoint: `127.0.0.1:${port}`,
      emulatorMode: true,
      ...channelOptions,
    } as ClientConfig);
    let subscription: Subscription | undefined;
    try {
      const [topic] = await pubsub.createTopic("drain-topic");
      [subscription] = await topic.createSubscription("drain-sub", { ackDeadlineSeconds: 10 });
      const received = new Set<string>();
      subscription.on("message", (message) => {
        received.add(message.data.toString());
        message.ack();
      });
      subscription.on("error", () => undefined);
      const published: string[] = [];
      const publishSome = async (from: number, count: number) => {
        for (let i = from; i < from + count; i++) {
          const payload = `m-${i}`;
          await topic.publishMessage({ data: Buffer.from(payload) });
          published.push(payload);
        }
      };
      await publishSome(0, 100);
      const exit = await server.kill("SIGTERM");
      assert.equal(exit.code, 0, `drain exit: ${server.stderr()}`);
      server = await spawnServer(args);
      await publishSome(100, 100);
      const deadline = Date.now() + 60_000;
      while (received.size < published.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      const missing = published.filter((payload) => !received.has(payload));
      assert.deepEqual(missing, [], `lost ${missing.length} messages across the restart`);
    } finally {
      // An open subscription keeps retrying its StreamingPull and would hold the test process alive.
      await subscription?.close().catch(() => undefined);
      await pubsub.close();
      await server.kill("SIGKILL");
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
