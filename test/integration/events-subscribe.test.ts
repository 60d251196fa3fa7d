// streamgate.v1.Events/Subscribe driven by @grpc/grpc-js (our .proto) and by a Connect-protocol client over HTTP/1.1.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import type { EmbeddedEngine } from "../../src/engines/embedded/index.js";
import { Events } from "../../src/gen/streamgate/v1/events_pb.js";
import { createLiveClients, grpc, type LiveClients, type Recorder, record } from "../harness/live-clients.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";
import { delay, waitFor } from "../harness/wait-for.js";

interface WireMessage {
  offset: string;
  messageId: string;
  attributes: Record<string, string>;
  data: Buffer;
  publishTime: { seconds: string; nanos: number } | null;
}
interface WireEvent {
  kind: "message" | "gap" | "heartbeat";
  message?: WireMessage;
  gap?: { fromOffset: string; firstAvailable: string; lost: string };
}

const HEARTBEAT_MS = 300;

describe("events - Subscribe", () => {
  let server: TestServer;
  let clients: LiveClients;
  const project = `projects/${uniqueName("events")}`;
  const calls: grpc.ClientReadableStream<unknown>[] = [];

  before(async () => {
    server = await startTestServer({ heartbeatMs: HEARTBEAT_MS });
    clients = createLiveClients(server.hostPort);
  });
  after(async () => {
    for (const call of calls) call.cancel();
    clients?.close();
    await server?.close();
  });

  async function createTopic(init: { retentionBytes?: number } = {}): Promise<string> {
    const name = `${project}/topics/${uniqueName("topic")}`;
    await server.server.engine.createTopic({ name, ...init });
    return name;
  }
  async function publish(topic: string, texts: string[], attributes: Record<string, string> = {}) {
    return server.server.engine.publish(
      topic,
      texts.map((text) => ({ data: Buffer.from(text), attributes, orderingKey: "" })),
    );
  }
  function subscribe(request: Record<string, unknown>): Recorder<WireEvent> {
    const call = (
      clients.events as unknown as Record<string, (r: unknown) => grpc.ClientReadableStream<unknown>>
    ).Subscribe!.call(clients.events, request);
    calls.push(call);
    return record<WireEvent>(call);
  }
  const messages = (recorder: Recorder<WireEvent>) =>
    recorder.items.filter((event) => event.kind === "message").map((event) => event.message!);
  const texts = (recorder: Recorder<WireEvent>) => messages(recorder).map((message) => message.data.toString());
  async function waitForMessages(recorder: Recorder<WireEvent>, count: number) {
    await waitFor(() => messages(recorder).length >= count || recorder.error !== null, {
      timeoutMs: 5_000,
      describe: () => `${messages(recorder).length}/${count} messages, error ${recorder.error?.message}`,
    });
    assert.equal(recorder.error, null);
  }
  /** The first heartbeat proves the subscription is live (the hub sends one after HEARTBEAT_MS of silence). */
  async function waitForHeartbeat(recorder: Recorder<WireEvent>) {
    await waitFor(() => recorder.items.some((event) => event.kind === "heartbeat") || recorder.ended, {
      timeoutMs: 5_000,
      describe: () => "a heartbeat",
    });
    assert.equal(recorder.error, null);
  }
  async function failure(request: Record<string, unknown>): Promise<grpc.ServiceError> {
    const recorder = subscribe(request);
    await waitFor(() => recorder.ended, { timeoutMs: 5_000, describe: () => "the call to fail" });
    assert.ok(recorder.error, "the call should fail");
    return recorder.error;
  }

  test("events - Subscribe from earliest with a filter yields only matching messages, in order", async () => {
    const topic = await createTopic();
    await publish(topic, ["a1", "a2"], { kind: "a" });
    await publish(topic, ["b1"], { kind: "b" });
    await publish(topic, ["a3"], { kind: "a" });
    const recorder = subscribe({ topic, position: { earliest: true }, filter: 'attributes.kind = "a"' });
    await waitForMessages(recorder, 3);
    await publish(topic, ["b2"], { kind: "b" });
    await publish(topic, ["a4"], { kind: "a" });
    await waitForMessages(recorder, 4);
    assert.deepEqual(texts(recorder), ["a1", "a2", "a3", "a4"]);
    assert.deepEqual(
      messages(recorder).map((message) => message.offset),
      ["1", "2", "4", "6"],
    );
    const first = messages(recorder)[0]!;
    assert.deepEqual(first.attributes, { kind: "a" });
    assert.ok(first.messageId.length > 0);
    assert.ok(Number(first.publishTime?.seconds) > 1_600_000_000);
  });

  test("events - resuming after an offset yields every later event exactly once, in order", async () => {
    const topic = await createTopic();
    await publish(
      topic,
      Array.from({ length: 10 }, (_, index) => `m${index + 1}`),
    );
    const recorder = subscribe({ topic, position: { afterOffset: "4" } });
    await waitForMessages(recorder, 6);
    const live = publish(
      topic,
      Array.from({ length: 5 }, (_, index) => `m${index + 11}`),
    );
    await live;
    await waitForMessages(recorder, 11);
    await delay(100);
    assert.deepEqual(
      messages(recorder).map((message) => Number(message.offset)),
      Array.from({ length: 11 }, (_, index) => index + 5),
    );
    assert.deepEqual(
      texts(recorder),
      Array.from({ length: 11 }, (_, index) => `m${index + 5}`),
    );
  });

  test("events - Subscribe from latest skips history, streams new messages and sends heartbeats when idle", async () => {
    const topic = await createTopic();
    await publish(topic, ["old"]);
    const recorder = subscribe({ topic, position: { latest: true } });
    await waitForHeartbeat(recorder);
    await publish(topic, ["new"]);
    await waitForMessages(recorder, 1);
    assert.deepEqual(texts(recorder), ["new"]);
    const beats = recorder.items.filter((event) => event.kind === "heartbeat").length;
    await delay(HEARTBEAT_MS * 2 + 200);
    assert.ok(recorder.items.filter((event) => event.kind === "heartbeat").length > beats, "idle stream heartbeats");
  });

  test("events - Subscribe from a time starts at the first message published at or after it", async () => {
    const topic = await createTopic();
    await publish(topic, ["before1", "before2"]);
    await delay(30);
    const fromMs = Date.now();
    await delay(5);
    await publish(topic, ["after1", "after2"]);
    const time = { seconds: String(Math.floor(fromMs / 1000)), nanos: (fromMs % 1000) * 1e6 };
    const recorder = subscribe({ topic, position: { time } });
    await waitForMessages(recorder, 2);
    await delay(100);
    assert.deepEqual(texts(recorder), ["after1", "after2"]);
  });

  test("events - resuming below retention yields an explicit gap, then the rest", async () => {
    const topic = await createTopic({ retentionBytes: 100 });
    await publish(
      topic,
      Array.from({ length: 20 }, (_, index) => `message-${String(index + 1).padStart(2, "0")}`),
    );
    await (server.server.baseEngine as EmbeddedEngine).runMaintenance();
    const stats = await server.server.engine.topicStats(topic);
    assert.ok(stats.firstOffset > 1, `retention trimmed the log (first offset ${stats.firstOffset})`);
    const recorder = subscribe({ topic, position: { afterOffset: "0" } });
    await waitForMessages(recorder, 21 - stats.firstOffset);
    const first = recorder.items.find((event) => event.kind !== "heartbeat")!;
    assert.equal(first.kind, "gap");
    assert.deepEqual(first.gap, {
      fromOffset: "1",
      firstAvailable: String(stats.firstOffset),
      lost: String(stats.firstOffset - 1),
    });
    assert.deepEqual(
      messages(recorder).map((message) => Number(message.offset)),
      Array.from({ length: 21 - stats.firstOffset }, (_, index) => stats.firstOffset + index),
    );
  });

  test("events - a client that stops reading is dropped with RESOURCE_EXHAUSTED and resumes after its last offset", async () => {
    const topic = await createTopic();
    const recorder = subscribe({ topic, position: { latest: true } });
    await waitForHeartbeat(recorder);
    const call = calls.at(-1)!;
    call.pause();
    const payload = "x".repeat(100_000);
    const total = 300;
    // Pages of two (≈ 270 kB against the 1 MiB buffer): a client that stops reading falls behind page by page. (One
    // Publish larger than the buffer would move even a reading client to paced history reads instead.)
    for (let batch = 0; batch < total / 2; batch++)
      await publish(
        topic,
        Array.from({ length: 2 }, () => payload),
      );
    call.resume();
    await waitFor(() => recorder.ended, { timeoutMs: 20_000, describe: () => "the slow subscriber to be dropped" });
    assert.equal(recorder.error?.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(recorder.error!.details, /after_offset/);
    const seen = messages(recorder).map((message) => Number(message.offset));
    assert.ok(seen.length < total, `dropped before the end (${seen.length} of ${total} delivered)`);
    assert.deepEqual(
      seen,
      Array.from({ length: seen.length }, (_, index) => index + 1),
    );
    const last = seen.at(-1) ?? 0;
    const resumed = subscribe({ topic, position: { afterOffset: String(last) } });
    await waitForMessages(resumed, total - last);
    assert.deepEqual(
      messages(resumed).map((message) => Number(message.offset)),
      Array.from({ length: total - last }, (_, index) => last + 1 + index),
    );
    calls.at(-1)!.cancel();
  });

  test("events - a short topic name is a topic of the default project, as on every transport", async () => {
    const id = uniqueName("short");
    const topic = `projects/default/topics/${id}`;
    await server.server.engine.createTopic({ name: topic });
    const recorder = subscribe({ topic: id, position: { latest: true } });
    await waitForHeartbeat(recorder);
    await publish(topic, ["by its short name"]);
    await waitForMessages(recorder, 1);
    assert.deepEqual(
      messages(recorder).map((message) => message.data.toString()),
      ["by its short name"],
    );
  });

  test("events - Subscribe to an unknown topic is NOT_FOUND", async () => {
    const error = await failure({ topic: `${project}/topics/${uniqueName("missing")}`, position: { earliest: true } });
    assert.equal(error.code, grpc.status.NOT_FOUND);
    assert.match(error.details, /not found/i);
  });

  test("events - a bad filter or a malformed topic name is INVALID_ARGUMENT", async () => {
    const topic = await createTopic();
    const badFilter = await failure({ topic, filter: "attributes.kind = " });
    assert.equal(badFilter.code, grpc.status.INVALID_ARGUMENT);
    assert.match(badFilter.details, /filter/);
    const badName = await failure({ topic: "projects/p/queues/not-a-topic" });
    assert.equal(badName.code, grpc.status.INVALID_ARGUMENT);
  });

  test("events - a Connect-protocol client (JSON over HTTP/1.1, as a browser) streams Subscribe", async () => {
    const topic = await createTopic();
    await publish(topic, ["one", "two", "three"], { via: "connect" });
    const transport = createConnectTransport({ baseUrl: server.url, httpVersion: "1.1", useBinaryFormat: false });
    const client = createClient(Events, transport);
    const abort = new AbortController();
    const received: { offset: bigint; text: string }[] = [];
    const stream = client.subscribe(
      { topic, position: { kind: { case: "earliest", value: true } } },
      { signal: abort.signal },
    );
    try {
      for await (const event of stream) {
        if (event.kind.case !== "message") continue;
        received.push({ offset: event.kind.value.offset, text: Buffer.from(event.kind.value.data).toString() });
        if (received.length === 3) break;
      }
    } finally {
      abort.abort();
    }
    assert.deepEqual(received, [
      { offset: 1n, text: "one" },
      { offset: 2n, text: "two" },
      { offset: 3n, text: "three" },
    ]);
  });
  test("events - a gRPC-Web client over HTTP/1.1 streams Subscribe and sees NOT_FOUND for an unknown topic", async () => {
    const topic = await createTopic();
    await publish(topic, ["web1", "web2"]);
    const client = createClient(Events, createGrpcWebTransport({ baseUrl: server.url, httpVersion: "1.1" }));
    const abort = new AbortController();
    const texts: string[] = [];
    try {
      for await (const event of client.subscribe(
        { topic, position: { kind: { case: "afterOffset", value: 0n } } },
        { signal: abort.signal },
      )) {
        if (event.kind.case === "message") texts.push(Buffer.from(event.kind.value.data).toString());
        if (texts.length === 2) break;
      }
    } finally {
      abort.abort();
    }
    assert.deepEqual(texts, ["web1", "web2"]);
    await assert.rejects(
      (async () => {
        for await (const _ of client.subscribe({ topic: `${project}/topics/${uniqueName("missing")}` })) break;
      })(),
      /not found/i,
    );
  });
});
