// The listener's raw HTTP/2 stream routes: taken streams skip node's compatibility layer, the rest reach the handler.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { type ClientHttp2Session, connect, type IncomingHttpHeaders } from "node:http2";
import { after, before, describe, test } from "node:test";
import { createSelfSigned, type SelfSigned } from "../../test/harness/self-signed.js";
import { streamClient } from "./client-address.js";
import { createListener, type Listener, type StreamRoute } from "./listener.js";

/** Answers streams on /raw/* itself (the compat layer never sees them) with the client address it found. */
const rawRoute: StreamRoute = (stream, headers) => {
  if (!headers[":path"]?.startsWith("/raw/")) return false;
  stream.respond({ ":status": 200, "x-answered-by": "route", "x-client": streamClient(stream, headers).address });
  stream.end(`raw ${headers[":path"]}`);
  return true;
};

/** Holds streams on /hold until the client resets them. */
const holdRoute: StreamRoute = (stream, headers) => {
  if (headers[":path"] !== "/hold") return false;
  stream.respond({ ":status": 200 });
  stream.write("held");
  stream.once("close", () => closedHeld.push(stream.rstCode));
  return true;
};
const closedHeld: number[] = [];

function startListener(tls: SelfSigned | null): Promise<{ listener: Listener; url: string }> {
  const listener = createListener({
    host: "127.0.0.1",
    port: 0,
    tls:
      tls === null
        ? null
        : { certPath: tls.certPath, keyPath: tls.keyPath, clientCaPath: null, clientCertOptional: false },
    streamRoutes: [rawRoute, holdRoute],
    handler: (request, response) => {
      // Only node's compatibility objects reach here: a request with a `stream` (HTTP/2) or without (HTTP/1.1).
      response.setHeader("x-answered-by", "stream" in request ? "compat-h2" : "http1");
      response.end(`handler ${request.url}`);
    },
    pingIntervalMs: 60_000,
    maxHeaderBytes: 16 * 1024,
  });
  return listener
    .listen()
    .then((address) => ({ listener, url: `${tls === null ? "http" : "https"}://127.0.0.1:${address.port}` }));
}

function get(session: ClientHttp2Session, path: string): Promise<{ headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":path": path });
    let headers: IncomingHttpHeaders = {};
    let body = "";
    stream.setEncoding("utf8");
    stream.on("response", (received) => (headers = received));
    stream.on("data", (chunk: string) => (body += chunk));
    stream.on("end", () => resolve({ headers, body }));
    stream.on("error", reject);
  });
}

for (const secure of [false, true]) {
  const name = secure ? "TLS" : "h2c";
  describe(`listener stream routes over ${name}`, () => {
    let tls: SelfSigned | null = null;
    let server: { listener: Listener; url: string };
    let session: ClientHttp2Session;

    before(async () => {
      tls = secure ? createSelfSigned() : null;
      server = await startListener(tls);
      session = connect(server.url, tls === null ? {} : { ca: tls.cert });
    });

    after(() => {
      session.close();
      server.listener.destroy();
      if (tls !== null) rmSync(tls.dir, { recursive: true, force: true });
    });

    test(`listener - ${name}: a stream a route takes is answered by the route, every other one by the handler`, async () => {
      const raw = await get(session, "/raw/one");
      assert.equal(raw.headers["x-answered-by"], "route");
      assert.equal(raw.body, "raw /raw/one");
      assert.equal(raw.headers["x-client"], "127.0.0.1");
      const other = await get(session, "/other?x=1");
      assert.equal(other.headers["x-answered-by"], "compat-h2");
      assert.equal(other.body, "handler /other?x=1");
      // Both kinds interleave on one connection.
      const mixed = await Promise.all([get(session, "/raw/two"), get(session, "/three"), get(session, "/raw/four")]);
      assert.deepEqual(
        mixed.map((result) => result.body),
        ["raw /raw/two", "handler /three", "raw /raw/four"],
      );
    });

    test(`listener - ${name}: a client reset of a routed stream closes it and leaves the connection serving`, async () => {
      const closedBefore = closedHeld.length;
      const stream = session.request({ ":path": "/hold" });
      // The client's own stream reports the reset it sent as an error too.
      stream.on("error", () => undefined);
      await new Promise<void>((resolve) => stream.once("data", () => resolve()));
      stream.close(0x2); // INTERNAL_ERROR: node destroys the server stream with an error
      // The no-op error listener keeps a reset from crashing the process; the route sees the close.
      const deadline = Date.now() + 5_000;
      while (closedHeld.length === closedBefore && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 5));
      assert.equal(closedHeld.length, closedBefore + 1, "the routed stream did not close within 5 s");
      assert.equal(closedHeld.at(-1), 0x2);
      assert.equal((await get(session, "/raw/after")).body, "raw /raw/after");
    });
  });
}

test("listener - HTTP/1.1 requests never reach the stream routes", async () => {
  const server = await startListener(null);
  try {
    const result = await new Promise<{ by: string | undefined; body: string }>((resolve, reject) => {
      const req = httpRequest(`${server.url}/raw/one`, { agent: false }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (body += chunk));
        res.on("end", () => resolve({ by: res.headers["x-answered-by"] as string | undefined, body }));
      });
      req.on("error", reject);
      req.end();
    });
    assert.deepEqual(result, { by: "http1", body: "handler /raw/one" });
  } finally {
    server.listener.destroy();
  }
});
