// Three streamgate instances on one nats-server (jetstream engine): live streams across instances and resume after an instance closes.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createLiveClients, type grpc, type LiveClients, type Recorder, record } from "../harness/live-clients.js";
import { startNatsPeer, startNatsServer } from "../harness/nats-server.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";
import { waitFor } from "../harness/wait-for.js";
import { decode, encode, fetchClose, SseReader, WsClient } from "./streams-clients.js";

interface WireEvent {
  kind: "message" | "gap" | "heartbeat";
  message?: { offset: string; data: Buffer };
}

const PROJECT = "live";

const { peer: nats, missing } = await startNatsPeer(() => startNatsServer());
if (missing) console.warn(`jetstream-live: ${missing}`);

describe("jetstream live", { skip: missing, timeout: 60_000 }, () => {
  let a: TestServer;
  let b: TestServer;
  let c: TestServer;
  let clientsB: LiveClients;
  const calls: grpc.ClientReadableStream<unknown>[] = [];

  before(async () => {
    const start = () => startTestServer({ engine: "jetstream", natsUrl: nats!.url, heartbeatMs: 300 });
    [a, b, c] = await Promise.all([start(), start(), start()]);
    clientsB = createLiveClients(b.hostPort);
  });

  after(async () => {
    for (const call of calls) call.cancel();
    clientsB?.close();
    await Promise.all([a?.close(), b?.close(), c?.close()]);
    await nats?.stop();
  });

  const topicName = (id: string) => `projects/${PROJECT}/topics/${id}`;
  const eventsUrl = (server: TestServer, id: string) => `${server.url}/v1/projects/${PROJECT}/topics/${id}/events`;

  async function newTopic(): Promise<string> {
    const id = uniqueName("live");
    await a.server.engine.createTopic({ name: topicName(id) });
    // The catalog reaches the other instances through the KV watch (milliseconds).
    await waitFor(async () => (await b.server.engine.topicStats(topicName(id)).catch(() => null)) !== null, {
      timeoutMs: 5_000,
      describe: () => `topic ${id} visible on B`,
    });
    await waitFor(async () => (await c.server.engine.topicStats(topicName(id)).catch(() => null)) !== null, {
      timeoutMs: 5_000,
      describe: () => `topic ${id} visible on C`,
    });
    return id;
  }

  async function publishOn(server: TestServer, id: string, texts: string[]): Promise<void> {
    const response = await fetchClose(`${server.url}/v1/projects/${PROJECT}/topics/${id}:publish`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ messages: texts.map((text) => ({ data: encode(text) })) }),
    });
    assert.equal(response.status, 200, await response.text());
  }

  function grpcSubscribe(request: Record<string, unknown>): Recorder<WireEvent> {
    const call = (
      clientsB.events as unknown as Record<string, (r: unknown) => grpc.ClientReadableStream<unknown>>
    ).Subscribe!.call(clientsB.events, request);
    calls.push(call);
    return record<WireEvent>(call);
  }
  const grpcTexts = (recorder: Recorder<WireEvent>) =>
    recorder.items.filter((event) => event.kind === "message").map((event) => event.message!.data.toString());

  test("jetstream live - a message published on A reaches SSE on B, WebSocket on C and gRPC Subscribe on B", async () => {
    const id = await newTopic();
    const sse = await SseReader.open(eventsUrl(b, id));
    assert.equal(sse.status, 200);
    assert.match(sse.header("content-type"), /^text\/event-stream/);
    const ws = await WsClient.open(c.url);
    ws.send({ type: "subscribe", id: "s", topic: topicName(id), from: "latest" });
    await ws.until((client) => client.frames.some((frame) => frame.type === "subscribed"));
    const grpcCall = grpcSubscribe({ topic: topicName(id), position: { latest: {} } });
    // A heartbeat proves each live stream is attached before publishing.
    await sse.until((reader) => reader.comments > 0);
    await waitFor(() => grpcCall.items.some((event) => event.kind === "heartbeat") || grpcCall.ended, {
      timeoutMs: 5_000,
      describe: () => "a gRPC heartbeat",
    });
    assert.equal(grpcCall.error, null);

    await publishOn(a, id, ["hello from A", "second"]);
    await sse.until((reader) => reader.messages().length >= 2);
    await ws.until((client) => client.messages("s").length >= 2);
    await waitFor(() => grpcTexts(grpcCall).length >= 2 || grpcCall.ended, {
      timeoutMs: 10_000,
      describe: () => `${grpcTexts(grpcCall).length}/2 gRPC messages, error ${grpcCall.error?.message}`,
    });
    assert.deepEqual(
      sse.messages().map((message) => decode(message.data)),
      ["hello from A", "second"],
    );
    assert.deepEqual(
      ws.messages("s").map((message) => decode(message.data)),
      ["hello from A", "second"],
    );
    assert.deepEqual(grpcTexts(grpcCall), ["hello from A", "second"]);
    sse.close();
    await ws.close();
  });

  test("jetstream live - long poll with wait=0 on B answers with the history published on A", async () => {
    const id = await newTopic();
    await publishOn(
      a,
      id,
      Array.from({ length: 30 }, (_, index) => `m${index + 1}`),
    );
    const body = (await (await fetchClose(`${eventsUrl(b, id)}?from=0&wait=0`)).json()) as {
      messages: { offset: string; data: string }[];
      nextFrom: string;
    };
    assert.equal(body.messages.length, 30);
    assert.equal(body.nextFrom, "30");
    assert.deepEqual(
      body.messages.map((message) => decode(message.data)),
      Array.from({ length: 30 }, (_, index) => `m${index + 1}`),
    );
  });

  test("jetstream live - SSE and WebSocket clients of a closed instance resume on others from their cursor, no gap, no duplicate", async () => {
    const id = await newTopic();
    const d = await startTestServer({ engine: "jetstream", natsUrl: nats!.url, heartbeatMs: 300 });
    let dClosed = false;
    try {
      await waitFor(async () => (await d.server.engine.topicStats(topicName(id)).catch(() => null)) !== null, {
        timeoutMs: 5_000,
        describe: () => "topic visible on D",
      });
      const sse = await SseReader.open(`${eventsUrl(d, id)}?from=0`);
      const ws = await WsClient.open(d.url);
      ws.send({ type: "subscribe", id: "r", topic: topicName(id), from: "0" });
      await ws.until((client) => client.frames.some((frame) => frame.type === "subscribed"));

      const total = 200;
      const texts = Array.from({ length: total }, (_, index) => `m${index + 1}`);
      // Keep publishing on A while D goes away.
      const publishing = (async () => {
        for (let index = 0; index < total; index += 10) {
          await publishOn(a, id, texts.slice(index, index + 10));
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })();
      await sse.until((reader) => reader.messages().length >= 30, 20_000);
      await ws.until((client) => client.messages("r").length >= 30, 20_000);
      await d.close({ allowOpenConnections: true, graceMs: 0 });
      dClosed = true;
      await sse.until((reader) => reader.ended, 10_000).catch(() => undefined);
      sse.close();
      await ws.closed(10_000).catch(() => undefined);

      const sseSeen = sse.messages();
      const wsSeen = ws.messages("r");
      const sseCursor = sse.events.filter((event) => event.event === "message").at(-1)!.id!;
      const wsCursor = wsSeen.at(-1)!.offset;

      const sseResumed = await SseReader.open(eventsUrl(b, id), { "last-event-id": sseCursor });
      const wsResumed = await WsClient.open(c.url);
      wsResumed.send({ type: "subscribe", id: "r", topic: topicName(id), from: wsCursor });
      await publishing;
      await sseResumed.until((reader) => sseSeen.length + reader.messages().length >= total, 20_000);
      await wsResumed.until((client) => wsSeen.length + client.messages("r").length >= total, 20_000);

      const sseAll = [...sseSeen, ...sseResumed.messages()];
      const wsAll = [...wsSeen, ...wsResumed.messages("r")];
      const expectedOffsets = Array.from({ length: total }, (_, index) => String(index + 1));
      assert.deepEqual(
        sseAll.map((message) => message.offset),
        expectedOffsets,
        "SSE: every offset once, in order",
      );
      assert.deepEqual(
        sseAll.map((message) => decode(message.data)),
        texts,
      );
      assert.deepEqual(
        wsAll.map((message) => message.offset),
        expectedOffsets,
        "WebSocket: every offset once, in order",
      );
      assert.deepEqual(
        wsAll.map((message) => decode(message.data)),
        texts,
      );
      assert.ok(!sseResumed.events.some((event) => event.event === "gap"), "no gap on resume");
      assert.ok(!wsResumed.frames.some((frame) => frame.type === "gap"), "no gap frame on resume");
      sseResumed.close();
      await wsResumed.close();
    } finally {
      if (!dClosed) await d.close({ allowOpenConnections: true });
    }
  });
});
