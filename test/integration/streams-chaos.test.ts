// Resume under chaos: SSE, WebSocket and long-poll clients are cut at random points while events flow; each ends with exactly the published sequence.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";
import { fetchClose, SseReader } from "./streams-clients.js";

const TOTAL = 2_000;
const CUTS = 20;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const randomMs = () => 20 + Math.floor(Math.random() * 120);

describe("streams - resume under chaos", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ heartbeatMs: 1_000 });
  });
  after(async () => {
    await server.close();
  });

  it(`streams chaos - ${TOTAL} events, SSE and WebSocket cut at ${CUTS} random points each, end with exactly the published sequence`, async () => {
    const topic = `projects/p/topics/${uniqueName("chaos")}`;
    const engine = server.server.engine;
    await engine.createTopic({ name: topic });
    const url = `${server.url}/v1/projects/p/topics/${topic.split("/")[3]}/events`;

    const publishing = (async () => {
      for (let sent = 0; sent < TOTAL; sent += 10) {
        await engine.publish(
          topic,
          Array.from({ length: 10 }, (_, index) => ({
            data: Buffer.from(`e${sent + index + 1}`),
            attributes: {},
            orderingKey: "",
          })),
        );
        // Paced (~3 s in all) so every client is still receiving when its 20 cuts land, even on an idle machine.
        await sleep(15);
      }
    })();

    const sseOffsets: number[] = [];
    const sse = (async () => {
      let cuts = 0;
      while (sseOffsets.length < TOTAL) {
        const last = sseOffsets.at(-1) ?? 0;
        const reader = await SseReader.open(url, { "last-event-id": String(last) });
        assert.equal(reader.status, 200);
        const until = cuts < CUTS ? Date.now() + randomMs() : Date.now() + 30_000;
        let seen = 0;
        while (Date.now() < until && sseOffsets.length < TOTAL && !reader.ended) {
          await sleep(5);
          for (; seen < reader.events.length; seen++) {
            const event = reader.events[seen]!;
            if (event.event === "message") sseOffsets.push(Number(event.id));
          }
        }
        reader.close();
        cuts++;
      }
      return cuts;
    })();

    const wsOffsets: number[] = [];
    const ws = (async () => {
      let cuts = 0;
      while (wsOffsets.length < TOTAL) {
        const socket = new WebSocket(`${server.url.replace("http", "ws")}/v1/ws`);
        socket.on("message", (data) => {
          const frame = JSON.parse(String(data));
          if (frame.type === "message") wsOffsets.push(Number(frame.message.offset));
        });
        socket.on("error", () => undefined);
        await new Promise((resolve) => socket.once("open", resolve));
        socket.send(JSON.stringify({ type: "subscribe", id: "c", topic, from: String(wsOffsets.at(-1) ?? 0) }));
        const until = cuts < CUTS ? Date.now() + randomMs() : Date.now() + 30_000;
        while (Date.now() < until && wsOffsets.length < TOTAL) await sleep(5);
        socket.removeAllListeners("message"); // a cut client sees nothing more
        socket.terminate();
        await new Promise((resolve) =>
          socket.readyState === WebSocket.CLOSED ? resolve(null) : socket.once("close", resolve),
        );
        cuts++;
      }
      return cuts;
    })();

    const pollOffsets: number[] = [];
    const poll = (async () => {
      let cursor = "0";
      while (pollOffsets.length < TOTAL) {
        const body = await (await fetchClose(`${url}?from=${cursor}&wait=5&max=137`)).json();
        for (const message of body.messages) pollOffsets.push(Number(message.offset));
        cursor = body.nextFrom;
      }
    })();

    await publishing;
    const [sseCuts, wsCuts] = await Promise.all([sse, ws, poll]);
    const expected = Array.from({ length: TOTAL }, (_, index) => index + 1);
    assert.deepEqual(sseOffsets, expected, "SSE: every event once, in order");
    assert.deepEqual(wsOffsets, expected, "WebSocket: every event once, in order");
    assert.deepEqual(pollOffsets, expected, "long poll: every event once, in order");
    assert.ok(sseCuts >= CUTS && wsCuts >= CUTS, `cut ${sseCuts} SSE and ${wsCuts} WebSocket connections`);
  });
});
