// Plain HTTP to https:// backends: ALPN picks HTTP/2 or HTTP/1.1, probed once per origin, re-probed after a failure.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { readFileSync, rmSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { createSecureServer, type Http2ServerRequest } from "node:http2";
import { createServer as createHttpsServer } from "node:https";
import { type AddressInfo, createServer as createTcpServer, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { createSelfSigned, type SelfSigned } from "../../../test/harness/self-signed.js";
import { delay } from "../../../test/harness/wait-for.js";
import { Code, type StreamgateError } from "../../errors/index.js";
import { Protocol, RequestHeadSchema } from "../../gen/streamgate/tunnel/v1/tunnel_pb.js";
import { createUpstreamForwarder, type UpstreamForwarder } from "./upstream-forwarder.js";

interface Forwarded {
  status?: number;
  body: string;
  ended: boolean;
  error?: StreamgateError;
}

/** Forwards one request (HTTP, or a WebSocket upgrade) to `address`; `onData` runs on each data call before it resolves. */
async function forwardTo(
  forwarder: UpstreamForwarder,
  address: string,
  options: { websocket?: boolean; timeoutMs?: bigint; onData?: (text: string) => void } = {},
): Promise<Forwarded> {
  const result: Forwarded = { body: "", ended: false };
  const websocketHeaders = [
    { name: "upgrade", value: "websocket" },
    { name: "connection", value: "Upgrade" },
    { name: "sec-websocket-key", value: randomBytes(16).toString("base64") },
    { name: "sec-websocket-version", value: "13" },
  ];
  await forwarder.forward(
    {
      head: create(RequestHeadSchema, {
        protocol: options.websocket ? Protocol.WEBSOCKET : Protocol.HTTP,
        method: "GET",
        authority: "public.example",
        path: "/stream",
        endStream: !options.websocket,
        timeoutMs: options.timeoutMs ?? 0n,
        headers: options.websocket ? websocketHeaders : [],
      }),
      body: (async function* () {})(),
      signal: new AbortController().signal,
    },
    { name: "web", protocol: "http", addresses: [address], pick: "round_robin", healthCheck: null },
    {
      async head(head) {
        result.status = head.status;
        result.ended = head.endStream;
      },
      async data(bytes) {
        const text = Buffer.from(bytes).toString();
        result.body += text;
        options.onData?.(text);
      },
      async trailers() {
        result.ended = true;
      },
      async error(error) {
        result.error = error;
      },
    },
  );
  return result;
}

interface Backend {
  address: string;
  port: number;
  /** `httpVersion` of every request received. */
  versions: string[];
  /** TCP connections accepted: each probe, pooled session and agent connection is one. */
  connections: number;
  /** Lets every held response write its last chunk. */
  release(): void;
  close(): Promise<void>;
}

/**
 * An https backend on 127.0.0.1: `h2` (node:http2 with allowHTTP1) or `http/1.1` (node:https, no ALPN).
 * Each answer writes `version <v>;`, then `done` once `release()` is called, so a test can see streaming.
 */
async function startBackend(tls: SelfSigned, kind: "h2" | "http/1.1", port = 0): Promise<Backend> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const options = { cert: tls.cert, key: readFileSync(tls.keyPath) };
  // The part of ServerResponse and Http2ServerResponse this answer uses.
  type Response = {
    writeHead(status: number, headers: Record<string, string>): unknown;
    write(chunk: string): boolean;
    end(chunk: string): unknown;
  };
  const answer = (request: IncomingMessage | Http2ServerRequest, response: Response) => {
    backend.versions.push(request.httpVersion);
    request.resume();
    response.writeHead(200, { "content-type": "text/plain" });
    response.write(`version ${request.httpVersion};`);
    void released.then(() => response.end("done"));
  };
  const server =
    kind === "h2" ? createSecureServer({ ...options, allowHTTP1: true }, answer) : createHttpsServer(options, answer);
  const sockets = new Set<Socket>();
  // TCP connections, not `secureConnection`s: a probe the agent closes right after its handshake
  // (HTTP/1.1 backends) did not show up as a `secureConnection` in our runs, so it would go uncounted.
  server.on("connection", (socket: Socket) => {
    backend.connections++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.listen(port, "127.0.0.1");
  await once(server, "listening");
  const bound = (server.address() as AddressInfo).port;
  const backend: Backend = {
    address: `https://127.0.0.1:${bound}`,
    port: bound,
    versions: [],
    connections: 0,
    release,
    async close() {
      release();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
  return backend;
}

describe("upstream ALPN", () => {
  let tls: SelfSigned;
  let forwarder: UpstreamForwarder;

  before(() => {
    tls = createSelfSigned();
    forwarder = createUpstreamForwarder({ tls: { caPath: tls.certPath } });
  });
  after(() => {
    forwarder.close();
    rmSync(tls.dir, { recursive: true, force: true });
  });

  it("upstream ALPN - an https:// backend that picks h2 gets plain HTTP over HTTP/2, and the response streams", async () => {
    const backend = await startBackend(tls, "h2");
    try {
      let sawFirst = false;
      const result = await forwardTo(forwarder, backend.address, {
        onData: (text) => {
          // The backend holds its last chunk until the first one got here.
          if (!sawFirst && text.includes("version")) {
            sawFirst = true;
            backend.release();
          }
        },
      });
      assert.equal(result.error, undefined, result.error?.message);
      assert.equal(result.status, 200);
      assert.equal(result.body, "version 2.0;done");
      assert.ok(result.ended);
      assert.deepEqual(backend.versions, ["2.0"]);
      // The probe's handshake carried the request: one TLS connection, reused by the next request.
      await forwardTo(forwarder, backend.address);
      assert.deepEqual(backend.versions, ["2.0", "2.0"]);
      assert.equal(backend.connections, 1);
    } finally {
      await backend.close();
    }
  });

  it("upstream ALPN - an https:// backend with HTTP/1.1 only still gets HTTP/1.1", async () => {
    const backend = await startBackend(tls, "http/1.1");
    backend.release();
    try {
      for (let round = 0; round < 2; round++) {
        const result = await forwardTo(forwarder, backend.address);
        assert.equal(result.error, undefined, result.error?.message);
        assert.equal(result.body, "version 1.1;done");
      }
      assert.deepEqual(backend.versions, ["1.1", "1.1"]);
      // The probe's connection (closed: the agent cannot adopt it), then the agent's, kept alive.
      assert.equal(backend.connections, 2);
    } finally {
      await backend.close();
    }
  });

  it("upstream ALPN - a burst of first requests to a new h2 origin shares one probe and one connection", async () => {
    const backend = await startBackend(tls, "h2");
    backend.release();
    try {
      const results = await Promise.all(Array.from({ length: 8 }, () => forwardTo(forwarder, backend.address)));
      for (const result of results) assert.equal(result.body, "version 2.0;done", result.error?.message);
      assert.equal(backend.versions.length, 8);
      assert.equal(backend.connections, 1);
    } finally {
      await backend.close();
    }
  });

  it("upstream ALPN - an untrusted certificate or a refused connection is UNAVAILABLE, as over HTTP/1.1", async () => {
    const backend = await startBackend(tls, "h2");
    backend.release();
    const untrusting = createUpstreamForwarder();
    try {
      const probed = await forwardTo(untrusting, backend.address);
      // A WebSocket upgrade still goes through the HTTP/1.1 forwarder: the error must be the same.
      const overHttp1 = await forwardTo(untrusting, backend.address, { websocket: true });
      assert.equal(probed.status, undefined);
      assert.equal(probed.error?.code, Code.UNAVAILABLE);
      assert.equal(probed.error?.reason, "TUNNEL_UPSTREAM_UNAVAILABLE");
      assert.match(probed.error?.message ?? "", /self-signed certificate/);
      assert.equal(probed.error?.message, overHttp1.error?.message);
      assert.equal(backend.versions.length, 0);

      const { address } = backend;
      await backend.close();
      const refused = await forwardTo(forwarder, address);
      const refusedOverHttp1 = await forwardTo(forwarder, address, { websocket: true });
      assert.equal(refused.error?.code, Code.UNAVAILABLE);
      assert.equal(refused.error?.reason, "TUNNEL_UPSTREAM_UNAVAILABLE");
      assert.match(refused.error?.message ?? "", /ECONNREFUSED/);
      assert.equal(refused.error?.message, refusedOverHttp1.error?.message);
    } finally {
      untrusting.close();
      await backend.close();
    }
  });

  it("upstream ALPN - a handshake that never finishes ends at the request's deadline", async () => {
    const sockets = new Set<Socket>();
    // Accepts TCP and never answers the TLS ClientHello.
    const silent = createTcpServer((socket) => sockets.add(socket));
    silent.listen(0, "127.0.0.1");
    await once(silent, "listening");
    try {
      const started = Date.now();
      const address = `https://127.0.0.1:${(silent.address() as AddressInfo).port}`;
      const result = await forwardTo(forwarder, address, { timeoutMs: 200n });
      assert.equal(result.error?.code, Code.DEADLINE_EXCEEDED);
      assert.equal(result.error?.reason, "TUNNEL_DEADLINE");
      assert.ok(Date.now() - started < 2_000);
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });

  it("upstream ALPN - a backend replaced by an HTTP/1.1 one on the same port is probed again after a failure", async () => {
    const h2 = await startBackend(tls, "h2");
    h2.release();
    const { address, port } = h2;
    const first = await forwardTo(forwarder, address);
    assert.equal(first.body, "version 2.0;done", first.error?.message);
    await h2.close();
    // Let the agent see its pooled session close (a request on a session dying under it is another test).
    await delay(100);
    const http1 = await startBackend(tls, "http/1.1", port);
    http1.release();
    try {
      // The remembered h2 fails once against the new backend (UNAVAILABLE), then the next request re-probes.
      const failed = await forwardTo(forwarder, address);
      assert.equal(failed.error?.code, Code.UNAVAILABLE, `expected a failure, got ${failed.body}`);
      const again = await forwardTo(forwarder, address);
      assert.equal(again.error, undefined, again.error?.message);
      assert.equal(again.body, "version 1.1;done");
    } finally {
      await http1.close();
    }
  });
});
