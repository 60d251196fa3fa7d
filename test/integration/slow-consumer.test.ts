// Slow consumers: a WebSocket and an SSE client stop reading while 50 MB (200 MB with
// STREAMGATE_SLOW_FULL=1) is published to a topic. Each is dropped with a reason naming where to resume
// (WebSocket close 1013, SSE a final `event: error` or a cut), the memory the process keeps stays bounded, and
// 100 other clients (50 SSE, 50 WebSocket) on the same topic receive every event, in order.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { openSse, openWebSocket, type WireStream } from "../../bench/fanout/wire-clients.js";
import type { EmbeddedEngine } from "../../src/engines/embedded/index.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";

const FULL = process.env.STREAMGATE_SLOW_FULL === "1";
const TOTAL_BYTES = (FULL ? 200 : 50) * 1024 * 1024;
const MESSAGE_BYTES = 16 * 1024;
const BATCH = 8;
/** The healthy clients may lag the publisher by at most this many events (512 KiB): they keep up, they are not slow. */
const WINDOW = 32;
const HEALTHY_SSE = 50;
const HEALTHY_WS = 50;
/**
 * Most the memory kept after a full garbage collection (JS heap + buffers) may grow while publishing. By design
 * the healthy clients may lag by WINDOW events: 100 × 32 × ~22 KB (16 KiB as base64 JSON) ≈ 70 MB may sit in
 * write buffers, plus 1 MiB per slow client (the hub's limit); 114 MiB was measured. The two paused clients
 * alone would add 2 × 50 MB or more if the server queued for them without bound.
 * Kept memory, not RSS: how much garbage V8 lets pile up before collecting differs between versions (Node 24's RSS
 * peak here is ~150 MiB above Node 20's for the same work), and garbage is not what this test is about.
 */
const MAX_KEPT_GROWTH = 160 * 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

setFlagsFromString("--expose-gc");
const collectGarbage = runInNewContext("gc") as () => void;

/** JS heap and buffers still referenced after a full collection. */
function keptBytes(): number {
  collectGarbage();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.external;
}

function rssBytes(): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  return Number(match?.[1] ?? Number.NaN) * 1024;
}

describe("streams - slow consumer", { timeout: FULL ? 600_000 : 90_000 }, () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server.close({ allowOpenConnections: true });
  });

  it(`streams slow consumer - WS 1013 and SSE error/cut with resume offset while ${TOTAL_BYTES / 1048576} MB is published; 100 others get everything in order; RSS bounded`, async () => {
    const engine = server.server.engine as EmbeddedEngine;
    const topic = `projects/p/topics/${uniqueName("slow")}`;
    await engine.createTopic({ name: topic, retentionBytes: null });
    const host = "127.0.0.1";
    const { port } = server;
    const eventsPath = `/v1/${topic}/events?from=latest`;
    const subscribe = JSON.stringify({ type: "subscribe", id: "s", topic, from: "latest" });

    // 100 healthy clients that check every offset arrives once, in order (offsets start at 1).
    const expected: number[] = [];
    const disorder: string[] = [];
    const healthy: WireStream[] = [];
    const check = (index: number, offset: number) => {
      if (offset !== expected[index]! + 1 && disorder.length < 5)
        disorder.push(`client ${index}: offset ${offset} after ${expected[index]}`);
      expected[index] = offset;
    };
    const healthyClose: string[] = [];
    for (let index = 0; index < HEALTHY_SSE + HEALTHY_WS; index++) {
      expected.push(0);
      const onClose = (code: number, reason: string) => healthyClose.push(`client ${index}: ${code} ${reason}`);
      if (index < HEALTHY_SSE)
        healthy.push(
          await openSse({ host, port, path: eventsPath, handlers: { onOffset: (o) => check(index, o), onClose } }),
        );
      else
        healthy.push(
          await openWebSocket({
            host,
            port,
            path: "/v1/ws",
            parse: "head",
            subscribeText: subscribe,
            awaitText: '"subscribed"',
            handlers: {
              onMessage: (head) => {
                const at = head!.indexOf('"offset":"');
                check(index, Number(head!.slice(at + 10, head!.indexOf('"', at + 10))));
              },
              onClose,
            },
          }),
        );
    }

    // The slow ones: subscribed, then they stop reading (their sockets are paused).
    let wsMessages = 0;
    let wsLastOffset = 0;
    let wsClose: { code: number; reason: string } | null = null;
    const slowWs = await openWebSocket({
      host,
      port,
      path: "/v1/ws",
      parse: "head",
      subscribeText: subscribe,
      awaitText: '"subscribed"',
      handlers: {
        onMessage: (head) => {
          wsMessages++;
          const at = head!.indexOf('"offset":"');
          wsLastOffset = Number(head!.slice(at + 10, head!.indexOf('"', at + 10)));
        },
        onClose: (code, reason) => {
          wsClose = { code, reason };
        },
      },
    });
    let sseError: string | null = null;
    let sseClosed = false;
    let sseMessages = 0;
    const slowSse = await openSse({
      host,
      port,
      path: eventsPath,
      parse: true,
      handlers: {
        onMessage: () => {
          sseMessages++;
        },
        onSseError: (data) => {
          sseError = data;
        },
        onClose: () => {
          sseClosed = true;
        },
      },
    });
    // Both subscriptions exist in the hub before anything is published.
    const subscribers = async (): Promise<number> => {
      const response = await fetch(`${server.url}/v1/dashboard/overview`, { headers: { connection: "close" } });
      const body = (await response.json()) as { streams: { subscribers: number } };
      return body.streams.subscribers;
    };
    for (let tries = 0; (await subscribers()) < 102 && tries < 100; tries++) await sleep(50);
    assert.equal(await subscribers(), 102);
    slowWs.socket.pause();
    slowSse.socket.pause();

    const baseline = rssBytes();
    let peak = baseline;
    const keptBaseline = keptBytes();
    let keptPeak = keptBaseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssBytes());
    }, 50);
    const minDelivered = () => Math.min(...expected);
    const data = Buffer.alloc(MESSAGE_BYTES, 0x61);
    const total = Math.ceil(TOTAL_BYTES / MESSAGE_BYTES);
    let published = 0;
    let resumedAt = -1;
    const started = Date.now();
    try {
      while (published < total) {
        const stalled = Date.now();
        while (published - minDelivered() > WINDOW - BATCH) {
          if (Date.now() - stalled > 20_000)
            assert.fail(`healthy clients stalled at ${minDelivered()} of ${published} (closes: ${healthyClose})`);
          await sleep(1);
        }
        const count = Math.min(BATCH, total - published);
        await engine.publish(
          topic,
          Array.from({ length: count }, () => ({ data, attributes: {}, orderingKey: "" })),
        );
        published += count;
        if (published % 256 === 0) keptPeak = Math.max(keptPeak, keptBytes());
        // Once the hub has let both slow ones go, they read again and must find their reason.
        if (resumedAt < 0 && published % 256 === 0 && (await subscribers()) === 100) {
          resumedAt = published;
          slowWs.socket.resume();
          slowSse.socket.resume();
        }
      }
      const deadline = Date.now() + 20_000;
      while (minDelivered() < published && Date.now() < deadline) await sleep(10);
    } finally {
      clearInterval(sampler);
    }
    const seconds = (Date.now() - started) / 1000;
    peak = Math.max(peak, rssBytes());
    const growth = peak - baseline;
    const keptGrowth = keptPeak - keptBaseline;
    const mb = (bytes: number) => Math.round(bytes / 104857.6) / 10;
    console.log(
      `published ${published} × ${MESSAGE_BYTES} B = ${mb(published * MESSAGE_BYTES)} MiB in ${seconds.toFixed(1)} s; ` +
        `RSS baseline ${mb(baseline)} MiB, peak ${mb(peak)} MiB (growth ${mb(growth)} MiB, process incl. the 102 clients); ` +
        `kept after GC ${mb(keptBaseline)} → peak ${mb(keptPeak)} MiB (growth ${mb(keptGrowth)} MiB); ` +
        `slow WS got ${wsMessages} events then ${JSON.stringify(wsClose)}; slow SSE got ${sseMessages} then ` +
        `${sseError ?? (sseClosed ? "a cut" : "nothing")}; slow ones resumed reading after ${resumedAt} events`,
    );

    assert.deepEqual(disorder, []);
    assert.deepEqual(healthyClose, []);
    assert.equal(minDelivered(), published, "every healthy client got every event");
    assert.ok(resumedAt > 0, "the hub dropped both slow subscriptions while publishing");
    assert.ok(keptGrowth < MAX_KEPT_GROWTH, `kept memory grew ${mb(keptGrowth)} MiB (limit ${mb(MAX_KEPT_GROWTH)})`);

    // The slow WebSocket drains what was queued, then gets 1013 with the offset to resume from.
    const waitFor = async (condition: () => boolean, what: string) => {
      const deadline = Date.now() + 30_000;
      while (!condition()) {
        if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
        await sleep(20);
      }
    };
    await waitFor(() => wsClose !== null, "the slow WebSocket to close");
    const closed = wsClose as unknown as { code: number; reason: string };
    assert.equal(closed.code, 1013, `close ${closed.code} ${closed.reason}`);
    const resume = /resume from (\d+)/.exec(closed.reason);
    assert.ok(resume !== null, `reason names the offset: ${closed.reason}`);
    assert.equal(Number(resume[1]), wsLastOffset, "resume offset = last offset the client received");
    assert.ok(wsMessages < published, "it was dropped, not served everything");

    // The slow SSE client: a final `event: error` naming resumeFrom, or the connection is cut.
    await waitFor(() => sseError !== null || sseClosed, "the slow SSE stream to end");
    if (sseError !== null) {
      const body = JSON.parse(sseError) as { reason: string; resumeFrom: string };
      assert.equal(body.reason, "SLOW_CONSUMER");
      assert.equal(Number(body.resumeFrom), sseMessages, "resumeFrom = last offset received");
    }
    for (const stream of [...healthy, slowWs, slowSse]) stream.destroy();
  });
});
