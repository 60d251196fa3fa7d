// forwardHttp2 against raw node:http2 backends that misbehave in ways a real backend can.
import assert from "node:assert/strict";
import { once } from "node:events";
import { constants, createServer, type ServerHttp2Stream } from "node:http2";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, type StreamgateError } from "../../errors/index.js";
import { Protocol, RequestHeadSchema } from "../../gen/streamgate/tunnel/v1/tunnel_pb.js";
import type { ResponseSink } from "./exchange.js";
import { forwardHttp2 } from "./http2-forwarder.js";
import { Http2SessionPool } from "./http2-sessions.js";

async function withBackend(onStream: (stream: ServerHttp2Stream) => void, run: (address: string) => Promise<void>) {
  const server = createServer();
  server.on("stream", (stream) => {
    stream.on("error", () => undefined);
    onStream(stream);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  try {
    await run(`h2c://127.0.0.1:${(server.address() as AddressInfo).port}`);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

async function forward(address: string, grpc: boolean) {
  const calls: string[] = [];
  let error: StreamgateError | null = null;
  const sink: ResponseSink = {
    async head(head) {
      calls.push(`head ${head.status}`);
    },
    async data() {
      calls.push("data");
    },
    async trailers() {
      calls.push("trailers");
    },
    async error(failure) {
      calls.push("error");
      error = failure;
    },
  };
  const pool = new Http2SessionPool();
  try {
    const head = create(RequestHeadSchema, {
      protocol: grpc ? Protocol.GRPC : Protocol.HTTP,
      method: grpc ? "POST" : "GET",
      scheme: "http",
      authority: "backend.test",
      path: grpc ? "/test.Echo/Unary" : "/page",
      headers: grpc ? [{ name: "content-type", value: "application/grpc" }] : [],
      endStream: true,
    });
    async function* empty(): AsyncIterable<Uint8Array> {}
    await forwardHttp2({ head, body: empty(), signal: new AbortController().signal }, address, sink, {
      pool,
      grpc,
      maxMessageBytes: 1024,
      target: "backend",
    });
  } finally {
    pool.destroy();
  }
  return { calls, error: error as StreamgateError | null };
}

describe("http2 forwarder", () => {
  for (const grpc of [false, true]) {
    it(`http2 forwarder - a backend that closes the stream without answering is UNAVAILABLE, not an empty response (${grpc ? "gRPC" : "HTTP"})`, async () => {
      await withBackend(
        (stream) => stream.close(constants.NGHTTP2_NO_ERROR),
        async (address) => {
          const { calls, error } = await forward(address, grpc);
          assert.deepEqual(calls, ["error"]);
          assert.equal(error?.code, Code.UNAVAILABLE, error?.message);
        },
      );
    });
  }
});
