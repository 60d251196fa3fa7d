// The backend session pool against real node:http2 backends that take a limited number of streams per connection.
import assert from "node:assert/strict";
import { once } from "node:events";
import {
  type ClientHttp2Stream,
  constants,
  createServer,
  type Http2Session,
  type SecureServerOptions,
  type ServerHttp2Stream,
} from "node:http2";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { Http2SessionPool } from "./http2-sessions.js";

/** Headers like the agent's gRPC calls (the client session's per-stream memory depends on them). */
function grpcHeaders(index: number) {
  return {
    ":method": "POST",
    ":path": "/test.Echo/Hold",
    "content-type": "application/grpc",
    te: "trailers",
    "user-agent": "grpc-node-js/1.14.7",
    "grpc-accept-encoding": "identity,deflate,gzip",
    traceparent: `00-${"a".repeat(32)}-${index.toString(16).padStart(16, "0")}-01`,
  };
}

/** A gRPC-shaped backend: answers headers at once, holds each stream until its client ends it. */
async function startBackend(options: Pick<SecureServerOptions, "settings" | "maxSessionMemory"> = {}) {
  const server = createServer(options);
  const sessions = new Set<Http2Session>();
  let connections = 0;
  server.on("session", (session) => {
    connections++;
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
  });
  server.on("stream", (stream: ServerHttp2Stream) => {
    stream.on("error", () => undefined);
    stream.respond(
      { ":status": 200, "content-type": "application/grpc", "grpc-accept-encoding": "identity,deflate,gzip" },
      { waitForTrailers: true },
    );
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.resume();
    stream.on("end", () => stream.end());
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    /** Connections accepted since start. */
    connections: () => connections,
    /** Connections open now. */
    open: () => sessions.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of sessions) session.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Opens `count` streams through `pool` at once; resolves when each got its response headers or closed. */
async function hold(pool: Http2SessionPool, origin: string, count: number) {
  const streams: ClientHttp2Stream[] = [];
  const refused = new Map<number, number>();
  await Promise.all(
    Array.from({ length: count }, (_, index) => {
      const { stream } = pool.request(origin, grpcHeaders(index), {});
      streams.push(stream);
      stream.on("error", () => undefined);
      return new Promise<void>((resolve) => {
        stream.once("response", () => resolve());
        stream.once("close", () => {
          const code = stream.rstCode ?? -1;
          refused.set(code, (refused.get(code) ?? 0) + 1);
          resolve();
        });
      });
    }),
  );
  return {
    answered: streams.filter((stream) => !stream.closed).length,
    refused,
    /** Ends every stream and waits for them to close. */
    release: async () => {
      await Promise.all(
        streams.map((stream) => {
          if (stream.closed) return undefined;
          const closed = once(stream, "close");
          stream.end();
          return closed;
        }),
      );
    },
  };
}

/** Waits until `condition` holds (sessions close a few turns after their last stream). */
async function eventually(condition: () => boolean, what: string): Promise<void> {
  for (let attempt = 0; attempt < 200 && !condition(); attempt++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(condition(), what);
}

/** One call, so the pool's first session has the backend's SETTINGS before the test's burst. */
async function warm(pool: Http2SessionPool, origin: string): Promise<void> {
  const held = await hold(pool, origin, 1);
  await held.release();
}

describe("http2 session pool", () => {
  it("http2 session pool - a backend advertising maxConcurrentStreams gets 4x that many streams over 4 sessions", async () => {
    const backend = await startBackend({ settings: { maxConcurrentStreams: 25 } });
    const pool = new Http2SessionPool();
    try {
      await warm(pool, backend.origin);
      const held = await hold(pool, backend.origin, 100);
      assert.equal(held.answered, 100, `refused: ${JSON.stringify([...held.refused])}`);
      assert.deepEqual(pool.loads(backend.origin), [25, 25, 25, 25]);
      assert.equal(backend.open(), 4);
      await held.release();
      // The spare sessions close once idle; one stays for the next call.
      await eventually(() => backend.open() === 1, `backend connections open: ${backend.open()}`);
      assert.deepEqual(pool.loads(backend.origin), [0]);
    } finally {
      pool.close();
      await backend.close();
    }
  });

  it("http2 session pool - streams go to the least-loaded session with room", async () => {
    const backend = await startBackend();
    const pool = new Http2SessionPool({ maxStreamsPerSession: 10 });
    try {
      await warm(pool, backend.origin);
      const first = await hold(pool, backend.origin, 25);
      assert.deepEqual(pool.loads(backend.origin), [10, 10, 5]);
      await first.release();
      await eventually(() => backend.open() === 1, `backend connections open: ${backend.open()}`);
      const second = await hold(pool, backend.origin, 12);
      const again = await hold(pool, backend.origin, 6);
      assert.equal(second.answered + again.answered, 18);
      // 12 fill the first session (10) and start a second (2); the next 6 go to the second, the less loaded.
      assert.deepEqual(pool.loads(backend.origin), [10, 8]);
      await Promise.all([second.release(), again.release()]);
      await eventually(() => backend.open() === 1, `backend connections open: ${backend.open()}`);
      assert.equal(backend.connections(), 4);
    } finally {
      pool.close();
      await backend.close();
    }
  });

  it("http2 session pool - a backend with a small maxSessionMemory takes every stream spread over sessions", async () => {
    // 1 MB of session memory: node's server refuses streams past a few hundred with ENHANCE_YOUR_CALM.
    const backend = await startBackend({ maxSessionMemory: 1 });
    const single = new Http2SessionPool({ maxStreamsPerSession: 100_000 });
    const pooled = new Http2SessionPool({ maxStreamsPerSession: 250 });
    try {
      await warm(single, backend.origin);
      const one = await hold(single, backend.origin, 1_500);
      assert.ok(one.answered < 1_500, "one session takes them all: the backend no longer limits this");
      await one.release();
      single.destroy();

      await warm(pooled, backend.origin);
      const spread = await hold(pooled, backend.origin, 1_500);
      assert.equal(spread.answered, 1_500, `refused: ${JSON.stringify([...spread.refused])}`);
      assert.deepEqual(pooled.loads(backend.origin), [250, 250, 250, 250, 250, 250]);
      await spread.release();
      await eventually(() => backend.open() === 1, `backend connections open: ${backend.open()}`);
    } finally {
      single.destroy();
      pooled.close();
      await backend.close();
    }
  });

  it("http2 session pool - 12,000 idle gRPC streams to one origin all open with the default cap", async () => {
    // One node client session refuses response headers (RST_STREAM ENHANCE_YOUR_CALM) past its 10 MB
    // maxSessionMemory: ~9,500 idle gRPC streams on Node 24. The default cap keeps each session far below.
    const backend = await startBackend({ maxSessionMemory: 1_000 });
    const pool = new Http2SessionPool();
    try {
      await warm(pool, backend.origin);
      const held = await hold(pool, backend.origin, 12_000);
      assert.equal(held.answered, 12_000, `refused: ${JSON.stringify([...held.refused])}`);
      assert.equal(pool.loads(backend.origin).length, 12);
      assert.equal(
        held.refused.get(constants.NGHTTP2_ENHANCE_YOUR_CALM),
        undefined,
        "no stream refused for memory on either side",
      );
      await held.release();
      await eventually(() => backend.open() === 1, `backend connections open: ${backend.open()}`);
    } finally {
      pool.close();
      await backend.close();
    }
  });

  it("http2 session pool - close() closes retired sessions too once their streams end", async () => {
    const backend = await startBackend();
    const pool = new Http2SessionPool({ maxStreamsPerSession: 5 });
    try {
      await warm(pool, backend.origin);
      const held = await hold(pool, backend.origin, 10);
      assert.equal(backend.open(), 2);
      pool.close();
      assert.throws(() => pool.request(backend.origin, grpcHeaders(0), {}), /closed/);
      await held.release();
      await eventually(() => backend.open() === 0, `backend connections open: ${backend.open()}`);
    } finally {
      pool.destroy();
      await backend.close();
    }
  });
});
