// Logs and traces: stream open/close lines (SSE, WebSocket, slow consumer), connection lines, and traceparent from publish to delivery.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { SignJWT } from "jose";
import { resolveServerOptions, type ServerOptions } from "../../src/config/index.js";
import { createServer, type StreamgateServer } from "../../src/server/index.js";
import { createGrpcJsClients } from "../harness/grpc-js-clients.js";
import { createLiveClients, record } from "../harness/live-clients.js";
import { captureLogs, type LogCapture, type LogLine } from "../harness/log-capture.js";
import { uniqueName } from "../harness/unique-name.js";
import { waitFor, withTimeout } from "../harness/wait-for.js";
import { encode, fetchClose, SseReader, WsClient } from "./streams-clients.js";

const TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const OTHER_TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

interface Running {
  server: StreamgateServer;
  url: string;
  hostPort: string;
  logs: LogCapture;
  close(): Promise<void>;
}

async function start(options: Partial<ServerOptions> = {}): Promise<Running> {
  const dataDir = mkdtempSync(join(tmpdir(), "streamgate-observability-"));
  const logs = captureLogs("debug");
  const server = await createServer(resolveServerOptions({ host: "127.0.0.1", port: 0, dataDir, ...options }), {
    logger: logs.logger,
  });
  const address = await server.listen();
  return {
    server,
    url: address.url,
    hostPort: `127.0.0.1:${address.port}`,
    logs,
    async close() {
      await waitFor(() => server.connections() === 0, {
        timeoutMs: 3_000,
        describe: () => `${server.connections()} client connection(s) still open`,
      }).finally(() => server.close());
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function rest(url: string, method: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await withTimeout(
    fetchClose(url, {
      method,
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    }),
    5_000,
    `${method} ${url}`,
  );
  const json = (await response.json()) as Record<string, unknown>;
  assert.ok(response.ok, `${method} ${url}: ${JSON.stringify(json)}`);
  return json;
}

type PublishCall = (
  request: object,
  metadata: grpc.Metadata,
  callback: (error: Error | null, value: unknown) => void,
) => void;

const streamLine = (message: string, transport: string, topic: string) => (line: LogLine) =>
  line.msg === message && line.transport === transport && line.topic === topic;

describe("observability", () => {
  it("observability - SSE and WebSocket streams log open and close with reason, duration, messages sent and trace id", async () => {
    const running = await start();
    const topic = `projects/obs/topics/${uniqueName("logs")}`;
    let sse: SseReader | undefined;
    let ws: WsClient | undefined;
    try {
      await rest(`${running.url}/v1/${topic}`, "PUT", {});
      sse = await SseReader.open(`${running.url}/v1/${topic}/events?from=earliest`, { traceparent: TRACEPARENT });
      ws = await WsClient.open(running.url, { headers: { traceparent: OTHER_TRACEPARENT } });
      ws.send({ type: "subscribe", id: "a", topic, from: "earliest" });
      await ws.until((client) => client.frames.some((frame) => frame.type === "subscribed"));

      const sseOpened = await running.logs.waitForLine(streamLine("stream opened", "sse", topic), "SSE stream opened");
      assert.equal(sseOpened.level, 30, "stream lines are at info");
      assert.equal(sseOpened.trace_id, TRACE_ID);
      assert.equal(sseOpened.from, "earliest");
      const wsOpened = await running.logs.waitForLine(streamLine("stream opened", "websocket", topic), "WS opened");
      assert.equal(wsOpened.trace_id, "0af7651916cd43dd8448eb211c80319c", "the upgrade request's trace id");

      await rest(`${running.url}/v1/${topic}:publish`, "POST", {
        messages: [{ data: encode("one") }, { data: encode("two") }],
      });
      await sse.until((reader) => reader.messages().length === 2);
      await ws.until((client) => client.messages("a").length === 2);

      sse.close();
      await ws.close();
      const sseClosed = await running.logs.waitForLine(streamLine("stream closed", "sse", topic), "SSE stream closed");
      assert.equal(sseClosed.reason, "closed");
      assert.equal(sseClosed.messagesSent, 2);
      assert.equal(sseClosed.lastOffset, 2);
      assert.equal(typeof sseClosed.durationMs, "number");
      assert.ok((sseClosed.durationMs as number) >= 0);
      assert.equal(sseClosed.trace_id, TRACE_ID);
      const wsClosed = await running.logs.waitForLine(streamLine("stream closed", "websocket", topic), "WS closed");
      assert.equal(wsClosed.reason, "closed");
      assert.equal(wsClosed.messagesSent, 2);
      assert.equal(typeof wsClosed.durationMs, "number");

      // Connection lines are at debug, one open and one close per TCP connection, naming the transport.
      const wsConnection = await running.logs.waitForLine(
        (line) => line.msg === "connection closed" && line.transport === "websocket",
        "WebSocket connection closed",
      );
      assert.equal(wsConnection.level, 20);
      assert.equal(wsConnection.remoteAddress, "127.0.0.1");
      assert.equal(typeof wsConnection.durationMs, "number");
      assert.equal(typeof wsConnection.reason, "string");
      assert.ok(running.logs.lines().some((line) => line.msg === "connection opened" && line.transport === "http1"));
    } finally {
      sse?.close();
      await ws?.close();
      await running.close();
    }
  });

  it("observability - a WebSocket client too slow to keep up is logged at warn with reason SLOW_CONSUMER and counted per transport", async () => {
    const running = await start({ maxStreamBufferBytes: 256 * 1024, heartbeatMs: 30_000 });
    const topic = `projects/obs/topics/${uniqueName("slow")}`;
    let ws: WsClient | undefined;
    try {
      await running.server.engine.createTopic({ name: topic });
      ws = await WsClient.open(running.url);
      ws.send({ type: "subscribe", id: "s", topic, from: "latest" });
      await ws.until((client) => client.frames.some((frame) => frame.type === "subscribed"));
      // Stop reading for good: ws resumes its socket whenever its own receiver drains, so that resume is disabled.
      const raw = (ws.socket as unknown as { _socket: { pause(): unknown; resume(): unknown } })._socket;
      const resume = raw.resume.bind(raw);
      raw.pause();
      raw.resume = () => raw;
      const droppedByHub = async () =>
        /^streamgate_slow_consumers_dropped_total 1$/m.test(await (await fetchClose(`${running.url}/metrics`)).text());
      const payload = Buffer.alloc(4000, "p");
      // Up to 80 MB (loopback sockets here take 36 MB before the server's own buffers fill) in pages of 20 × 4 KB, under
      // half the 256 KiB buffer: the paused client falls behind page by page. (One Publish larger than the buffer
      // would not make a client that is waiting for events a slow consumer: it reads that batch from the log.)
      for (let batch = 0; batch < 1_000; batch++) {
        if (batch % 10 === 0 && (await droppedByHub())) break;
        await running.server.engine.publish(
          topic,
          Array.from({ length: 20 }, () => ({ data: payload, attributes: {}, orderingKey: "" })),
        );
        await new Promise((resolve) => setImmediate(resolve)); // the live tail reads each page as it comes
      }
      assert.ok(await droppedByHub(), "the hub dropped the paused client");
      // Reading again, the client takes what was sent, then the close (1013): the stream's close line is logged.
      raw.resume = resume;
      resume();
      const dropped = await running.logs.waitForLine(
        (line) => line.msg === "stream closed" && line.reason === "SLOW_CONSUMER",
        "slow consumer stream closed",
        10_000,
      );
      assert.equal(dropped.level, 40);
      assert.equal(dropped.transport, "websocket");
      const metrics = await (await fetchClose(`${running.url}/metrics`)).text();
      assert.match(metrics, /^streamgate_slow_clients_dropped_total\{transport="websocket"\} 1$/m);
    } finally {
      ws?.socket.terminate();
      await running.close();
    }
  });

  it("observability - traceparent from gRPC metadata, REST headers and WebSocket frames is stored as a delivery attribute", async () => {
    const running = await start();
    const topic = `projects/obs/topics/${uniqueName("trace")}`;
    const subscription = `projects/obs/subscriptions/${uniqueName("trace")}`;
    const clients = createGrpcJsClients(running.hostPort);
    let ws: WsClient | undefined;
    try {
      await rest(`${running.url}/v1/${topic}`, "PUT", {});
      await rest(`${running.url}/v1/${subscription}`, "PUT", { topic });

      const metadata = new grpc.Metadata();
      metadata.set("traceparent", TRACEPARENT);
      metadata.set("tracestate", "vendor=grpc");
      await withTimeout(
        new Promise((resolve, reject) =>
          (clients.publisher as unknown as Record<string, PublishCall>).publish!(
            { topic, messages: [{ data: Buffer.from("grpc"), attributes: { via: "grpc" } }] },
            metadata,
            (error: Error | null, value: unknown) => (error === null ? resolve(value) : reject(error)),
          ),
        ),
        5_000,
        "gRPC Publish",
      );
      await rest(
        `${running.url}/v1/${topic}:publish`,
        "POST",
        {
          messages: [
            { data: encode("rest"), attributes: { via: "rest" } },
            { data: encode("own"), attributes: { via: "own", traceparent: OTHER_TRACEPARENT } },
          ],
        },
        { traceparent: TRACEPARENT },
      );
      await rest(`${running.url}/v1/${topic}:publish`, "POST", {
        messages: [{ data: encode("plain"), attributes: { via: "plain" } }],
      });
      ws = await WsClient.open(running.url);
      ws.send({
        type: "publish",
        ref: "p",
        topic,
        traceparent: OTHER_TRACEPARENT,
        messages: [{ data: encode("ws"), attributes: { via: "ws" } }],
      });
      await ws.until((client) => client.frames.some((frame) => frame.type === "published"));

      const pulled = await rest(`${running.url}/v1/${subscription}:pull`, "POST", {
        maxMessages: 10,
        returnImmediately: true,
      });
      const byVia = new Map(
        (pulled.receivedMessages as { message: { attributes: Record<string, string> } }[]).map((received) => [
          received.message.attributes.via,
          received.message.attributes,
        ]),
      );
      assert.deepEqual(byVia.get("grpc"), { via: "grpc", traceparent: TRACEPARENT, tracestate: "vendor=grpc" });
      assert.deepEqual(byVia.get("rest"), { via: "rest", traceparent: TRACEPARENT });
      assert.deepEqual(
        byVia.get("own"),
        { via: "own", traceparent: OTHER_TRACEPARENT },
        "the client's own attribute wins",
      );
      assert.deepEqual(byVia.get("plain"), { via: "plain" }, "no traceparent in, none made up");
      assert.deepEqual(byVia.get("ws"), { via: "ws", traceparent: OTHER_TRACEPARENT });
    } finally {
      clients.close();
      await ws?.close();
      await running.close();
    }
  });

  it("observability - Events/PublishStream stores the call's traceparent and Events/Subscribe delivers it and logs the stream", async () => {
    const running = await start();
    const topic = `projects/obs/topics/${uniqueName("events")}`;
    const clients = createLiveClients(running.hostPort);
    const events = clients.events as unknown as Record<string, (...args: unknown[]) => NodeJS.EventEmitter>;
    let subscribe: (NodeJS.EventEmitter & { cancel(): void }) | undefined;
    try {
      await running.server.engine.createTopic({ name: topic });
      const subscribeMetadata = new grpc.Metadata();
      subscribeMetadata.set("traceparent", OTHER_TRACEPARENT);
      subscribe = events.subscribe!(
        { topic, position: { earliest: true } },
        subscribeMetadata,
      ) as NodeJS.EventEmitter & {
        cancel(): void;
      };
      const received = record<{ message?: { attributes: Record<string, string> } }>(subscribe);
      await running.logs.waitForLine(streamLine("stream opened", "grpc", topic), "gRPC stream opened");

      const metadata = new grpc.Metadata();
      metadata.set("traceparent", TRACEPARENT);
      await withTimeout(
        new Promise((resolve, reject) => {
          const call = events.publishStream!(metadata, (error: Error | null, value: unknown) =>
            error === null ? resolve(value) : reject(error),
          ) as NodeJS.EventEmitter & { write(request: object): void; end(): void };
          call.write({ topic, messages: [{ data: Buffer.from("stream"), attributes: { via: "publish-stream" } }] });
          call.end();
        }),
        5_000,
        "Events/PublishStream",
      );
      await waitFor(() => received.items.some((item) => item.message !== undefined), {
        timeoutMs: 5_000,
        describe: () => `Subscribe got ${JSON.stringify(received.items)} (${received.error?.message ?? "no error"})`,
      });
      const delivered = received.items.find((item) => item.message !== undefined)!.message!;
      assert.deepEqual(delivered.attributes, { via: "publish-stream", traceparent: TRACEPARENT });

      subscribe.cancel();
      const closed = await running.logs.waitForLine(streamLine("stream closed", "grpc", topic), "gRPC stream closed");
      assert.equal(closed.trace_id, "0af7651916cd43dd8448eb211c80319c");
      assert.equal(closed.messagesSent, 1);
      assert.equal(closed.reason, "closed");
    } finally {
      subscribe?.cancel();
      clients.close();
      await running.close();
    }
  });

  it("observability - a StreamingPull stream logs open and close with subscription, trace id and messages sent", async () => {
    const running = await start();
    const topic = `projects/obs/topics/${uniqueName("pull")}`;
    const subscription = `projects/obs/subscriptions/${uniqueName("pull")}`;
    const clients = createGrpcJsClients(running.hostPort);
    let call: (NodeJS.EventEmitter & { write(request: object): void; cancel(): void }) | undefined;
    try {
      await running.server.engine.createTopic({ name: topic });
      await rest(`${running.url}/v1/${subscription}`, "PUT", { topic });
      const metadata = new grpc.Metadata();
      metadata.set("traceparent", TRACEPARENT);
      call = (clients.subscriber as unknown as Record<string, (metadata: grpc.Metadata) => typeof call>).streamingPull!(
        metadata,
      );
      const received = record<{ receivedMessages: { message: { attributes: Record<string, string> } }[] }>(call!);
      call!.write({ subscription, streamAckDeadlineSeconds: 10 });
      await running.logs.waitForLine(
        (line) => line.msg === "stream opened" && line.subscription === subscription,
        "StreamingPull opened",
      );
      await rest(
        `${running.url}/v1/${topic}:publish`,
        "POST",
        { messages: [{ data: encode("pulled") }] },
        {
          traceparent: OTHER_TRACEPARENT,
        },
      );
      await waitFor(() => received.items.some((item) => item.receivedMessages.length > 0), {
        timeoutMs: 5_000,
        describe: () => `StreamingPull got nothing (${received.error?.message ?? "no error"})`,
      });
      const attributes = received.items.find((item) => item.receivedMessages.length > 0)!.receivedMessages[0]!.message
        .attributes;
      assert.equal(attributes.traceparent, OTHER_TRACEPARENT, "the publisher's trace, not the subscriber's");
      call!.cancel();
      const closed = await running.logs.waitForLine(
        (line) => line.msg === "stream closed" && line.subscription === subscription,
        "StreamingPull closed",
      );
      assert.equal(closed.transport, "streaming-pull");
      assert.equal(closed.level, 30);
      assert.equal(closed.trace_id, TRACE_ID);
      assert.equal(closed.messagesSent, 1);
      assert.equal(closed.reason, "closed");
      assert.equal(typeof closed.durationMs, "number");
    } finally {
      call?.cancel();
      clients.close();
      await running.close();
    }
  });

  it("observability - with auth on, stream lines name the principal of the SSE request and of the WebSocket upgrade", async () => {
    const secret = "observability-test-secret-of-enough-length";
    const running = await start({ authSecret: secret });
    const topic = `projects/obs/topics/${uniqueName("principal")}`;
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ streamgate: { admin: ["*"] } })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("carol")
      .setIssuedAt(now - 10)
      .setExpirationTime(now + 300)
      .sign(new TextEncoder().encode(secret));
    const authorization = `Bearer ${token}`;
    let sse: SseReader | undefined;
    let ws: WsClient | undefined;
    try {
      await running.server.engine.createTopic({ name: topic });
      sse = await SseReader.open(`${running.url}/v1/${topic}/events`, { authorization });
      assert.equal(sse.status, 200);
      ws = await WsClient.open(running.url, { headers: { authorization } });
      ws.send({ type: "subscribe", id: "p", topic });
      await ws.until((client) => client.frames.some((frame) => frame.type === "subscribed"));
      for (const transport of ["sse", "websocket"]) {
        const opened = await running.logs.waitForLine(
          streamLine("stream opened", transport, topic),
          `${transport} opened`,
        );
        assert.match(String(opened.principal), /carol/, `${transport} line names the principal`);
      }
    } finally {
      sse?.close();
      await ws?.close();
      await running.close();
    }
  });

  it("observability - streams ended by a drain are logged with reason shutdown", async () => {
    const running = await start();
    const topic = `projects/obs/topics/${uniqueName("drain")}`;
    let sse: SseReader | undefined;
    try {
      await running.server.engine.createTopic({ name: topic });
      sse = await SseReader.open(`${running.url}/v1/${topic}/events`);
      await running.logs.waitForLine(streamLine("stream opened", "sse", topic), "SSE opened");
      await running.server.drain(3_000);
      const closed = await running.logs.waitForLine(streamLine("stream closed", "sse", topic), "SSE closed");
      assert.equal(closed.reason, "shutdown");
    } finally {
      sse?.close();
      await running.close();
    }
  });
});
