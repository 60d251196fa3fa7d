// Backpressure: a WebSocket client that stops reading is closed 1013 with its resume offset; kept memory stays bounded; others get everything.
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import WebSocket from "ws";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";

const MESSAGES = 20_000;
const MAX_KEPT_GROWTH_MB = 16;

setFlagsFromString("--expose-gc");
const collectGarbage = runInNewContext("gc") as () => void;

/**
 * JS heap and buffers still referenced after a full collection. V8 frees dead ArrayBuffers' backing stores on a
 * concurrent sweeper after gc() returns: read right away, `external` still counted ~10 MB of freed WebSocket pages
 * (one 150 kB buffer per page). A second collection after a timer turn reads what is really kept.
 */
async function keptBytes(): Promise<number> {
  collectGarbage();
  await new Promise((resolve) => setTimeout(resolve, 10));
  collectGarbage();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.external;
}
const PAYLOAD = Buffer.alloc(1000, "p"); // 20,000 × 1,000 B = 20 MB

describe("streams - slow consumer", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ heartbeatMs: 30_000 });
  });
  after(async () => {
    await server.close();
  });

  it("streams slow consumer - a paused WebSocket client is closed 1013 with a resume offset while another client receives all 20 MB", async () => {
    const topic = `projects/p/topics/${uniqueName("slow")}`;
    await server.server.engine.createTopic({ name: topic });
    const wsUrl = `${server.url.replace("http", "ws")}/v1/ws`;
    const connect = async (onFrame: (frame: { type: string; message?: { offset: string } }) => void) => {
      const socket = new WebSocket(wsUrl);
      socket.on("message", (data) => onFrame(JSON.parse(String(data))));
      await new Promise((resolve) => socket.once("open", resolve));
      return socket;
    };
    let slowLast = 0;
    const slow = await connect((frame) => {
      if (frame.type === "message") slowLast = Number(frame.message!.offset);
    });
    let fastCount = 0;
    let fastInOrder = true;
    const fast = await connect((frame) => {
      if (frame.type !== "message") return;
      fastCount++;
      if (Number(frame.message!.offset) !== fastCount) fastInOrder = false;
    });
    slow.send(JSON.stringify({ type: "subscribe", id: "s", topic, from: "latest" }));
    fast.send(JSON.stringify({ type: "subscribe", id: "f", topic, from: "latest" }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    (slow as unknown as { _socket: Socket })._socket.pause();
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      slow.once("close", (code, reason) => resolve({ code, reason: String(reason) })),
    );

    const keptBefore = await keptBytes();
    let keptPeak = keptBefore;
    for (let sent = 0; sent < MESSAGES; sent += 100) {
      await server.server.engine.publish(
        topic,
        Array.from({ length: 100 }, () => ({ data: PAYLOAD, attributes: {}, orderingKey: "" })),
      );
      if (sent % 2_000 === 0) {
        await new Promise((resolve) => setImmediate(resolve));
        keptPeak = Math.max(keptPeak, await keptBytes());
      }
    }
    const deadline = Date.now() + 30_000;
    while (fastCount < MESSAGES && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    keptPeak = Math.max(keptPeak, await keptBytes());
    assert.equal(fastCount, MESSAGES, "the other client received everything");
    assert.ok(fastInOrder, "in order");
    const growthMb = (keptPeak - keptBefore) / 1e6;
    // Kept memory (JS heap + buffers after a full GC), not RSS, whose garbage piles up by the machine's load. Allowed:
    // the hub's 1 MiB and the socket's 1 MiB for each client, and pages in flight; the 20 MB published (27 MB as
    // frames) would show in full if the paused client were buffered.
    console.log(`kept memory grew ${growthMb.toFixed(1)} MB while 20 MB was published`);
    assert.ok(growthMb < MAX_KEPT_GROWTH_MB, `kept memory grew ${growthMb.toFixed(1)} MB`);

    (slow as unknown as { _socket: Socket })._socket.resume();
    const { code, reason } = await closed;
    assert.equal(code, 1013);
    const match = /^slow consumer: resume from (\d+)$/.exec(reason);
    assert.ok(match, reason);
    assert.equal(Number(match[1]), slowLast, "the reason names the last offset the client received");
    assert.ok(slowLast < MESSAGES);

    // It resumes from there and gets the rest, no gap, no duplicate.
    let next = slowLast + 1;
    let resumedInOrder = true;
    const resumed = await connect((frame) => {
      if (frame.type !== "message") return;
      if (Number(frame.message!.offset) !== next) resumedInOrder = false;
      next++;
    });
    resumed.send(JSON.stringify({ type: "subscribe", id: "r", topic, from: String(slowLast) }));
    const resumeDeadline = Date.now() + 30_000;
    while (next <= MESSAGES && Date.now() < resumeDeadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(next, MESSAGES + 1);
    assert.ok(resumedInOrder);
    console.log(`rss growth ${growthMb.toFixed(1)} MB; slow client dropped after offset ${slowLast}`);
    for (const socket of [fast, resumed]) socket.close();
    await Promise.all([fast, resumed].map((socket) => new Promise((resolve) => socket.once("close", resolve))));
  });
});
