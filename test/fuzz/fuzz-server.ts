// The server a fuzz family attacks, and the oracles checked between and after batches: alive, serving, store sound.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { request } from "node:http";
import { createEmbeddedEngine } from "../../src/engines/embedded/index.js";
import { fetchJson, type Json } from "../harness/rest-client.js";
import { startTestServer, type TestServer, type TestServerOptions } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";

/** Small limits, so "too large" paths are reached with small inputs. */
export const FUZZ_LIMITS = {
  maxRequestBytes: 64 * 1024,
  maxMessageBytes: 16 * 1024,
  maxWebSocketPayloadBytes: 64 * 1024,
};

export interface FuzzServer {
  server: TestServer;
  project: string;
  /** A topic with a few messages (history for `from=earliest`) and a subscription on it. */
  topic: string;
  subscription: string;
  /** GET /healthz answers 200 within 5 s (the same server, still up). */
  assertAlive(after: string): Promise<void>;
  /**
   * Publishes and pulls one message over REST, closes the server, reopens its SQLite file with the
   * embedded engine and requires an empty integrity report.
   */
  finish(): Promise<void>;
}

export async function startFuzzServer(options: TestServerOptions = {}): Promise<FuzzServer> {
  const server = await startTestServer({ ...FUZZ_LIMITS, ...options });
  const project = uniqueName("fuzz");
  const topic = `projects/${project}/topics/events`;
  const subscription = `projects/${project}/subscriptions/canary`;
  const ok = async (method: string, path: string, body?: unknown): Promise<Json> => {
    const response = await fetchJson(server.url, method, path, body, { timeoutMs: 10_000 });
    assert.equal(response.status, 200, `${method} ${path}: ${response.text}`);
    return response.body as Json;
  };
  await ok("PUT", `/v1/${topic}`, {});
  await ok("PUT", `/v1/${subscription}`, { topic });
  await ok("POST", `/v1/${topic}:publish`, {
    messages: [1, 2, 3].map((n) => ({
      data: Buffer.from(`seed-${n}`).toString("base64"),
      attributes: { n: String(n) },
    })),
  });
  // A topic and subscription in a project no generator names: the fuzzers cannot delete or seek them.
  const canaryProject = uniqueName("canary");
  const canaryTopic = `projects/${canaryProject}/topics/canary`;
  const canarySubscription = `projects/${canaryProject}/subscriptions/canary`;
  await ok("PUT", `/v1/${canaryTopic}`, {});
  await ok("PUT", `/v1/${canarySubscription}`, { topic: canaryTopic });
  let finished = false;

  return {
    server,
    project,
    topic,
    subscription,
    async assertAlive(after) {
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(`${server.url}/healthz`, { headers: { connection: "close" }, timeout: 5_000 }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        });
        req.on("timeout", () => req.destroy(new Error("GET /healthz timed out after 5 s")));
        req.on("error", reject);
        req.end();
      }).catch((error: unknown) => {
        throw new Error(`after ${after}: the server no longer answers /healthz (${String(error)})`);
      });
      assert.equal(status, 200, `after ${after}: /healthz answered ${status}`);
    },
    async finish() {
      if (finished) return;
      finished = true;
      try {
        const text = `canary-${Date.now()}`;
        await ok("POST", `/v1/${canaryTopic}:publish`, { messages: [{ data: Buffer.from(text).toString("base64") }] });
        const pulled = await ok("POST", `/v1/${canarySubscription}:pull`, {
          maxMessages: 10,
          returnImmediately: false,
        });
        const received = (pulled.receivedMessages as { ackId: string; message: { data: string } }[] | undefined) ?? [];
        const texts = received.map((r) => Buffer.from(r.message.data, "base64").toString());
        assert.deepEqual(texts, [text], "a valid publish and pull after fuzzing");
        await ok("POST", `/v1/${canarySubscription}:acknowledge`, { ackIds: received.map((r) => r.ackId) });
      } finally {
        await server.close({ keepDataDir: true, graceMs: 5_000 });
      }
      const engine = await createEmbeddedEngine({ dataDir: server.dataDir });
      try {
        assert.deepEqual(await engine.checkIntegrity(), [], "the store fails its integrity check after fuzzing");
      } finally {
        await engine.close();
        rmSync(server.dataDir, { recursive: true, force: true });
      }
    },
  };
}
