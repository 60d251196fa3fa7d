// The backend session's reset budget: many cancelled calls through one forwarder must not get the agent's
// connection to a node backend closed by nghttp2's rapid-reset protection (GOAWAY INTERNAL_ERROR after
// ~1,000 RST_STREAMs), which would fail every other call on it.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Http2Session, type ServerHttp2Stream } from "node:http2";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { echoRequestHead } from "../../../test/harness/tunnel-test-backends.js";
import type { StreamgateError } from "../../errors/index.js";
import { STREAM_RESET_BUDGET } from "../../limits/stream-reset-budget.js";
import type { ResponseSink } from "./exchange.js";
import { forwardHttp2 } from "./http2-forwarder.js";
import { Http2SessionPool } from "./http2-sessions.js";

const CANCELLED_CALLS = 1_500;

/** A gRPC-shaped node:http2 backend: answers headers at once; `/hold` streams stay open, others end OK. */
async function startBackend() {
  const server = createServer();
  const sessions = new Set<Http2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
  });
  server.on("stream", (stream: ServerHttp2Stream, headers) => {
    stream.on("error", () => undefined);
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    if (headers[":path"] !== "/test.Echo/Hold") stream.end();
    else stream.once("data", () => stream.end()); // the held call ends when its client writes
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    address: `h2c://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => sessions.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of sessions) session.destroy();
        server.close(() => resolve());
      }),
  };
}

type Outcome = { head: boolean; trailers: boolean; error: StreamgateError | null };

function call(
  pool: Http2SessionPool,
  address: string,
  method: string,
  body: AsyncIterable<Uint8Array>,
  signal: AbortSignal,
  onHead?: () => void,
): Promise<Outcome> {
  const outcome: Outcome = { head: false, trailers: false, error: null };
  const sink: ResponseSink = {
    async head() {
      outcome.head = true;
      onHead?.();
    },
    async data() {},
    async trailers() {
      outcome.trailers = true;
    },
    async error(error) {
      outcome.error = error;
    },
  };
  return forwardHttp2({ head: echoRequestHead(method), body, signal }, address, sink, {
    pool,
    grpc: true,
    maxMessageBytes: 4 * 1024 * 1024,
    target: `backend (${address})`,
  }).then(() => outcome);
}

/** A request body that stays open until `release()`, then sends one message and ends. */
function heldBody() {
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  async function* body(): AsyncIterable<Uint8Array> {
    await released;
    yield Buffer.from([0, 0, 0, 0, 0]);
  }
  return { body: body(), release };
}

describe("backend reset budget", () => {
  let backend: Awaited<ReturnType<typeof startBackend>>;
  before(async () => {
    backend = await startBackend();
  });
  after(async () => {
    await backend?.close();
  });

  it("reset budget - 1,500 cancelled calls move to fresh sessions; a call held open on the first one still finishes OK", async () => {
    const pool = new Http2SessionPool();
    try {
      const held = heldBody();
      const heldCall = call(pool, backend.address, "Hold", held.body, new AbortController().signal);
      let next = 0;
      const worker = async () => {
        while (next < CANCELLED_CALLS) {
          next++;
          const abort = new AbortController();
          const { body } = heldBody();
          // Cancelled once the backend answered: the forwarder resets the backend stream (RST_STREAM CANCEL).
          const outcome = await call(pool, backend.address, "Hold", body, abort.signal, () => abort.abort());
          assert.equal(
            outcome.head,
            true,
            `call ${next}, ${pool.replacedForResets} replaced: a call failed before its answer: ${outcome.error?.message}`,
          );
        }
      };
      await Promise.all(Array.from({ length: 20 }, worker));
      // Without the budget the backend closes the session (GOAWAY INTERNAL_ERROR) after ~1,000 resets: the
      // calls then fail before their answer, and the held call with them.
      assert.ok(
        pool.replacedForResets >= Math.floor(CANCELLED_CALLS / STREAM_RESET_BUDGET.retireAfter) - 1,
        `sessions replaced: ${pool.replacedForResets}`,
      );
      held.release();
      const outcome = await heldCall;
      assert.equal(outcome.error, null, outcome.error?.message);
      assert.equal(outcome.trailers, true);
      // A call after all that goes through.
      const fresh = await call(pool, backend.address, "Unary", heldBody().body, new AbortController().signal);
      assert.equal(fresh.error, null, fresh.error?.message);
    } finally {
      pool.destroy();
    }
  });
});
