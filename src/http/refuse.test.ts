// The one refusal writer, against real node:http / node:http2 servers and clients: each protocol gets the same
// error in its own words (gRPC and gRPC-Web trailers-only, Connect unary and streaming, Google JSON, raw HTTP/1.1
// bytes, a WebSocket close frame, GOAWAY).
import assert from "node:assert/strict";
import { createServer as createHttpServer, request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { createServer as createHttp2Server, connect as http2Connect, type ServerHttp2Stream } from "node:http2";
import { type AddressInfo, createServer as createNetServer, connect as netConnect } from "node:net";
import { after, before, describe, it } from "node:test";
import WebSocket, { WebSocketServer } from "ws";
import { Code, StreamgateError } from "../errors/index.js";
import { connectCodeName, refuse, webSocketCloseReason, wireProtocolOf } from "./refuse.js";

const denied = new StreamgateError(Code.PERMISSION_DENIED, "token may not publish to orders: ask for publish:orders", {
  reason: "GRANT_MISSING",
});

describe("refuse - one writer, every protocol", () => {
  const closers: (() => void)[] = [];
  let http1Port = 0;
  let http2Port = 0;
  before(async () => {
    const http1 = createHttpServer((request, response) => refuse({ request, response }, denied));
    const http2 = createHttp2Server();
    http2.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
      stream.resume();
      refuse({ stream, headers }, denied);
    });
    await Promise.all([
      new Promise<void>((resolve) => http1.listen(0, "127.0.0.1", resolve)),
      new Promise<void>((resolve) => http2.listen(0, "127.0.0.1", resolve)),
    ]);
    http1Port = (http1.address() as AddressInfo).port;
    http2Port = (http2.address() as AddressInfo).port;
    closers.push(
      () => http1.close(),
      () => http2.close(),
    );
  });
  after(() => {
    for (const close of closers) close();
  });

  const http1Call = (headers: Record<string, string>) =>
    new Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      const request = httpRequest(
        { port: http1Port, host: "127.0.0.1", method: "POST", path: "/x", headers, agent: false },
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("end", () =>
            resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }),
          );
        },
      );
      request.on("error", reject);
      request.end();
    });

  it("refuse - wire protocols are told apart by content type and Connect's version header", () => {
    assert.equal(wireProtocolOf({ "content-type": "application/grpc+proto" }), "grpc");
    assert.equal(wireProtocolOf({ "content-type": "application/grpc-web-text" }), "grpc-web");
    assert.equal(wireProtocolOf({ "content-type": "application/connect+json" }), "connect-stream");
    assert.equal(
      wireProtocolOf({ "content-type": "application/json", "connect-protocol-version": "1" }),
      "connect-unary",
    );
    assert.equal(wireProtocolOf({ "content-type": "application/json" }), "http");
    assert.equal(connectCodeName(Code.CANCELLED), "canceled");
    assert.equal(connectCodeName(Code.RESOURCE_EXHAUSTED), "resource_exhausted");
  });

  it("refuse - gRPC on a bare HTTP/2 stream is trailers-only with the spec's percent-encoding", async () => {
    const session = http2Connect(`http://127.0.0.1:${http2Port}`);
    try {
      const headers = await new Promise<IncomingHttpHeaders>((resolve, reject) => {
        const stream = session.request({ ":method": "POST", ":path": "/p.S/M", "content-type": "application/grpc" });
        stream.on("response", resolve);
        stream.on("error", reject);
        stream.end();
        stream.resume();
      });
      assert.equal(headers[":status"], 200);
      assert.equal(headers["content-type"], "application/grpc");
      assert.equal(headers["grpc-status"], "7");
      assert.equal(headers["grpc-message"], denied.message, "printable ASCII stays as it is (':' included)");
    } finally {
      session.close();
    }
  });

  it("refuse - gRPC-Web over HTTP/1.1 echoes its content type; Connect unary and streaming get Connect errors", async () => {
    const grpcWeb = await http1Call({ "content-type": "application/grpc-web+proto" });
    assert.equal(grpcWeb.status, 200);
    assert.equal(grpcWeb.headers["content-type"], "application/grpc-web+proto");
    assert.equal(grpcWeb.headers["grpc-status"], "7");

    const unary = await http1Call({ "content-type": "application/json", "connect-protocol-version": "1" });
    assert.equal(unary.status, 403);
    assert.deepEqual(JSON.parse(String(unary.body)), { code: "permission_denied", message: denied.message });

    const streaming = await http1Call({ "content-type": "application/connect+json" });
    assert.equal(streaming.status, 200);
    assert.equal(streaming.body[0], 0x02, "an end-stream envelope");
    assert.equal(streaming.body.readUInt32BE(1), streaming.body.length - 5);
    assert.deepEqual(JSON.parse(String(streaming.body.subarray(5))), {
      error: { code: "permission_denied", message: denied.message },
    });
  });

  it("refuse - anything else gets Google's JSON error; UNAUTHENTICATED adds www-authenticate", async () => {
    const json = await http1Call({ "content-type": "application/json" });
    assert.equal(json.status, 403);
    const body = JSON.parse(String(json.body));
    assert.equal(body.error.status, "PERMISSION_DENIED");
    assert.equal(body.error.message, denied.message);

    const server = createHttpServer((request, response) =>
      refuse({ request, response }, new StreamgateError(Code.UNAUTHENTICATED, "no token", { reason: "TOKEN_MISSING" })),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, {
        headers: { connection: "close" },
      });
      assert.equal(response.status, 401);
      assert.equal(response.headers.get("www-authenticate"), 'Bearer realm="streamgate"');
      await response.text();
    } finally {
      server.close();
    }
  });

  it("refuse - a bare socket gets a whole HTTP/1.1 response (with retry-after when the error names one), then closes", async () => {
    const limited = new StreamgateError(Code.RESOURCE_EXHAUSTED, "too many connections", {
      reason: "TOO_MANY_CONNECTIONS",
      details: { retryAfterSeconds: "1" },
    });
    const server = createNetServer((socket) => socket.once("data", () => refuse({ socket }, limited)));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const text = await new Promise<string>((resolve, reject) => {
        const socket = netConnect((server.address() as AddressInfo).port, "127.0.0.1");
        let received = "";
        socket.on("data", (chunk) => {
          received += String(chunk);
        });
        socket.on("end", () => resolve(received));
        socket.on("error", reject);
        socket.write("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
      });
      assert.match(text, /^HTTP\/1\.1 429 Too Many Requests\r\n/);
      assert.match(text, /\r\nretry-after: 1\r\n/);
      assert.match(text, /\r\nconnection: close\r\n/);
      const body = JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4));
      assert.equal(body.error.details[0].reason, "TOO_MANY_CONNECTIONS");
    } finally {
      server.close();
    }
  });

  it("refuse - a WebSocket gets the mapped close code and `STATUS: message` cut to 123 bytes", async () => {
    const long = new StreamgateError(Code.UNAUTHENTICATED, `token expired ${"é".repeat(200)}`);
    const server = new WebSocketServer({ port: 0, host: "127.0.0.1" });
    server.on("connection", (webSocket) => refuse({ webSocket }, long));
    await new Promise<void>((resolve) => server.once("listening", resolve));
    try {
      const { code, reason } = await new Promise<{ code: number; reason: string }>((resolve) => {
        const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
        client.on("close", (closeCode, closeReason) => resolve({ code: closeCode, reason: String(closeReason) }));
      });
      assert.equal(code, 1008);
      assert.ok(reason.startsWith("UNAUTHENTICATED: token expired"));
      assert.ok(Buffer.byteLength(reason) <= 123);
      assert.equal(reason, webSocketCloseReason(long));
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("refuse - an HTTP/2 session gets GOAWAY after the streams already answered", async () => {
    const server = createHttp2Server();
    server.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
      stream.resume();
      refuse({ stream, headers }, denied);
      refuse({ session: stream.session! }, denied);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const session = http2Connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    try {
      const goaway = new Promise<number>((resolve) => session.once("goaway", (code: number) => resolve(code)));
      const status = await new Promise<number>((resolve, reject) => {
        const stream = session.request({ ":method": "GET", ":path": "/" });
        stream.on("response", (headers) => resolve(Number(headers[":status"])));
        stream.on("error", reject);
        stream.resume();
      });
      assert.equal(status, 403, "the answered stream keeps its answer");
      assert.equal(await goaway, 0, "GOAWAY NO_ERROR");
    } finally {
      session.destroy();
      server.close();
    }
  });
});
