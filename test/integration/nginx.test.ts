// Behind a real nginx (Debian's, started with deploy/nginx/streamgate.conf and a self-signed certificate,
// TLS + HTTP/2): the Pub/Sub client, gRPC Subscribe, ChatStream, SSE and WebSocket all pass through it; idle
// streams outlive nginx's read timeout thanks to heartbeats; with streamgate down gRPC gets UNAVAILABLE.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { PubSub } from "@google-cloud/pubsub";
import WebSocket from "ws";
import { grpc, type Recorder, record } from "../harness/live-clients.js";
import { findNginx, type RunningNginx, startNginx } from "../harness/nginx.js";
import { openSse, sseComments, sseMessages, tlsLiveClients } from "../harness/proxied-suite.js";
import { peersRequired, startTestServer, type TestServer } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";
import { delay, waitFor } from "../harness/wait-for.js";

process.env.METADATA_SERVER_DETECTION ??= "none";

/** nginx's read timeout in the test, and streamgate's heartbeat well below it. */
const READ_TIMEOUT_S = 2;
const HEARTBEAT_MS = 500;

const nginxBinary = findNginx();
if (nginxBinary === null && peersRequired())
  throw new Error("nginx is required with CI=true (apt-get install -y nginx)");
if (nginxBinary === null)
  console.warn(
    "\n*** SKIPPING test/integration/nginx.test.ts: nginx is not installed (apt-get install -y nginx) ***\n",
  );

interface WireEvent {
  kind: "message" | "gap" | "heartbeat";
  message?: { offset: string; data: Buffer };
}

describe("nginx", { skip: nginxBinary === null ? "nginx not installed" : false }, () => {
  let server: TestServer;
  let nginx: RunningNginx;
  let clients: ReturnType<typeof tlsLiveClients>;
  const calls: { cancel(): void }[] = [];
  const project = `projects/${uniqueName("nginx")}`;

  before(async () => {
    server = await startTestServer({ heartbeatMs: HEARTBEAT_MS });
    nginx = await startNginx({ upstreamPort: server.port, readTimeout: `${READ_TIMEOUT_S}s` });
    clients = tlsLiveClients(nginx.hostPort, nginx.cert);
  });
  after(async () => {
    for (const call of calls) call.cancel();
    clients?.close();
    await nginx?.stop();
    // nginx's upstream keepalive connections may still be closing; they are nginx's, not leaked test clients.
    await server?.close({ allowOpenConnections: true });
  });

  async function createTopic(): Promise<string> {
    const name = `${project}/topics/${uniqueName("topic")}`;
    await server.server.engine.createTopic({ name });
    return name;
  }
  const publish = (topic: string, texts: string[]) =>
    server.server.engine.publish(
      topic,
      texts.map((text) => ({ data: Buffer.from(text), attributes: {}, orderingKey: "" })),
    );
  function subscribe(topic: string): Recorder<WireEvent> {
    const call = (
      clients.events as unknown as Record<string, (r: unknown) => grpc.ClientReadableStream<unknown>>
    ).Subscribe!.call(clients.events, { topic, position: { earliest: true } });
    calls.push(call);
    return record<WireEvent>(call);
  }
  const texts = (recorder: Recorder<WireEvent>) =>
    recorder.items.filter((event) => event.kind === "message").map((event) => event.message!.data.toString());

  test("nginx - the official Pub/Sub client publishes and receives over TLS + HTTP/2 through nginx", async () => {
    const pubsub = new PubSub({
      projectId: "nginx",
      apiEndpoint: nginx.hostPort,
      emulatorMode: false,
      sslCreds: grpc.credentials.createSsl(nginx.cert),
    });
    try {
      const [topic] = await pubsub.createTopic(uniqueName("topic"));
      const [subscription] = await topic.createSubscription(uniqueName("sub"));
      const received: string[] = [];
      const errors: Error[] = [];
      subscription.on("error", (error: Error) => errors.push(error));
      subscription.on("message", (message) => {
        received.push(message.data.toString());
        message.ack();
      });
      for (const text of ["one", "two", "three"]) await topic.publishMessage({ data: Buffer.from(text) });
      await waitFor(() => received.length >= 3 || errors.length > 0, {
        timeoutMs: 10_000,
        describe: () => `received ${JSON.stringify(received)}, errors ${errors.map((e) => e.message)}`,
      });
      assert.deepEqual(errors, []);
      assert.deepEqual([...received].sort(), ["one", "three", "two"]);
      await subscription.close();
      await delay(300); // the ack queue's batch timer (see pubsub-client.test.ts)
    } finally {
      await pubsub.close();
    }
  });

  test("nginx - grpc-js streamgate.v1.Events/Subscribe streams stored then live events through nginx", async () => {
    const topic = await createTopic();
    await publish(topic, ["a", "b"]);
    const recorder = subscribe(topic);
    await waitFor(() => texts(recorder).length >= 2 || recorder.ended, { timeoutMs: 5_000, describe: () => "a, b" });
    await publish(topic, ["c"]);
    await waitFor(() => texts(recorder).length >= 3 || recorder.ended, { timeoutMs: 5_000, describe: () => "c" });
    assert.equal(recorder.error, null);
    assert.deepEqual(texts(recorder), ["a", "b", "c"]);
  });

  test("nginx - chat.ChatService/ChatStream bidi: two clients see each other through nginx", async () => {
    const room = uniqueName("room");
    const join = () => {
      const metadata = new grpc.Metadata();
      metadata.set("chat-room", room);
      const call = (
        clients.chat as unknown as { ChatStream(m: grpc.Metadata): grpc.ClientDuplexStream<unknown, unknown> }
      ).ChatStream(metadata);
      calls.push(call);
      return { call, recorder: record<{ user: string; message: string }>(call) };
    };
    const lines = (recorder: Recorder<{ user: string; message: string }>) =>
      recorder.items.map((item) => `${item.user}: ${item.message}`);
    const alice = join();
    alice.call.write({ user: "alice", message: "joined", timestamp: "0" });
    await waitFor(() => lines(alice.recorder).includes("alice: joined"), {
      timeoutMs: 5_000,
      describe: () => "joined",
    });
    const bob = join();
    bob.call.write({ user: "bob", message: "hi alice", timestamp: "0" });
    await waitFor(() => lines(alice.recorder).includes("bob: hi alice"), {
      timeoutMs: 5_000,
      describe: () => JSON.stringify(lines(alice.recorder)),
    });
    alice.call.write({ user: "alice", message: "hi bob", timestamp: "0" });
    await waitFor(() => lines(bob.recorder).includes("alice: hi bob"), {
      timeoutMs: 5_000,
      describe: () => JSON.stringify(lines(bob.recorder)),
    });
    assert.equal(alice.recorder.error, null);
    assert.equal(bob.recorder.error, null);
    alice.call.end();
    bob.call.end();
  });

  test("nginx - SSE over HTTPS through nginx gets stored and live events unbuffered", async () => {
    const topic = await createTopic();
    await publish(topic, ["x"]);
    const sse = await openSse(`${nginx.url}/v1/${topic}/events?from=earliest`, nginx.cert);
    try {
      assert.equal(sse.status, 200);
      await waitFor(() => sseMessages(sse.text).length >= 1, { timeoutMs: 5_000, describe: () => sse.text });
      await publish(topic, ["y"]);
      await waitFor(() => sseMessages(sse.text).length >= 2, { timeoutMs: 5_000, describe: () => sse.text });
      const data = sseMessages(sse.text).map((message) => Buffer.from(message.data, "base64").toString());
      assert.deepEqual(data, ["x", "y"]);
    } finally {
      sse.close();
    }
  });

  test("nginx - WebSocket over wss through nginx: subscribe, publish, receive", async () => {
    const topic = await createTopic();
    const socket = new WebSocket(`wss://${nginx.hostPort}/v1/ws`, { ca: nginx.cert });
    const frames: { type: string; message?: { data: string } }[] = [];
    socket.on("message", (data) => frames.push(JSON.parse(String(data))));
    await new Promise((resolve, reject) => {
      socket.once("open", resolve);
      socket.once("error", reject);
    });
    try {
      socket.send(JSON.stringify({ type: "subscribe", id: "s", topic, from: "latest" }));
      await waitFor(() => frames.some((frame) => frame.type === "subscribed"), {
        timeoutMs: 5_000,
        describe: () => JSON.stringify(frames),
      });
      const data = Buffer.from("over wss").toString("base64");
      socket.send(JSON.stringify({ type: "publish", ref: "r", topic, messages: [{ data }] }));
      await waitFor(() => frames.some((frame) => frame.type === "message"), {
        timeoutMs: 5_000,
        describe: () => JSON.stringify(frames),
      });
      assert.equal(frames.find((frame) => frame.type === "message")!.message!.data, data);
    } finally {
      socket.close();
      await new Promise((resolve) => socket.once("close", resolve));
    }
  });

  test(`nginx - Subscribe and SSE idle for 3x nginx's ${READ_TIMEOUT_S} s read timeout survive on heartbeats`, async () => {
    const topic = await createTopic();
    const recorder = subscribe(topic);
    const sse = await openSse(`${nginx.url}/v1/${topic}/events?from=earliest`, nginx.cert);
    try {
      await delay(3 * READ_TIMEOUT_S * 1000);
      assert.equal(recorder.ended, false, `Subscribe ended: ${recorder.error?.message}`);
      assert.equal(sse.ended, false, "SSE ended");
      const heartbeats = recorder.items.filter((event) => event.kind === "heartbeat").length;
      assert.ok(heartbeats >= 6, `Subscribe heartbeats: ${heartbeats}`);
      assert.ok(sseComments(sse.text) >= 6, `SSE keepalive comments: ${sseComments(sse.text)}`);
      await publish(topic, ["after the idle"]);
      await waitFor(() => texts(recorder).length === 1 && sseMessages(sse.text).length === 1, {
        timeoutMs: 5_000,
        describe: () => `Subscribe ${texts(recorder)}, SSE ${sse.text}`,
      });
      assert.deepEqual(texts(recorder), ["after the idle"]);
    } finally {
      sse.close();
    }
  });

  test("nginx - with streamgate stopped, a gRPC call through nginx fails with UNAVAILABLE (14)", async () => {
    for (const call of calls.splice(0)) call.cancel();
    await server.close({ allowOpenConnections: true });
    const error = await new Promise<grpc.ServiceError>((resolve, reject) => {
      const call = (
        clients.events as unknown as Record<string, (r: unknown) => grpc.ClientReadableStream<unknown>>
      ).Subscribe!.call(clients.events, { topic: `${project}/topics/gone`, position: { earliest: true } });
      call.on("data", () => reject(new Error("unexpected data")));
      call.on("error", resolve);
      call.on("end", () => reject(new Error("the call ended without an error")));
    });
    assert.equal(error.code, grpc.status.UNAVAILABLE, `${error.code} ${error.details}`);
    assert.equal(error.details, "unavailable");
    // A unary call (the Pub/Sub client's path) is answered the same way.
    const pubsub = new PubSub({
      projectId: "nginx",
      apiEndpoint: nginx.hostPort,
      emulatorMode: false,
      sslCreds: grpc.credentials.createSsl(nginx.cert),
    });
    try {
      await assert.rejects(
        pubsub.topic("gone").getMetadata({ retry: { retryCodes: [] } as never, timeout: 5_000 }),
        (thrown: { code?: number }) => thrown.code === grpc.status.UNAVAILABLE,
      );
    } finally {
      await pubsub.close();
    }
    // The server is already closed: after() must not close it again.
    server = undefined as unknown as TestServer;
  });
});
