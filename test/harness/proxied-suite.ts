// One scenario suite for streamgate behind TLS proxies (nginx, the nginx L7 -> L4 chain, haproxy): the Pub/Sub client,
// Events/Subscribe, ChatStream, SSE and WebSocket through the proxy, idle streams past its timeout, the client's address.
import assert from "node:assert/strict";
import { request as httpsRequest } from "node:https";
import { after, before, test } from "node:test";
import { PubSub } from "@google-cloud/pubsub";
import * as protoLoader from "@grpc/proto-loader";
import WebSocket from "ws";
import { grpc, liveProtoPaths, type Recorder, record } from "./live-clients.js";
import type { LogCapture } from "./log-capture.js";
import type { TestServer } from "./start-test-server.js";
import { uniqueName } from "./unique-name.js";
import { delay, waitFor } from "./wait-for.js";

process.env.METADATA_SERVER_DETECTION ??= "none";

interface WireEvent {
  kind: "message" | "gap" | "heartbeat";
  message?: { offset: string; data: Buffer };
}

/** grpc-js clients for streamgate.v1.Events and chat.ChatService over TLS, on one channel. */
export function tlsLiveClients(hostPort: string, cert: Buffer) {
  const load = (path: string, service: string) => {
    let node: unknown = grpc.loadPackageDefinition(
      protoLoader.loadSync(path, { longs: String, enums: String, defaults: true, oneofs: true }),
    );
    for (const part of service.split(".")) node = (node as Record<string, unknown>)[part];
    return node as grpc.ServiceClientConstructor;
  };
  const credentials = grpc.credentials.createSsl(cert);
  const channel = new grpc.Channel(hostPort, credentials, { "grpc.use_local_subchannel_pool": 1 });
  const make = (ctor: grpc.ServiceClientConstructor) => new ctor(hostPort, credentials, { channelOverride: channel });
  return {
    events: make(load(liveProtoPaths.events, "streamgate.v1.Events")),
    chat: make(load(liveProtoPaths.chat, "chat.ChatService")),
    close: () => channel.close(),
  };
}

/** An SSE reader over node:https trusting `ca`; `localAddress` picks the client's source address. */
export function openSse(url: string, ca: Buffer, localAddress?: string, headers: Record<string, string> = {}) {
  const state = { status: 0, text: "", ended: false, close: () => {} };
  return new Promise<typeof state>((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        ca,
        servername: "localhost",
        headers: { accept: "text/event-stream", ...headers },
        ...(localAddress === undefined ? {} : { localAddress }),
      },
      (response) => {
        state.status = response.statusCode ?? 0;
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => {
          state.text += chunk;
        });
        const ended = () => {
          state.ended = true;
        };
        response.on("end", ended);
        response.on("close", ended);
        response.on("error", ended);
        state.close = () => req.destroy();
        resolve(state);
      },
    );
    req.on("error", reject);
    req.end();
  });
}

export const sseMessages = (text: string) =>
  text
    .split("\n\n")
    .filter((block) => block.includes("event: message"))
    .map((block) => JSON.parse(/^data: (.*)$/m.exec(block)![1]!) as { offset: string; data: string });
export const sseComments = (text: string) => text.split("\n").filter((line) => line.startsWith(":")).length;

/** A running proxy setup in front of a streamgate server. */
export interface ProxiedSetup {
  /** The proxy's TLS address clients dial. */
  hostPort: string;
  url: string;
  /** The certificate clients must trust (servername localhost). */
  cert: Buffer;
  server: TestServer;
  logs: LogCapture;
  stop(): Promise<void>;
}

export interface ProxiedSuiteOptions {
  /** Prefix of every test name, e.g. "nginx chain". */
  label: string;
  start(): Promise<ProxiedSetup>;
  /** The proxies' idle timeout, in s (streamgate's heartbeat is far below it). */
  idleTimeoutS: number;
  /** A loopback address other than 127.0.0.1 the SSE and WebSocket clients connect from. */
  clientAddress: string;
}

/** Registers the suite's tests in the current describe(). */
export function proxiedSuite(options: ProxiedSuiteOptions): { setup: () => ProxiedSetup } {
  const { label, clientAddress } = options;
  let setup: ProxiedSetup;
  let clients: ReturnType<typeof tlsLiveClients>;
  const calls: { cancel(): void }[] = [];
  const project = `projects/${uniqueName("proxied")}`;

  before(async () => {
    setup = await options.start();
    clients = tlsLiveClients(setup.hostPort, setup.cert);
  });
  after(async () => {
    for (const call of calls) call.cancel();
    clients?.close();
    await setup?.stop();
  });

  async function createTopic(): Promise<string> {
    const name = `${project}/topics/${uniqueName("topic")}`;
    await setup.server.server.engine.createTopic({ name });
    return name;
  }
  const publish = (topic: string, texts: string[]) =>
    setup.server.server.engine.publish(
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

  test(`${label} - the official Pub/Sub client publishes and receives`, async () => {
    const pubsub = new PubSub({
      projectId: "proxied",
      apiEndpoint: setup.hostPort,
      emulatorMode: false,
      sslCreds: grpc.credentials.createSsl(setup.cert),
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

  test(`${label} - grpc-js Events/Subscribe streams stored then live events`, async () => {
    const topic = await createTopic();
    await publish(topic, ["a", "b"]);
    const recorder = subscribe(topic);
    await waitFor(() => texts(recorder).length >= 2 || recorder.ended, { timeoutMs: 5_000, describe: () => "a, b" });
    await publish(topic, ["c"]);
    await waitFor(() => texts(recorder).length >= 3 || recorder.ended, { timeoutMs: 5_000, describe: () => "c" });
    assert.equal(recorder.error, null);
    assert.deepEqual(texts(recorder), ["a", "b", "c"]);
  });

  test(`${label} - chat.ChatService/ChatStream bidi: two clients see each other`, async () => {
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

  test(`${label} - SSE streams stored and live events, and runs as the real client (${clientAddress}), not the one it forged`, async () => {
    const topic = await createTopic();
    await publish(topic, ["x"]);
    const sse = await openSse(`${setup.url}/v1/${topic}/events?from=earliest`, setup.cert, clientAddress, {
      "x-forwarded-for": "6.6.6.6",
      forwarded: "for=6.6.6.7",
    });
    try {
      assert.equal(sse.status, 200);
      await waitFor(() => sseMessages(sse.text).length >= 1, { timeoutMs: 5_000, describe: () => sse.text });
      await publish(topic, ["y"]);
      await waitFor(() => sseMessages(sse.text).length >= 2, { timeoutMs: 5_000, describe: () => sse.text });
      const data = sseMessages(sse.text).map((message) => Buffer.from(message.data, "base64").toString());
      assert.deepEqual(data, ["x", "y"]);
      const line = await setup.logs.waitForLine(
        (candidate) => candidate.msg === "stream opened" && candidate.topic === topic,
        "stream opened",
      );
      assert.equal(line.principal, `anonymous@${clientAddress}`);
    } finally {
      sse.close();
    }
  });

  test(`${label} - WebSocket over wss: subscribe, publish, receive, as the real client`, async () => {
    const topic = await createTopic();
    const socket = new WebSocket(`wss://${setup.hostPort}/v1/ws`, {
      ca: setup.cert,
      localAddress: clientAddress,
    });
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
      const line = await setup.logs.waitForLine(
        (candidate) => candidate.msg === "stream opened" && candidate.topic === topic,
        "stream opened",
      );
      assert.equal(line.principal, `anonymous@${clientAddress}`);
    } finally {
      socket.close();
      await new Promise((resolve) => socket.once("close", resolve));
    }
  });

  test(`${label} - Subscribe and SSE idle for 3x the proxies' ${options.idleTimeoutS} s timeout survive on heartbeats`, async () => {
    const topic = await createTopic();
    const recorder = subscribe(topic);
    const sse = await openSse(`${setup.url}/v1/${topic}/events?from=earliest`, setup.cert);
    try {
      await delay(3 * options.idleTimeoutS * 1000);
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

  return { setup: () => setup };
}
