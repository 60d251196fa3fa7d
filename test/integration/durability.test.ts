// Durability: kill -9 during publishing; every acknowledged publish survives exactly once and subscriptions continue.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { type SpawnedServer, spawnServer } from "../harness/spawn-server.js";

const project = "durability";
const topic = `projects/${project}/topics/events`;
const subscription = `projects/${project}/subscriptions/all`;

async function rest(
  server: SpawnedServer,
  method: string,
  path: string,
  body?: unknown,
): Promise<Record<string, unknown>> {
  const call = (async () => {
    const response = await fetch(`${server.url}/v1/${path}`, {
      method,
      headers: { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const json = (await response.json()) as Record<string, unknown>;
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
    return json;
  })();
  // Node 20's fetch can hang on a connection cut mid-body despite the abort signal: bound the whole call.
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${method} ${path}: no answer in 12 s`)), 12_000);
  });
  try {
    return await Promise.race([call, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe("durability", () => {
  it("durability - acknowledged publishes survive repeated kill -9 exactly once; the subscription continues", {
    timeout: 300_000,
  }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "streamgate-durability-"));
    let server = await spawnServer(["--data-dir", dataDir]);
    let publishing = true;
    try {
      await rest(server, "PUT", topic, {});
      await rest(server, "PUT", subscription, { topic, ackDeadlineSeconds: 60 });

      const total = 5_000;
      const batchSize = 25;
      const acknowledged = new Map<string, string>(); // payload -> messageId
      let next = 0;
      let kills = 0;
      let killedMidStream = 0;

      const publisher = (async () => {
        while (publishing && next < total) {
          const target = server;
          const payloads = Array.from({ length: Math.min(batchSize, total - next) }, (_, i) => `seq-${next + i}`);
          try {
            const result = await rest(target, "POST", `${topic}:publish`, {
              messages: payloads.map((payload) => ({ data: Buffer.from(payload).toString("base64") })),
            });
            next += payloads.length;
            const ids = result.messageIds as string[];
            assert.equal(ids.length, payloads.length);
            for (const [i, payload] of payloads.entries()) acknowledged.set(payload, ids[i]!);
            await new Promise((resolve) => setTimeout(resolve, 10));
          } catch (error) {
            const code = (error as { cause?: { code?: string } }).cause?.code;
            // Refused: the batch never reached a server, so it is sent again. Anything else (the server
            // died mid-request): not acknowledged, may or may not be stored, never retried here.
            if (code !== "ECONNREFUSED") next += payloads.length;
            const dead = () => target.child.exitCode !== null || target.child.signalCode !== null;
            await new Promise((resolve) => setTimeout(resolve, 20));
            while (publishing && server === target && dead()) await new Promise((resolve) => setTimeout(resolve, 10));
          }
        }
      })();

      // Five kills at random moments, each 50-400 ms into a server's life; the publisher is paced
      // (one batch per ~10 ms) so it needs more uptime than that and every kill lands mid-stream.
      while (kills < 5) {
        await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 350));
        if (next < total) killedMidStream += 1;
        await server.kill("SIGKILL");
        kills += 1;
        server = await spawnServer(["--data-dir", dataDir]);
      }
      await publisher;
      publishing = false;
      assert.ok(killedMidStream >= 3, `expected at least 3 kills while publishing, got ${killedMidStream}`);
      assert.ok(acknowledged.size >= 500, `too few acknowledged publishes to judge: ${acknowledged.size}`);

      // One more kill after the last acknowledgement, then read everything through the old subscription.
      await server.kill("SIGKILL");
      server = await spawnServer(["--data-dir", dataDir]);
      const seen = new Map<string, string>(); // messageId -> payload
      const payloadIds = new Map<string, Set<string>>();
      for (let empty = 0; empty < 3; ) {
        const result = await rest(server, "POST", `${subscription}:pull`, {
          maxMessages: 1000,
          returnImmediately: true,
        });
        const received = (result.receivedMessages ?? []) as {
          ackId: string;
          message: { data: string; messageId: string };
        }[];
        if (received.length === 0) {
          empty += 1;
          continue;
        }
        for (const { message } of received) {
          const payload = Buffer.from(message.data, "base64").toString();
          seen.set(message.messageId, payload);
          const ids = payloadIds.get(payload) ?? new Set<string>();
          ids.add(message.messageId);
          payloadIds.set(payload, ids);
        }
        await rest(server, "POST", `${subscription}:acknowledge`, { ackIds: received.map((r) => r.ackId) });
      }
      for (const [payload, id] of acknowledged) {
        assert.equal(seen.get(id), payload, `acknowledged ${payload} (id ${id}) missing or changed after kill -9`);
      }
      for (const [payload, ids] of payloadIds) {
        assert.equal(ids.size, 1, `${payload} stored ${ids.size} times: ${[...ids].join(", ")}`);
      }
    } finally {
      publishing = false;
      await server.kill("SIGKILL");
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
