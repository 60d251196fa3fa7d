// SSE bytes on the wire against a real server: HTTP/1.1 chunk framing parsed strictly (pages written straight to the
// socket), HTTP/1.0 without chunking, HTTP/2 through the response; every stream ends on server shutdown.
import assert from "node:assert/strict";
import { connect as connectHttp2 } from "node:http2";
import { connect, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import type { EmbeddedEngine } from "../../src/engines/embedded/index.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";

/** A raw TCP SSE client: the whole response as bytes, the head split off. */
class RawStream {
  bytes: Buffer = Buffer.alloc(0);
  ended = false;
  private readonly socket: Socket;
  private readonly waiters = new Set<() => void>();

  constructor(port: number, path: string, version: "1.0" | "1.1") {
    this.socket = connect({ host: "127.0.0.1", port });
    this.socket.write(`GET ${path} HTTP/${version}\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`);
    this.socket.on("data", (chunk: Buffer) => {
      this.bytes = Buffer.concat([this.bytes, chunk]);
      for (const wake of this.waiters) wake();
    });
    this.socket.on("close", () => {
      this.ended = true;
      for (const wake of this.waiters) wake();
    });
    this.socket.on("error", () => undefined);
  }

  get head(): string {
    const end = this.bytes.indexOf("\r\n\r\n");
    return end < 0 ? "" : this.bytes.toString("latin1", 0, end);
  }

  get body(): Buffer {
    const end = this.bytes.indexOf("\r\n\r\n");
    return end < 0 ? Buffer.alloc(0) : this.bytes.subarray(end + 4);
  }

  async until(done: () => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline)
        throw new Error(
          `timed out; received ${this.bytes.length} bytes: ${JSON.stringify(this.bytes.toString().slice(-300))}`,
        );
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.waiters.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(wake, 100);
        this.waiters.add(wake);
      });
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Strict chunked decoding: every chunk is `<hex>\r\n<exactly that many bytes>\r\n`; `complete` once `0\r\n\r\n` came. */
function dechunk(body: Buffer): { data: Buffer; complete: boolean } {
  const parts: Buffer[] = [];
  let at = 0;
  while (at < body.length) {
    const lineEnd = body.indexOf("\r\n", at);
    if (lineEnd < 0) break;
    const sizeText = body.toString("latin1", at, lineEnd);
    assert.match(sizeText, /^[0-9a-f]+$/, `chunk size line at byte ${at}: ${JSON.stringify(sizeText)}`);
    const size = Number.parseInt(sizeText, 16);
    if (size === 0) {
      assert.equal(body.toString("latin1", lineEnd + 2), "\r\n", "nothing after the last chunk but its CRLF");
      return { data: Buffer.concat(parts), complete: true };
    }
    const start = lineEnd + 2;
    if (body.length < start + size + 2) break;
    assert.equal(body.toString("latin1", start + size, start + size + 2), "\r\n", `chunk at byte ${at} ends in CRLF`);
    parts.push(body.subarray(start, start + size));
    at = start + size + 2;
  }
  return { data: Buffer.concat(parts), complete: false };
}

interface SseEvent {
  id: string;
  event: string;
  data: string;
}

/** Complete SSE events of `text` (comments and `retry:` counted apart). */
function parseSse(text: string): { events: SseEvent[]; comments: number; retry: string } {
  const events: SseEvent[] = [];
  let comments = 0;
  let retry = "";
  const blocks = text.split("\n\n");
  blocks.pop(); // an incomplete tail
  for (const block of blocks) {
    const event: SseEvent = { id: "", event: "", data: "" };
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) comments++;
      else if (line.startsWith("retry: ")) retry = line.slice(7);
      else if (line.startsWith("id: ")) event.id = line.slice(4);
      else if (line.startsWith("event: ")) event.event = line.slice(7);
      else if (line.startsWith("data: ")) event.data = line.slice(6);
    }
    if (event.event !== "") events.push(event);
  }
  return { events, comments, retry };
}

const texts = ["one", "héllo ☃ wörld", "x".repeat(70_000), "👋", "five", "six", "seven"];
const payloads = (events: SseEvent[]) =>
  events
    .filter((event) => event.event === "message")
    .map((event) => Buffer.from(JSON.parse(event.data).data as string, "base64").toString("utf8"));

describe("streams - SSE on the wire", () => {
  let server: TestServer;
  let engine: EmbeddedEngine;
  let closed = false;
  const topic = "projects/p/topics/wire";
  before(async () => {
    server = await startTestServer({ heartbeatMs: 200 });
    engine = server.server.baseEngine as EmbeddedEngine;
    await engine.createTopic({ name: topic, retentionBytes: null });
  });
  after(async () => {
    if (!closed) await server.close({ allowOpenConnections: true });
  });

  it("sse wire - HTTP/1.1 chunks, HTTP/1.0 raw bytes and HTTP/2 carry the same events, heartbeats, and end on shutdown", async () => {
    const path = `/v1/${topic}/events?from=latest`;
    const http11 = new RawStream(server.port, path, "1.1");
    const http10 = new RawStream(server.port, path, "1.0");
    const session = connectHttp2(server.url);
    session.on("error", () => undefined);
    const h2 = session.request({ ":path": path, accept: "text/event-stream" });
    let h2Text = "";
    let h2Ended = false;
    h2.setEncoding("utf8");
    h2.on("data", (chunk: string) => {
      h2Text += chunk;
    });
    h2.on("end", () => {
      h2Ended = true;
    });
    h2.on("error", () => undefined);
    try {
      await http11.until(() => dechunk(http11.body).data.includes("retry: 2000\n\n"));
      await http10.until(() => http10.body.includes("retry: 2000\n\n"));
      assert.match(http11.head, /^HTTP\/1\.1 200 /);
      assert.match(http11.head, /\r\ntransfer-encoding: chunked(\r\n|$)/i);
      assert.match(http10.head, /^HTTP\/1\.1 200 /);
      assert.doesNotMatch(http10.head, /transfer-encoding/i);
      // One message, a batch of four (one page), two more: pages of one and of several events, multi-byte text, and a
      // chunk larger than 64 KiB (five hex digits).
      await engine.publish(topic, [{ data: Buffer.from(texts[0]!), attributes: {}, orderingKey: "" }]);
      await engine.publish(
        topic,
        texts.slice(1, 5).map((text) => ({ data: Buffer.from(text), attributes: {}, orderingKey: "" })),
      );
      for (const text of texts.slice(5))
        await engine.publish(topic, [{ data: Buffer.from(text), attributes: {}, orderingKey: "" }]);
      const http11Events = () => parseSse(dechunk(http11.body).data.toString("utf8"));
      const http10Events = () => parseSse(http10.body.toString("utf8"));
      await http11.until(() => http11Events().events.length === texts.length && http11Events().comments > 0);
      await http10.until(() => http10Events().events.length === texts.length && http10Events().comments > 0);
      const deadline = Date.now() + 10_000;
      while (parseSse(h2Text).events.length < texts.length || parseSse(h2Text).comments === 0) {
        assert.ok(Date.now() < deadline, `HTTP/2 stream got ${JSON.stringify(h2Text.slice(0, 200))}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      for (const [name, parsed] of [
        ["HTTP/1.1", http11Events()],
        ["HTTP/1.0", http10Events()],
        ["HTTP/2", parseSse(h2Text)],
      ] as const) {
        assert.equal(parsed.retry, "2000", name);
        assert.deepEqual(
          parsed.events.map((event) => event.id),
          ["1", "2", "3", "4", "5", "6", "7"],
          name,
        );
        assert.deepEqual(payloads(parsed.events), texts, name);
      }

      closed = true;
      await server.close({ allowOpenConnections: true });
      // (The server closes its connections on shutdown: a terminating chunk may or may not make it first.)
      await http11.until(() => http11.ended);
      assert.ok(
        dechunk(http11.body).data.toString("utf8").endsWith("\n\n"),
        "HTTP/1.1 ends on whole chunks and events",
      );
      await http10.until(() => http10.ended);
      const end = Date.now() + 10_000;
      while (!h2Ended) {
        assert.ok(Date.now() < end, "the HTTP/2 stream ends on shutdown");
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.equal(http11Events().events.length, texts.length);
      assert.ok(http10.body.toString("utf8").endsWith("\n\n"), "HTTP/1.0 body ends on an event boundary");
    } finally {
      http11.destroy();
      http10.destroy();
      session.destroy();
    }
  });
});
