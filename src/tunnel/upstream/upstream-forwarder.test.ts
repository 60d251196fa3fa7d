// Forwarders against real backends: a @grpc/grpc-js server, a node:http server with SSE and a ws echo server.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { readFileSync, rmSync } from "node:fs";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { createSelfSigned } from "../../../test/harness/self-signed.js";
import {
  echoRequestHead,
  echoService,
  type GrpcBackend,
  type HttpBackend,
  startGrpcBackend,
  startHttpBackend,
} from "../../../test/harness/tunnel-test-backends.js";
import { waitFor } from "../../../test/harness/wait-for.js";
import { Code, type StreamgateError } from "../../errors/index.js";
import { Protocol, RequestHeadSchema } from "../../gen/streamgate/tunnel/v1/tunnel_pb.js";
import type { UpstreamSpec } from "../rules/index.js";
import type { HeaderEntry, ResponseHeadInit, ResponseSink } from "./exchange.js";
import { createUpstreamForwarder, type UpstreamForwarder } from "./upstream-forwarder.js";

type Event =
  | { kind: "head"; head: ResponseHeadInit }
  | { kind: "data"; bytes: Buffer }
  | { kind: "trailers"; headers: HeaderEntry[] }
  | { kind: "error"; error: StreamgateError };

/** A sink that records every call; `onData` runs on each data call (before it resolves). */
function recordingSink(onData?: (bytes: Buffer) => Promise<void> | void) {
  const events: Event[] = [];
  const sink: ResponseSink = {
    async head(head) {
      events.push({ kind: "head", head });
    },
    async data(bytes) {
      events.push({ kind: "data", bytes: Buffer.from(bytes) });
      await onData?.(Buffer.from(bytes));
    },
    async trailers(headers) {
      events.push({ kind: "trailers", headers });
    },
    async error(error) {
      events.push({ kind: "error", error });
    },
  };
  const body = () =>
    Buffer.concat(events.flatMap((event) => (event.kind === "data" ? [event.bytes] : []))).toString("latin1");
  const header = (name: string) => {
    for (const event of events) {
      if (event.kind === "head") {
        const found = event.head.headers.find((entry) => entry.name === name);
        if (found) return found.value;
      }
    }
    return undefined;
  };
  const trailer = (name: string) => {
    for (const event of events) {
      const list = event.kind === "trailers" ? event.headers : event.kind === "head" ? event.head.headers : [];
      const found = list.find((entry) => entry.name === name);
      if (found) return found.value;
    }
    return undefined;
  };
  const error = () => events.find((event) => event.kind === "error")?.error;
  return { sink, events, body, header, trailer, error };
}

function frame(payload: Uint8Array): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(payload.length, 1);
  return Buffer.concat([prefix, payload]);
}

/** Splits length-prefixed gRPC messages. */
function messages(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let offset = 0; offset + 5 <= bytes.length; ) {
    const length = bytes.readUInt32BE(offset + 1);
    out.push(bytes.subarray(offset + 5, offset + 5 + length));
    offset += 5 + length;
  }
  return out;
}

async function* chunks(...parts: Uint8Array[]): AsyncIterable<Uint8Array> {
  for (const part of parts) yield part;
}

function grpcUpstream(name: string, addresses: string[], pick: UpstreamSpec["pick"] = "round_robin"): UpstreamSpec {
  return { name, protocol: "grpc", addresses, pick, healthCheck: null };
}

describe("upstream forwarder", () => {
  let backend: GrpcBackend;
  let http: HttpBackend;
  let forwarder: UpstreamForwarder;

  before(async () => {
    backend = await startGrpcBackend("a");
    http = await startHttpBackend();
    forwarder = createUpstreamForwarder({ maxMessageBytes: 64 * 1024 });
  });
  after(async () => {
    forwarder.close();
    await backend.close();
    await http.close();
  });

  const forwardGrpc = async (
    method: string,
    body: AsyncIterable<Uint8Array>,
    init: MessageInitShape<typeof RequestHeadSchema> = {},
  ) => {
    const recorder = recordingSink();
    await forwarder.forward(
      { head: echoRequestHead(method, init), body, signal: new AbortController().signal },
      grpcUpstream("echo", [backend.address]),
      recorder.sink,
    );
    return recorder;
  };

  it("upstream - gRPC unary carries metadata both ways, binary values included, and trailers exactly", async () => {
    const binary = Buffer.from([0, 1, 254, 255]).toString("base64").replace(/=+$/, "");
    const recorder = await forwardGrpc("Unary", chunks(frame(Buffer.from("hello"))), {
      headers: [
        { name: "content-type", value: "application/grpc" },
        { name: "x-echo-text", value: "plain" },
        { name: "x-echo-bin", value: binary },
        { name: "connection", value: "keep-alive" },
      ],
    });
    assert.equal(recorder.error(), undefined);
    const head = recorder.events[0];
    assert.equal(head?.kind, "head");
    assert.equal(head.kind === "head" && head.head.status, 200);
    assert.equal(recorder.header("x-echo-text"), "plain");
    assert.deepEqual(Buffer.from(recorder.header("x-echo-bin") ?? "", "base64"), Buffer.from([0, 1, 254, 255]));
    assert.deepEqual(messages(Buffer.from(recorder.body(), "latin1")).map(String), ["hello"]);
    const last = recorder.events.at(-1);
    assert.equal(last?.kind, "trailers");
    assert.equal(recorder.trailer("grpc-status"), "0");
    assert.deepEqual(Buffer.from(recorder.trailer("x-trailer-bin") ?? "", "base64"), Buffer.from([1, 2, 3]));
    // The backend saw a traceparent (a child of none: a new trace) and no hop-by-hop header.
    const seen = backend.log.calls.at(-1)!.metadata;
    assert.match(String(seen.get("traceparent")[0]), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    assert.deepEqual(seen.get("connection"), []);
  });

  it("upstream - gRPC server streaming delivers every message, then the trailers", async () => {
    const recorder = await forwardGrpc("ServerStream", chunks(frame(Buffer.from([3]))));
    assert.deepEqual(messages(Buffer.from(recorder.body(), "latin1")).map(String), [
      "message-0",
      "message-1",
      "message-2",
    ]);
    assert.equal(recorder.trailer("grpc-status"), "0");
  });

  it("upstream - gRPC client and bidi streaming send every request message", async () => {
    const client = await forwardGrpc(
      "ClientStream",
      chunks(frame(Buffer.from("ab")), frame(Buffer.from("cd")), frame(Buffer.from("ef"))),
    );
    assert.deepEqual(messages(Buffer.from(client.body(), "latin1")).map(String), ["abcdef"]);
    const bidi = await forwardGrpc("Bidi", chunks(frame(Buffer.from("x")), frame(Buffer.from("y"))));
    assert.deepEqual(messages(Buffer.from(bidi.body(), "latin1")).map(String), ["x", "y"]);
    assert.equal(bidi.trailer("grpc-status"), "0");
  });

  it("upstream - a gRPC error answered trailers-only keeps status, message and details exactly", async () => {
    const recorder = await forwardGrpc("Fail", chunks(frame(Buffer.alloc(0))));
    assert.equal(recorder.events.length, 1, JSON.stringify(recorder.events.map((event) => event.kind)));
    const only = recorder.events[0]!;
    assert.ok(only.kind === "head" && only.head.endStream, "a trailers-only head that ends the stream");
    assert.equal(recorder.trailer("grpc-status"), String(Code.NOT_FOUND));
    assert.equal(decodeURIComponent(recorder.trailer("grpc-message") ?? ""), "no such thing: 100%");
    assert.deepEqual(
      Buffer.from(recorder.trailer("grpc-status-details-bin") ?? "", "base64"),
      Buffer.from([8, 5, 18, 4, 110, 111, 112, 101]),
    );
    assert.deepEqual(Buffer.from(recorder.trailer("x-why-bin") ?? "", "base64"), Buffer.from([0, 255]));
  });

  it("upstream - the remaining deadline reaches the backend and expires as DEADLINE_EXCEEDED", async () => {
    const sleeps = backend.log.cancelled;
    const recorder = await forwardGrpc("Sleep", chunks(frame(Buffer.alloc(0))), { timeoutMs: 300n });
    const status = recorder.trailer("grpc-status") ?? String(recorder.error()?.code);
    assert.equal(status, String(Code.DEADLINE_EXCEEDED));
    const seen = backend.log.calls.at(-1)!.metadata;
    assert.equal(seen.get("grpc-timeout").length, 0, "grpc-js consumes grpc-timeout itself");
    await waitFor(() => backend.log.cancelled > sleeps, {
      timeoutMs: 5_000,
      describe: () => "the backend's call to end",
    });
  });

  it("upstream - an already expired deadline fails without calling the backend", async () => {
    const calls = backend.log.calls.length;
    const recorder = recordingSink();
    await forwarder.forward(
      {
        head: echoRequestHead("Unary", { timeoutMs: 50n }),
        body: chunks(frame(Buffer.from("late"))),
        signal: new AbortController().signal,
        receivedAtMs: Date.now() - 100,
      },
      grpcUpstream("echo", [backend.address]),
      recorder.sink,
    );
    assert.equal(recorder.error()?.code, Code.DEADLINE_EXCEEDED);
    assert.equal(recorder.error()?.reason, "TUNNEL_DEADLINE");
    assert.equal(backend.log.calls.length, calls);
  });

  it("upstream - aborting the exchange cancels the backend call", async () => {
    const cancelledBefore = backend.log.cancelled;
    const controller = new AbortController();
    const recorder = recordingSink();
    const arrived = backend.nextSleep();
    const forwarding = forwarder.forward(
      { head: echoRequestHead("Sleep"), body: chunks(frame(Buffer.alloc(0))), signal: controller.signal },
      grpcUpstream("echo", [backend.address]),
      recorder.sink,
    );
    await arrived;
    controller.abort();
    await forwarding;
    assert.equal(recorder.error()?.code, Code.CANCELLED);
    await waitFor(() => backend.log.cancelled > cancelledBefore, {
      timeoutMs: 5_000,
      describe: () => "the backend to see the cancel",
    });
  });

  it("upstream - a backend that refuses connections is UNAVAILABLE with the reason", async () => {
    const down = await startGrpcBackend("down");
    const address = down.address;
    await down.close();
    const recorder = recordingSink();
    await forwarder.forward(
      { head: echoRequestHead("Unary"), body: chunks(frame(Buffer.from("x"))), signal: new AbortController().signal },
      grpcUpstream("gone", [address]),
      recorder.sink,
    );
    assert.equal(recorder.error()?.code, Code.UNAVAILABLE);
    assert.equal(recorder.error()?.reason, "TUNNEL_UPSTREAM_UNAVAILABLE");
    assert.match(recorder.error()?.message ?? "", /ECONNREFUSED/);
  });

  it("upstream - a response message above the limit is RESOURCE_EXHAUSTED", async () => {
    const recorder = await forwardGrpc("Big", chunks(frame(Buffer.from([65]))));
    assert.equal(recorder.error()?.code, Code.RESOURCE_EXHAUSTED);
    assert.equal(recorder.error()?.reason, "TUNNEL_MESSAGE_TOO_LARGE");
  });

  it("upstream - a request message above the limit is RESOURCE_EXHAUSTED", async () => {
    const recorder = await forwardGrpc("Unary", chunks(frame(randomBytes(65 * 1024))));
    assert.equal(recorder.error()?.code, Code.RESOURCE_EXHAUSTED);
  });

  it("upstream - HTTP/1.1 streams the request body and drops hop-by-hop headers", async () => {
    const recorder = recordingSink();
    await forwarder.forward(
      {
        head: create(RequestHeadSchema, {
          protocol: Protocol.HTTP,
          method: "POST",
          authority: "public.example",
          path: "/echo",
          headers: [
            { name: "content-type", value: "text/plain" },
            { name: "connection", value: "x-hop" },
            { name: "x-hop", value: "secret" },
            { name: "transfer-encoding", value: "chunked" },
          ],
        }),
        body: chunks(Buffer.from("part one, "), Buffer.from("part two")),
        signal: new AbortController().signal,
      },
      { name: "web", protocol: "http", addresses: [http.address], pick: "round_robin", healthCheck: null },
      recorder.sink,
    );
    assert.equal(recorder.error(), undefined);
    const head = recorder.events[0];
    assert.ok(head?.kind === "head" && head.head.status === 201);
    assert.equal(recorder.body(), "part one, part two");
    assert.equal(recorder.header("x-seen-host"), "public.example");
    assert.equal(recorder.header("x-seen-connection-token"), "absent");
    assert.match(recorder.header("x-seen-traceparent") ?? "", /^00-/);
    assert.equal(recorder.header("transfer-encoding"), undefined);
    assert.equal(recorder.events.at(-1)?.kind, "trailers");
  });

  it("upstream - SSE events arrive as the backend writes them (no buffering)", async () => {
    let sawFirst = false;
    const recorder = recordingSink((bytes) => {
      if (!sawFirst && bytes.toString().includes("first")) {
        sawFirst = true;
        // Only now may the backend send the second event: the first must not wait for the end.
        http.releaseSecondEvent();
      }
    });
    await forwarder.forward(
      {
        head: create(RequestHeadSchema, {
          protocol: Protocol.HTTP,
          method: "GET",
          authority: "public.example",
          path: "/sse",
          endStream: true,
          headers: [{ name: "accept", value: "text/event-stream" }],
        }),
        body: chunks(),
        signal: new AbortController().signal,
      },
      { name: "web", protocol: "http", addresses: [http.address], pick: "round_robin", healthCheck: null },
      recorder.sink,
    );
    assert.ok(sawFirst);
    assert.equal(recorder.header("content-type"), "text/event-stream");
    assert.equal(recorder.body(), "id: 1\ndata: first\n\nid: 2\ndata: second\n\n");
  });

  it("upstream - a WebSocket upgrade answers 101 and then carries raw frames both ways", async () => {
    const controller = new AbortController();
    let echoed: (bytes: Buffer) => void = () => undefined;
    const echo = new Promise<Buffer>((resolve) => {
      echoed = resolve;
    });
    const recorder = recordingSink((bytes) => echoed(bytes));
    // A masked client text frame "hi" (RFC 6455 section 5.2); the tunnel does not parse frames.
    const mask = Buffer.from([1, 2, 3, 4]);
    const payload = Buffer.from("hi");
    const masked = Buffer.from(payload.map((byte, index) => byte ^ mask[index % 4]!));
    const clientFrame = Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
    const closeFrame = Buffer.concat([Buffer.from([0x88, 0x80]), mask]);
    let sendClose: () => void = () => undefined;
    const closing = new Promise<void>((resolve) => {
      sendClose = resolve;
    });
    async function* body(): AsyncIterable<Uint8Array> {
      yield clientFrame;
      await closing;
      yield closeFrame;
    }
    const forwarding = forwarder.forward(
      {
        head: create(RequestHeadSchema, {
          protocol: Protocol.WEBSOCKET,
          method: "GET",
          authority: "public.example",
          path: "/ws",
          headers: [
            { name: "upgrade", value: "websocket" },
            { name: "connection", value: "Upgrade" },
            { name: "sec-websocket-key", value: randomBytes(16).toString("base64") },
            { name: "sec-websocket-version", value: "13" },
          ],
        }),
        body: body(),
        signal: controller.signal,
      },
      { name: "web", protocol: "http", addresses: [http.address], pick: "round_robin", healthCheck: null },
      recorder.sink,
    );
    const reply = await echo;
    assert.deepEqual(reply, Buffer.from([0x81, 2, ...payload]));
    const head = recorder.events[0];
    assert.ok(head?.kind === "head" && head.head.status === 101);
    assert.ok(recorder.header("sec-websocket-accept"));
    sendClose();
    await forwarding;
    assert.equal(recorder.events.at(-1)?.kind, "trailers", "the backend's close ends the exchange");
  });

  it("upstream - round robin alternates and least outstanding avoids a busy address", async () => {
    const second = await startGrpcBackend("b");
    try {
      const seenBy = async (upstream: UpstreamSpec) => {
        const recorder = recordingSink();
        await forwarder.forward(
          {
            head: echoRequestHead("Unary"),
            body: chunks(frame(Buffer.from("?"))),
            signal: new AbortController().signal,
          },
          upstream,
          recorder.sink,
        );
        return recorder.header("x-backend");
      };
      const roundRobin = grpcUpstream("rr", [backend.address, second.address], "round_robin");
      const picks = [
        await seenBy(roundRobin),
        await seenBy(roundRobin),
        await seenBy(roundRobin),
        await seenBy(roundRobin),
      ];
      assert.deepEqual(new Set([picks[0], picks[1]]), new Set(["a", "b"]));
      assert.equal(picks[2], picks[0]);
      assert.equal(picks[3], picks[1]);

      const least = grpcUpstream("least", [backend.address, second.address], "least_outstanding");
      const controller = new AbortController();
      const sleeping = backend.nextSleep();
      const secondSleeping = second.nextSleep();
      // One long call is outstanding on whichever address took it; the next calls all go to the other.
      const busy = forwarder.forward(
        { head: echoRequestHead("Sleep"), body: chunks(frame(Buffer.alloc(0))), signal: controller.signal },
        least,
        recordingSink().sink,
      );
      const busyName = await Promise.race([sleeping.then(() => "a"), secondSleeping.then(() => "b")]);
      const idle = busyName === "a" ? "b" : "a";
      assert.deepEqual([await seenBy(least), await seenBy(least), await seenBy(least)], [idle, idle, idle]);
      controller.abort();
      await busy;
    } finally {
      await second.close();
    }
  });

  it("upstream - health probes skip an address that reports NOT_SERVING and report the change", async () => {
    const second = await startGrpcBackend("b");
    const changes: string[] = [];
    const probing = createUpstreamForwarder({
      onHealthChange: (statuses) =>
        changes.push(statuses.map((status) => `${status.address}=${status.serving ? "up" : "down"}`).join(",")),
    });
    try {
      const upstream: UpstreamSpec = {
        name: "checked",
        protocol: "grpc",
        addresses: [backend.address, second.address],
        pick: "round_robin",
        healthCheck: { service: "test.Echo", intervalMs: 60_000, timeoutMs: 1_000 },
      };
      probing.setUpstreams([upstream]);
      await probing.probeNow();
      assert.deepEqual(
        probing.health().map((status) => status.serving),
        [true, true],
      );
      second.health.setStatus("test.Echo", "NOT_SERVING");
      await probing.probeNow();
      assert.deepEqual(
        probing.health().map((status) => [status.serving, status.detail]),
        [
          [true, ""],
          [false, "NOT_SERVING"],
        ],
      );
      assert.equal(changes.at(-1), `${backend.address}=up,${second.address}=down`);
      for (let index = 0; index < 4; index++) {
        const recorder = recordingSink();
        await probing.forward(
          {
            head: echoRequestHead("Unary"),
            body: chunks(frame(Buffer.from("?"))),
            signal: new AbortController().signal,
          },
          upstream,
          recorder.sink,
        );
        assert.equal(recorder.header("x-backend"), "a");
      }
      backend.health.setStatus("test.Echo", "NOT_SERVING");
      await probing.probeNow();
      const recorder = recordingSink();
      await probing.forward(
        { head: echoRequestHead("Unary"), body: chunks(frame(Buffer.from("?"))), signal: new AbortController().signal },
        upstream,
        recorder.sink,
      );
      assert.equal(recorder.error()?.code, Code.UNAVAILABLE);
      assert.match(recorder.error()?.message ?? "", /no healthy address/);
    } finally {
      backend.health.setStatus("test.Echo", "SERVING");
      probing.close();
      await second.close();
    }
  });

  it("upstream - https:// backends: gRPC over TLS (h2) and HTTP/1.1 over TLS, trusted through caPath", async () => {
    const tls = createSelfSigned();
    const grpcServer = new grpc.Server();
    grpcServer.addService(echoService, {
      Unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) =>
        callback(null, call.request),
    });
    const grpcPort = await new Promise<number>((resolve, reject) =>
      grpcServer.bindAsync(
        "127.0.0.1:0",
        grpc.ServerCredentials.createSsl(null, [
          { cert_chain: readFileSync(tls.certPath), private_key: readFileSync(tls.keyPath) },
        ]),
        (error, port) => (error ? reject(error) : resolve(port)),
      ),
    );
    const httpsServer = createHttpsServer(
      { cert: readFileSync(tls.certPath), key: readFileSync(tls.keyPath) },
      (req, res) => {
        res.writeHead(200, { "content-type": "text/plain" });
        req.pipe(res);
      },
    );
    httpsServer.listen(0, "127.0.0.1");
    await once(httpsServer, "listening");
    const httpsPort = (httpsServer.address() as AddressInfo).port;
    const secure = createUpstreamForwarder({ tls: { caPath: tls.certPath } });
    try {
      const grpcRecorder = recordingSink();
      await secure.forward(
        {
          head: echoRequestHead("Unary", { authority: "localhost" }),
          body: chunks(frame(Buffer.from("secret"))),
          signal: new AbortController().signal,
        },
        grpcUpstream("tls-grpc", [`https://localhost:${grpcPort}`]),
        grpcRecorder.sink,
      );
      assert.equal(grpcRecorder.error(), undefined, grpcRecorder.error()?.message);
      assert.deepEqual(messages(Buffer.from(grpcRecorder.body(), "latin1")).map(String), ["secret"]);
      assert.equal(grpcRecorder.trailer("grpc-status"), "0");

      const httpRecorder = recordingSink();
      await secure.forward(
        {
          head: create(RequestHeadSchema, {
            protocol: Protocol.HTTP,
            method: "POST",
            authority: "localhost",
            path: "/",
          }),
          body: chunks(Buffer.from("over tls")),
          signal: new AbortController().signal,
        },
        {
          name: "tls-web",
          protocol: "http",
          addresses: [`https://localhost:${httpsPort}`],
          pick: "round_robin",
          healthCheck: null,
        },
        httpRecorder.sink,
      );
      assert.equal(httpRecorder.error(), undefined, httpRecorder.error()?.message);
      assert.equal(httpRecorder.body(), "over tls");
    } finally {
      secure.close();
      grpcServer.forceShutdown();
      httpsServer.closeAllConnections();
      httpsServer.close();
      rmSync(tls.dir, { recursive: true, force: true });
    }
  });
});
