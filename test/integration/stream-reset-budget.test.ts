// A client that cancels many calls on one HTTP/2 connection: the server retires the connection gracefully
// (GOAWAY NO_ERROR, calls in flight finish) before nghttp2's rapid-reset protection would close it with
// INTERNAL_ERROR and fail every call on it. On the main port and on the tunnel's gRPC entry (one listener code).
import assert from "node:assert/strict";
import { type ClientHttp2Session, type ClientHttp2Stream, connect, constants } from "node:http2";
import { after, before, describe, it } from "node:test";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { withTimeout } from "../harness/wait-for.js";

const CANCELS = 1_500;

/** A gRPC call left open (no body yet): the server waits for the request message. */
function openCall(session: ClientHttp2Session): ClientHttp2Stream {
  const stream = session.request({
    ":method": "POST",
    ":path": "/google.pubsub.v1.Publisher/GetTopic",
    "content-type": "application/grpc",
    te: "trailers",
  });
  stream.on("error", () => undefined);
  return stream;
}

/** Sends GetTopic's request message on `stream` and resolves with the grpc-status it ends with. */
function finishCall(stream: ClientHttp2Stream): Promise<string> {
  return new Promise((resolve, reject) => {
    let status: string | undefined;
    stream.on("response", (headers) => {
      status ??= headers["grpc-status"] as string | undefined;
    });
    stream.on("trailers", (trailers) => {
      status = trailers["grpc-status"] as string | undefined;
    });
    stream.on("close", () =>
      status === undefined ? reject(new Error(`closed without a status (rst ${stream.rstCode})`)) : resolve(status),
    );
    stream.resume();
    const topic = Buffer.from("projects/p/topics/none");
    const message = Buffer.concat([Buffer.from([0x0a, topic.length]), topic]);
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(message.length, 1);
    stream.end(Buffer.concat([prefix, message]));
  });
}

describe("stream reset budget", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server?.close();
  });

  it("stream reset budget - 1,500 cancelled calls on one connection: GOAWAY NO_ERROR, and a call in flight on it still completes", async () => {
    const session = connect(server.url);
    session.on("error", () => undefined);
    let goaway: number | null = null;
    session.on("goaway", (code) => {
      goaway = code;
    });
    try {
      await withTimeout(new Promise((resolve) => session.once("connect", resolve)), 5_000, "the HTTP/2 connection");
      const inFlight = openCall(session);
      let cancelled = 0;
      while (cancelled < CANCELS && goaway === null && !session.destroyed) {
        const stream = openCall(session);
        // Reset once its headers are out, as a client cancelling a call does.
        await new Promise((resolve) => setImmediate(resolve));
        stream.close(constants.NGHTTP2_CANCEL);
        cancelled++;
      }
      await withTimeout(
        new Promise<void>((resolve) => (goaway !== null ? resolve() : session.once("goaway", () => resolve()))),
        5_000,
        "a GOAWAY",
      );
      assert.equal(goaway, constants.NGHTTP2_NO_ERROR, `GOAWAY code ${goaway} after ${cancelled} cancels`);
      assert.ok(cancelled < 1_000, `retired after ${cancelled} cancels, before nghttp2's 1,000`);
      // The call that was open all along is answered (NOT_FOUND: the topic does not exist), not cut off.
      assert.equal(await withTimeout(finishCall(inFlight), 5_000, "the call in flight"), "5");
    } finally {
      session.destroy();
    }
  });
});
