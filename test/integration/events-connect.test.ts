// streamgate.v1.Events/Connect (bidi, many topics) and PublishStream (client streaming) driven by @grpc/grpc-js.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createLiveClients, grpc, type LiveClients, type Recorder, record } from "../harness/live-clients.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";
import { delay, waitFor, withTimeout } from "../harness/wait-for.js";

interface WireMessage {
  offset: string;
  data: Buffer;
  attributes: Record<string, string>;
}
interface ConnectResponse {
  kind: "event" | "subscribed" | "unsubscribed" | "published" | "error" | "heartbeat";
  event?: { subscriptionId: string; event: { kind: string; message?: WireMessage } };
  subscribed?: { id: string; topic: string };
  unsubscribed?: { id: string };
  published?: { ref: string; offsets: string[]; messageIds: string[] };
  error?: { id: string; ref: string; code: number; reason: string; message: string };
}

const HEARTBEAT_MS = 300;

describe("events - Connect and PublishStream", () => {
  let server: TestServer;
  let clients: LiveClients;
  const project = `projects/${uniqueName("connect")}`;

  before(async () => {
    server = await startTestServer({ heartbeatMs: HEARTBEAT_MS });
    clients = createLiveClients(server.hostPort);
  });
  after(async () => {
    clients?.close();
    await server?.close();
  });

  async function createTopic(): Promise<string> {
    const name = `${project}/topics/${uniqueName("topic")}`;
    await server.server.engine.createTopic({ name });
    return name;
  }
  const method = <T>(name: string) =>
    (clients.events as unknown as Record<string, T>)[name] as T & {
      call: (self: unknown, ...args: unknown[]) => unknown;
    };
  function connect(): { call: grpc.ClientDuplexStream<unknown, unknown>; recorder: Recorder<ConnectResponse> } {
    const call = method<() => unknown>("Connect").call(clients.events) as grpc.ClientDuplexStream<unknown, unknown>;
    return { call, recorder: record<ConnectResponse>(call) };
  }
  async function until(recorder: Recorder<ConnectResponse>, what: string, predicate: (r: ConnectResponse) => boolean) {
    await waitFor(() => recorder.items.some(predicate) || recorder.ended, {
      timeoutMs: 5_000,
      describe: () => `${what}; got ${JSON.stringify(recorder.items.map((item) => item.kind))}`,
    });
    const found = recorder.items.find(predicate);
    assert.ok(found, `${what} (call ended: ${recorder.error?.message})`);
    return found;
  }
  const eventTexts = (recorder: Recorder<ConnectResponse>, id: string) =>
    recorder.items
      .filter(
        (item) => item.kind === "event" && item.event!.subscriptionId === id && item.event!.event.kind === "message",
      )
      .map((item) => item.event!.event.message!.data.toString());

  test("events - Connect subscribes to two topics, publishes to both, and unsubscribes one", async () => {
    const [orders, payments] = [await createTopic(), await createTopic()];
    await server.server.engine.publish(orders, [{ data: Buffer.from("o-history"), attributes: {}, orderingKey: "" }]);
    const { call, recorder } = connect();
    call.write({ subscribe: { id: "o", topic: orders, position: { earliest: true } } });
    call.write({
      subscribe: { id: "p", topic: payments, position: { latest: true }, filter: 'attributes.kind = "card"' },
    });
    await until(recorder, "subscribed o", (r) => r.subscribed?.id === "o");
    await until(recorder, "subscribed p", (r) => r.subscribed?.id === "p");
    await until(recorder, "o's history", (r) => r.event?.subscriptionId === "o");

    call.write({ publish: { ref: "r1", topic: orders, messages: [{ data: Buffer.from("o-live") }] } });
    call.write({
      publish: {
        ref: "r2",
        topic: payments,
        messages: [
          { data: Buffer.from("p-cash"), attributes: { kind: "cash" } },
          { data: Buffer.from("p-card"), attributes: { kind: "card" } },
        ],
      },
    });
    const r1 = await until(recorder, "published r1", (r) => r.published?.ref === "r1");
    assert.deepEqual(r1.published!.offsets, ["2"]);
    const r2 = await until(recorder, "published r2", (r) => r.published?.ref === "r2");
    assert.deepEqual(r2.published!.offsets, ["1", "2"]);
    assert.equal(r2.published!.messageIds.length, 2);
    await waitFor(() => eventTexts(recorder, "o").length === 2 && eventTexts(recorder, "p").length === 1, {
      timeoutMs: 5_000,
      describe: () => JSON.stringify([eventTexts(recorder, "o"), eventTexts(recorder, "p")]),
    });
    assert.deepEqual(eventTexts(recorder, "o"), ["o-history", "o-live"]);
    assert.deepEqual(eventTexts(recorder, "p"), ["p-card"]);

    call.write({ unsubscribe: { id: "o" } });
    await until(recorder, "unsubscribed o", (r) => r.unsubscribed?.id === "o");
    call.write({ publish: { ref: "r3", topic: orders, messages: [{ data: Buffer.from("o-after") }] } });
    call.write({
      publish: {
        ref: "r4",
        topic: payments,
        messages: [{ data: Buffer.from("p-after"), attributes: { kind: "card" } }],
      },
    });
    await waitFor(() => eventTexts(recorder, "p").length === 2, { timeoutMs: 5_000, describe: () => "p-after" });
    await delay(100);
    assert.deepEqual(eventTexts(recorder, "o"), ["o-history", "o-live"], "no events after unsubscribed");

    call.end();
    await waitFor(() => recorder.ended, {
      timeoutMs: 5_000,
      describe: () => "the server to end the call after half-close",
    });
    assert.equal(recorder.error, null);
  });

  test("events - Connect reports command errors without ending the stream, and heartbeats when idle", async () => {
    const topic = await createTopic();
    const { call, recorder } = connect();
    call.write({ subscribe: { id: "missing", topic: `${project}/topics/${uniqueName("missing")}` } });
    call.write({ subscribe: { id: "bad", topic, filter: "attributes.kind = " } });
    call.write({ unsubscribe: { id: "never" } });
    call.write({ publish: { ref: "empty", topic, messages: [] } });
    const missing = await until(recorder, "error for missing", (r) => r.error?.id === "missing");
    assert.equal(missing.error!.code, grpc.status.NOT_FOUND);
    assert.equal(missing.error!.reason, "TOPIC_NOT_FOUND");
    const bad = await until(recorder, "error for bad", (r) => r.error?.id === "bad");
    assert.equal(bad.error!.code, grpc.status.INVALID_ARGUMENT);
    const never = await until(recorder, "error for never", (r) => r.error?.id === "never");
    assert.equal(never.error!.code, grpc.status.NOT_FOUND);
    const empty = await until(recorder, "error for empty", (r) => r.error?.ref === "empty");
    assert.equal(empty.error!.code, grpc.status.INVALID_ARGUMENT);
    await until(recorder, "a heartbeat", (r) => r.kind === "heartbeat");
    call.write({ subscribe: { id: "ok", topic } });
    await until(recorder, "subscribed ok", (r) => r.subscribed?.id === "ok");
    assert.equal(recorder.ended, false);
    call.cancel();
    await waitFor(() => recorder.ended, { timeoutMs: 5_000, describe: () => "cancelled" });
  });

  test("events - PublishStream publishes every request and returns all offsets and ids in order", async () => {
    const [first, second] = [await createTopic(), await createTopic()];
    const response = await withTimeout(
      new Promise<{ offsets: string[]; messageIds: string[] }>((resolve, reject) => {
        const call = method<() => unknown>("PublishStream").call(
          clients.events,
          (error: Error | null, value: unknown) =>
            error ? reject(error) : resolve(value as { offsets: string[]; messageIds: string[] }),
        ) as grpc.ClientWritableStream<unknown>;
        call.write({ topic: first, messages: [{ data: Buffer.from("a") }, { data: Buffer.from("b") }] });
        call.write({ topic: second, messages: [{ data: Buffer.from("c") }] });
        call.write({ topic: first, messages: [{ data: Buffer.from("d"), attributes: { k: "v" } }] });
        call.end();
      }),
      5_000,
      "PublishStream",
    );
    assert.deepEqual(response.offsets, ["1", "2", "1", "3"]);
    assert.equal(new Set(response.messageIds).size, 4);
    const stored = await server.server.engine.readTopic(first, 1, { maxMessages: 10, maxBytes: 1 << 20 });
    assert.deepEqual(
      stored.map((message) => Buffer.from(message.data).toString()),
      ["a", "b", "d"],
    );
  });

  test("events - PublishStream to an unknown topic is NOT_FOUND", async () => {
    const error = await new Promise<grpc.ServiceError | null>((resolve) => {
      const call = method<() => unknown>("PublishStream").call(clients.events, (failure: grpc.ServiceError | null) =>
        resolve(failure),
      ) as grpc.ClientWritableStream<unknown>;
      call.write({ topic: `${project}/topics/${uniqueName("missing")}`, messages: [{ data: Buffer.from("x") }] });
      call.end();
    });
    assert.equal(error?.code, grpc.status.NOT_FOUND);
  });
  test("events - draining the server ends Subscribe and Connect with UNAVAILABLE so clients reconnect", async () => {
    const draining = await startTestServer({ heartbeatMs: HEARTBEAT_MS });
    const drainClients = createLiveClients(draining.hostPort);
    try {
      const topic = `${project}/topics/${uniqueName("drain")}`;
      await draining.server.engine.createTopic({ name: topic });
      const events = drainClients.events as unknown as {
        Subscribe(request: unknown): grpc.ClientReadableStream<unknown>;
        Connect(): grpc.ClientDuplexStream<unknown, unknown>;
      };
      const subscribe = record<{ kind: string }>(events.Subscribe({ topic }));
      const connectCall = events.Connect();
      const connectRecorder = record<ConnectResponse>(connectCall);
      connectCall.write({ subscribe: { id: "a", topic } });
      await waitFor(() => subscribe.items.length > 0 && connectRecorder.items.length > 0, {
        timeoutMs: 5_000,
        describe: () => "both streams live",
      });
      const drained = draining.server.drain(2_000);
      await waitFor(() => subscribe.ended && connectRecorder.ended, {
        timeoutMs: 5_000,
        describe: () => "streams ended",
      });
      assert.equal(subscribe.error?.code, grpc.status.UNAVAILABLE);
      assert.equal(connectRecorder.error?.code, grpc.status.UNAVAILABLE);
      assert.match(subscribe.error!.details, /draining/);
      drainClients.close();
      await drained;
    } finally {
      drainClients.close();
      await draining.close({ allowOpenConnections: true });
    }
  });
});
