// Browser tests of the live-stream transports with the browser's own APIs: EventSource and WebSocket resume across a
// server restart, and a Connect-protocol server stream over plain fetch.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fetchJson } from "../harness/rest-client.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { chromiumMissing, launchChromium } from "./chromium.js";

const skip = chromiumMissing();

async function publishNumbers(url: string, topic: string, numbers: number[]): Promise<void> {
  const response = await fetchJson(url, "POST", `/v1/${topic}:publish`, {
    messages: numbers.map((n) => ({ data: Buffer.from(String(n)).toString("base64"), attributes: { n: String(n) } })),
  });
  assert.equal(response.status, 200, response.text);
}

/**
 * Page code (plain JS text: tsx would rewrite a TS function with helpers the page lacks): an EventSource, which
 * reconnects by itself and sends Last-Event-ID, and a WebSocket that, like any app, reconnects on close and
 * subscribes from the last offset it saw. Offsets received go to `window.streams`.
 */
const RESUMING_CLIENTS = `function (topic) {
  const state = { sse: [], ws: [], sseOpens: 0, wsOpens: 0, stopped: false };
  window.streams = state;
  const source = new EventSource("/v1/" + topic + "/events?from=earliest");
  source.addEventListener("open", () => state.sseOpens++);
  source.addEventListener("message", (event) => state.sse.push(Number(JSON.parse(event.data).offset)));
  window.source = source;
  let last = null;
  function connect() {
    const socket = new WebSocket("ws://" + location.host + "/v1/ws");
    window.socket = socket;
    socket.addEventListener("open", () => {
      state.wsOpens++;
      socket.send(JSON.stringify({ type: "subscribe", id: "t", topic, from: last === null ? "earliest" : String(last) }));
    });
    socket.addEventListener("message", (event) => {
      const frame = JSON.parse(event.data);
      if (frame.type !== "message") return;
      last = Number(frame.message.offset);
      state.ws.push(last);
    });
    socket.addEventListener("close", () => {
      if (!state.stopped) setTimeout(connect, 250);
    });
  }
  connect();
}`;

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, index) => from + index);

// One browser per test, closed before its server: the browser's idle keep-alive sockets would otherwise count as leaks.
describe("live streams in a browser", { skip }, () => {
  test("browser streams - EventSource and WebSocket resume after the server restarts, no gap and no duplicate", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "streamgate-browser-"));
    let server: TestServer = await startTestServer({ dataDir });
    const chromium = await launchChromium();
    const page = await chromium.context.newPage();
    try {
      const topic = "projects/web/topics/ticks";
      assert.equal((await fetchJson(server.url, "PUT", `/v1/${topic}`, {})).status, 200);
      await page.goto(`${server.url}/healthz`);
      await page.evaluate(`(${RESUMING_CLIENTS})(${JSON.stringify(topic)})`);
      const received = (count: number) =>
        page.waitForFunction(
          (count) => {
            const { sse, ws } = (window as unknown as { streams: { sse: number[]; ws: number[] } }).streams;
            return sse.length >= count && ws.length >= count;
          },
          count,
          { timeout: 15_000 },
        );

      await publishNumbers(server.url, topic, range(1, 5));
      await received(5);

      // The forced disconnect: the server goes away (every connection cut) and comes back on the same port and data.
      const port = server.port;
      await server.close({ graceMs: 0, allowOpenConnections: true, keepDataDir: true });
      server = await startTestServer({ dataDir, port });
      // Published while both clients are still disconnected: they must fetch these from the log when they resume.
      await publishNumbers(server.url, topic, range(6, 10));
      await received(10);
      await publishNumbers(server.url, topic, range(11, 15));
      await received(15);
      await new Promise((resolve) => setTimeout(resolve, 300)); // a duplicate would arrive now

      const result = await page.evaluate(() => {
        const scope = window as unknown as {
          streams: { sse: number[]; ws: number[]; sseOpens: number; wsOpens: number; stopped: boolean };
          source: EventSource;
          socket: WebSocket;
        };
        scope.streams.stopped = true;
        scope.source.close();
        scope.socket.close();
        return scope.streams;
      });
      assert.deepEqual(result.sse, range(1, 15));
      assert.deepEqual(result.ws, range(1, 15));
      assert.ok(result.sseOpens >= 2, `EventSource reconnected (${result.sseOpens} opens)`);
      assert.ok(result.wsOpens >= 2, `WebSocket reconnected (${result.wsOpens} opens)`);
    } finally {
      await chromium.close();
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test("browser streams - a Connect-protocol Subscribe over fetch streams stored and live events", async () => {
    const server = await startTestServer();
    const chromium = await launchChromium();
    const page = await chromium.context.newPage();
    try {
      const topic = "projects/web/topics/connect";
      assert.equal((await fetchJson(server.url, "PUT", `/v1/${topic}`, {})).status, 200);
      await publishNumbers(server.url, topic, range(1, 3));
      await page.goto(`${server.url}/healthz`);
      const call = page.evaluate(async (topic) => {
        // Connect streaming: each message is an envelope (1 flag byte, 4-byte big-endian length, JSON);
        // flag 0x02 marks the end-of-stream envelope that carries an error, if any.
        const json = new TextEncoder().encode(JSON.stringify({ topic, position: { earliest: true } }));
        const body = new Uint8Array(5 + json.length);
        new DataView(body.buffer).setUint32(1, json.length);
        body.set(json, 5);
        const abort = new AbortController();
        const response = await fetch("/streamgate.v1.Events/Subscribe", {
          method: "POST",
          headers: { "content-type": "application/connect+json", "connect-protocol-version": "1" },
          body,
          signal: abort.signal,
        });
        const contentType = response.headers.get("content-type");
        const events: Array<{ offset: string; data: string; attributes: Record<string, string> }> = [];
        const progress = window as unknown as { connectReceived: number };
        progress.connectReceived = 0;
        const reader = (response.body as ReadableStream<Uint8Array>).getReader();
        let buffer = new Uint8Array(0);
        while (events.length < 6) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`stream ended after ${events.length} events`);
          const joined = new Uint8Array(buffer.length + value.length);
          joined.set(buffer);
          joined.set(value, buffer.length);
          buffer = joined;
          while (buffer.length >= 5) {
            const view = new DataView(buffer.buffer, buffer.byteOffset);
            const length = view.getUint32(1);
            if (buffer.length < 5 + length) break;
            const flags = buffer[0] as number;
            const message = JSON.parse(new TextDecoder().decode(buffer.subarray(5, 5 + length)));
            buffer = buffer.slice(5 + length);
            if ((flags & 0x02) !== 0) throw new Error(`end of stream: ${JSON.stringify(message)}`);
            if (message.message !== undefined) events.push(message.message);
            progress.connectReceived = events.length;
          }
        }
        abort.abort();
        return { status: response.status, contentType, events };
      }, topic);
      await page.waitForFunction(() => (window as unknown as { connectReceived?: number }).connectReceived === 3);
      await publishNumbers(server.url, topic, range(4, 6));
      const result = await call;
      assert.equal(result.status, 200);
      assert.equal(result.contentType, "application/connect+json");
      assert.deepEqual(
        result.events.map((event) => event.offset),
        range(1, 6).map(String),
      );
      assert.deepEqual(
        result.events.map((event) => atob(event.data)),
        range(1, 6).map(String),
      );
      assert.equal(result.events[5]?.attributes.n, "6");
    } finally {
      await chromium.close();
      await server.close();
    }
  });
});
