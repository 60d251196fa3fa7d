// HTTP through the tunnel's HTTP entry and a real agent to a node:http backend: Server-Sent Events arrive
// one by one as the backend writes them (no buffering hop), WebSocket upgrade and echo (text and binary),
// a streamed request body echoed back, and forwarded headers.
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { connect as http2Connect } from "node:http2";
import { after, before, describe, test } from "node:test";
import { startTunnelStack, type TunnelStack } from "../harness/interop-tunnel.js";
import { openWebSocket } from "../harness/open-websocket.js";
import { waitFor, withTimeout } from "../harness/wait-for.js";

interface SseReader {
  /** Resolves with the status once the response headers arrived. */
  headers: Promise<number>;
  text(): string;
  ended(): boolean;
  close(): void;
}

/** An SSE reader over node:http: `text()` grows as chunks arrive. */
function openSse(url: string): SseReader {
  let text = "";
  let ended = false;
  const request = httpRequest(url, { headers: { accept: "text/event-stream" }, agent: false });
  const headers = new Promise<number>((resolve, reject) => {
    request.on("response", (response) => {
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        text += chunk;
      });
      const end = () => {
        ended = true;
      };
      response.on("end", end);
      response.on("close", end);
      response.on("error", end);
      resolve(response.statusCode ?? 0);
    });
    request.on("error", reject);
  });
  headers.catch(() => undefined);
  request.end();
  return { headers, text: () => text, ended: () => ended, close: () => request.destroy() };
}

/** Every test is bounded: a hop that holds a response back fails the test instead of hanging the file. */
const TIMEOUT = { timeout: 20_000 };

const ids = (text: string) => [...text.matchAll(/^id: (\d+)$/gm)].map((match) => Number(match[1]));

describe("tunnel interop http", () => {
  let stack: TunnelStack;
  before(async () => {
    stack = await startTunnelStack({ http: true });
  });
  after(async () => {
    await stack?.close();
  });

  test(
    "tunnel interop http - SSE events arrive one by one while the backend's response is still open",
    TIMEOUT,
    async () => {
      const reader = openSse(`${stack.httpEntryUrl}/events`);
      try {
        const backend = await stack.http!.nextSseClient(5_000);
        for (let id = 1; id <= 5; id += 1) {
          backend.send(id, JSON.stringify({ n: id }));
          if (id === 1) assert.equal(await withTimeout(reader.headers, 5_000, "SSE response headers"), 200);
          // Each event must reach the client before the next is written: a hop that buffers fails here.
          await waitFor(() => ids(reader.text()).includes(id), {
            timeoutMs: 5_000,
            describe: () => `event ${id} did not arrive; client has ${JSON.stringify(reader.text())}`,
          });
        }
        assert.deepEqual(ids(reader.text()), [1, 2, 3, 4, 5]);
        assert.equal(reader.ended(), false);
        backend.end();
        await waitFor(reader.ended, { timeoutMs: 5_000, describe: () => "the SSE response did not end" });
      } finally {
        reader.close();
      }
    },
  );

  test("tunnel interop http - SSE response headers reach the client before the first event", TIMEOUT, async () => {
    // EventSource clients report "open" on the headers; a backend may send its first event much later.
    const reader = openSse(`${stack.httpEntryUrl}/events`);
    try {
      const backend = await stack.http!.nextSseClient(5_000);
      assert.equal(await withTimeout(reader.headers, 5_000, "SSE response headers before any event"), 200);
      backend.end();
    } finally {
      reader.close();
    }
  });

  test("tunnel interop http - a client closing an SSE stream closes the backend's response", TIMEOUT, async () => {
    const reader = openSse(`${stack.httpEntryUrl}/events`);
    const backend = await stack.http!.nextSseClient(5_000);
    backend.send(1, "one");
    await waitFor(() => ids(reader.text()).includes(1), { timeoutMs: 5_000, describe: () => "event 1" });
    reader.close();
    await withTimeout(backend.closed, 5_000, "the backend's SSE response to close after the client left");
  });

  test(
    "tunnel interop http - WebSocket upgrade through the tunnel echoes text and binary messages",
    TIMEOUT,
    async () => {
      const socket = await openWebSocket(`${stack.httpEntryUrl.replace("http", "ws")}/ws`);
      try {
        const received: { data: Buffer; binary: boolean }[] = [];
        socket.on("message", (data, isBinary) => received.push({ data: data as Buffer, binary: isBinary }));
        const binary = Buffer.from(Array.from({ length: 70_000 }, (_, index) => index % 256));
        socket.send("hello through the tunnel");
        socket.send(binary);
        for (let index = 0; index < 20; index += 1) socket.send(`message ${index}`);
        await waitFor(() => received.length >= 22, {
          timeoutMs: 5_000,
          describe: () => `${received.length} of 22 echoes`,
        });
        assert.equal(received[0]!.binary, false);
        assert.equal(received[0]!.data.toString(), "hello through the tunnel");
        assert.equal(received[1]!.binary, true);
        assert.ok(received[1]!.data.equals(binary));
        assert.deepEqual(
          received.slice(2).map((entry) => entry.data.toString()),
          Array.from({ length: 20 }, (_, index) => `message ${index}`),
        );
        assert.equal(stack.http!.webSockets(), 1);
        socket.close(1000, "done");
        await withTimeout(
          new Promise<number>((resolve) => socket.once("close", (code) => resolve(code))),
          5_000,
          "WebSocket close",
        ).then((code) => assert.equal(code, 1000));
        await waitFor(() => stack.http!.webSockets() === 0, {
          timeoutMs: 5_000,
          describe: () => "the backend's WebSocket stayed open",
        });
      } finally {
        socket.terminate();
      }
    },
  );

  test("tunnel interop http - a backend's HTTP/1.1 trailers reach HTTP/1.1 and HTTP/2 clients", TIMEOUT, async () => {
    const http1 = await new Promise<{ body: string; trailers: Record<string, string | undefined> }>(
      (resolve, reject) => {
        const request = httpRequest(`${stack.httpEntryUrl}/trailers`, { agent: false, headers: { te: "trailers" } });
        request.on("response", (response) => {
          let body = "";
          response.setEncoding("utf8");
          response.on("data", (chunk: string) => {
            body += chunk;
          });
          response.on("end", () => resolve({ body, trailers: response.trailers }));
          response.on("error", reject);
        });
        request.on("error", reject);
        request.end();
      },
    );
    assert.equal(http1.body, "row 1\nrow 2\n");
    assert.equal(http1.trailers["x-checksum"], "abc123");
    assert.equal(http1.trailers["x-rows"], "2");

    const session = http2Connect(stack.httpEntryUrl);
    try {
      const http2 = await new Promise<{ body: string; trailers: Record<string, unknown> }>((resolve, reject) => {
        const stream = session.request({ ":path": "/trailers" });
        let body = "";
        let trailers: Record<string, unknown> = {};
        stream.setEncoding("utf8");
        stream.on("data", (chunk: string) => {
          body += chunk;
        });
        stream.on("trailers", (received) => {
          trailers = received;
        });
        stream.on("end", () => resolve({ body, trailers }));
        stream.on("error", reject);
      });
      assert.equal(http2.body, "row 1\nrow 2\n");
      assert.equal(http2.trailers["x-checksum"], "abc123");
      assert.equal(http2.trailers["x-rows"], "2");
    } finally {
      session.close();
    }
  });

  test("tunnel interop http - a streamed request body is echoed back as it arrives", TIMEOUT, async () => {
    const chunks = ["first,", "second,", "third"];
    const result = await new Promise<{ status: number; firstBeforeEnd: boolean; body: string }>((resolve, reject) => {
      const request = httpRequest(
        `${stack.httpEntryUrl}/echo`,
        { method: "POST", headers: { "content-type": "text/plain" }, agent: false },
        (response) => {
          let body = "";
          let firstBeforeEnd = false;
          response.setEncoding("utf8");
          response.on("data", (chunk: string) => {
            body += chunk;
            // The first chunk came back before the client finished sending: the body streams both ways.
            if (body.startsWith(chunks[0]!) && !request.writableEnded) {
              firstBeforeEnd = true;
              request.write(chunks[1]);
              request.end(chunks[2]);
            }
          });
          response.on("end", () => resolve({ status: response.statusCode ?? 0, firstBeforeEnd, body }));
          response.on("error", reject);
        },
      );
      request.on("error", reject);
      request.write(chunks[0]);
      request.flushHeaders();
    });
    assert.equal(result.status, 200);
    assert.equal(result.firstBeforeEnd, true, "the echo only came back after the request ended");
    assert.equal(result.body, chunks.join(""));
  });

  test(
    "tunnel interop http - the backend sees X-Forwarded-* and Forwarded and no hop-by-hop headers",
    TIMEOUT,
    async () => {
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const request = httpRequest(
          `${stack.httpEntryUrl}/headers`,
          {
            agent: false,
            headers: {
              "x-custom": "kept",
              connection: "keep-alive, x-hop",
              "x-hop": "dropped",
              "keep-alive": "timeout=5",
            },
          },
          (response) => {
            let text = "";
            response.setEncoding("utf8");
            response.on("data", (chunk: string) => {
              text += chunk;
            });
            response.on("end", () => {
              request.destroy();
              resolve({ status: response.statusCode ?? 0, body: text });
            });
          },
        );
        request.on("error", reject);
        request.end();
      });
      assert.equal(status, 200);
      const headers = JSON.parse(body) as Record<string, string>;
      assert.equal(headers["x-custom"], "kept");
      assert.ok(headers["x-forwarded-for"]?.includes("127.0.0.1"), JSON.stringify(headers));
      assert.equal(headers["x-forwarded-proto"], "http");
      assert.ok(headers["x-forwarded-host"]?.startsWith("127.0.0.1:"), JSON.stringify(headers));
      assert.ok(headers.forwarded?.includes("for="), JSON.stringify(headers));
      assert.equal(headers["x-hop"], undefined, "a header named in Connection was forwarded");
      assert.equal(headers["keep-alive"], undefined, "keep-alive was forwarded");
    },
  );
});
