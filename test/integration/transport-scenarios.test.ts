// One scenario suite over every live-stream transport: gRPC (grpc-js), gRPC-Web and Connect (connect-es), SSE,
// WebSocket (ws) and long poll (fetch). Each scenario is written once against `LiveTransport` and runs on all six,
// so a behaviour that differs between transports shows up as one failing row: publish → receive, resume after an
// offset, a slow consumer dropped with a resume point and resuming without loss, a cancel that frees the server's
// subscription, and bad or insufficient tokens refused in the transport's own words.
import assert from "node:assert/strict";
import { type ClientRequest, Agent as HttpAgent, get as httpGet } from "node:http";
import type { Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { Code as ConnectCode, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { SignJWT } from "jose";
import WebSocket from "ws";
import { Events } from "../../src/gen/streamgate/v1/events_pb.js";
import { createLiveClients, grpc, type LiveClients } from "../harness/live-clients.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";
import { delay, waitFor } from "../harness/wait-for.js";

/** How a stream ended, in one vocabulary: a canonical status name, what the client was told, where to resume. */
interface StreamEnd {
  status: string;
  detail: string;
  resumeFrom: number | null;
}

/** A live stream opened by one transport's real client. */
interface LiveStream {
  /** Offsets of the messages received, in arrival order. */
  readonly offsets: number[];
  /** Payloads of the messages received, as text. */
  readonly texts: string[];
  /** Set once the stream ended (refusal, drop, server close). */
  end: StreamEnd | null;
  /** The stream is known to be open on the server (first heartbeat, subscribed frame, or a waiting poll). */
  opened: Promise<void>;
  /** Stops reading (the transport's own backpressure reaches the server). */
  pause(): void;
  resume(): void;
  /** The client gives up on the stream. */
  cancel(): void;
}

interface OpenArgs {
  /** Full topic name. */
  topic: string;
  /** Deliver messages after this offset; absent = latest. */
  afterOffset?: number;
  token?: string;
}

interface LiveTransport {
  name: string;
  open(args: OpenArgs): Promise<LiveStream>;
}

const SECRET = "transport-scenarios-secret-0123456789abcdef";
const ISSUER = "https://issuer.scenarios.test";
const AUDIENCE = "streamgate";
const HEARTBEAT_MS = 300;
const BUFFER_BYTES = 64 * 1024;

const grpcStatusName = (code: number) => grpc.status[code] ?? `CODE_${code}`;
const connectStatusName = (code: ConnectCode) => ConnectCode[code]!.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
const httpStatusName: Record<number, string> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  429: "RESOURCE_EXHAUSTED",
};
/** The resume offset a drop message names ("resume from offset 12", "resume from 12"). */
const resumeFromText = (text: string): number | null => {
  const match = /resume from (?:offset )?(\d+)/.exec(text);
  return match === null ? null : Number(match[1]);
};
const bearer = (token: string | undefined): Record<string, string> =>
  token === undefined ? {} : { authorization: `Bearer ${token}` };

/** Builds the shared bookkeeping every adapter fills in. */
function newStream(): LiveStream & { markOpened(): void } {
  let markOpened = () => {};
  const opened = new Promise<void>((resolve) => {
    markOpened = resolve;
  });
  return {
    offsets: [],
    texts: [],
    end: null,
    opened,
    markOpened,
    pause() {},
    resume() {},
    cancel() {},
  };
}

/** For clients that pull: `pause()` holds the next read until `resume()`. */
function pauseGate(stream: LiveStream): { passed(): Promise<void> } {
  let gate: Promise<void> | null = null;
  let openGate = () => {};
  stream.pause = () => {
    gate ??= new Promise((resolve) => {
      openGate = resolve;
    });
  };
  stream.resume = () => {
    gate = null;
    openGate();
  };
  return { passed: async () => (gate === null ? undefined : gate) };
}

function grpcJsTransport(clients: () => LiveClients): LiveTransport {
  return {
    name: "gRPC (grpc-js)",
    async open({ topic, afterOffset, token }) {
      const stream = newStream();
      const metadata = new grpc.Metadata();
      if (token !== undefined) metadata.set("authorization", `Bearer ${token}`);
      const position = afterOffset === undefined ? { latest: true } : { afterOffset: String(afterOffset) };
      const call = (
        clients().events as unknown as {
          Subscribe(
            request: unknown,
            metadata: grpc.Metadata,
          ): grpc.ClientReadableStream<{
            kind: string;
            message?: { offset: string; data: Buffer };
          }>;
        }
      ).Subscribe({ topic, position }, metadata);
      call.on("data", (event) => {
        stream.markOpened();
        if (event.kind !== "message") return;
        stream.offsets.push(Number(event.message!.offset));
        stream.texts.push(event.message!.data.toString());
      });
      call.on("error", (error: grpc.ServiceError) => {
        stream.end = {
          status: grpcStatusName(error.code),
          detail: error.details,
          resumeFrom: resumeFromText(error.details),
        };
        stream.markOpened();
      });
      call.on("end", () => {
        stream.end ??= { status: "OK", detail: "", resumeFrom: null };
      });
      stream.pause = () => call.pause();
      stream.resume = () => call.resume();
      stream.cancel = () => call.cancel();
      return stream;
    },
  };
}

/** connect-es over HTTP/1.1, one connection per call (no keep-alive), so nothing idles at teardown. */
function connectEsTransport(kind: "gRPC-Web" | "Connect", baseUrl: () => string): LiveTransport {
  const agent = new HttpAgent({ keepAlive: false });
  return {
    name: `${kind} (connect-es)`,
    async open({ topic, afterOffset, token }) {
      const stream = newStream();
      const options = { baseUrl: baseUrl(), httpVersion: "1.1" as const, nodeOptions: { agent } };
      const transport = kind === "Connect" ? createConnectTransport(options) : createGrpcWebTransport(options);
      const controller = new AbortController();
      const gate = pauseGate(stream);
      stream.cancel = () => controller.abort();
      const position =
        afterOffset === undefined
          ? { kind: { case: "latest" as const, value: true } }
          : { kind: { case: "afterOffset" as const, value: BigInt(afterOffset) } };
      void (async () => {
        try {
          for await (const event of createClient(Events, transport).subscribe(
            { topic, position },
            { headers: bearer(token), signal: controller.signal },
          )) {
            stream.markOpened();
            if (event.kind.case === "message") {
              stream.offsets.push(Number(event.kind.value.offset));
              stream.texts.push(Buffer.from(event.kind.value.data).toString());
            }
            // While paused, the next read waits: connect-es stops reading the response, the socket fills.
            await gate.passed();
          }
          stream.end = { status: "OK", detail: "", resumeFrom: null };
        } catch (error) {
          const failure = ConnectError.from(error);
          stream.end = {
            status: connectStatusName(failure.code),
            detail: failure.rawMessage,
            resumeFrom: resumeFromText(failure.rawMessage),
          };
        }
        stream.markOpened();
      })();
      return stream;
    },
  };
}

function sseTransport(baseUrl: () => string): LiveTransport {
  return {
    name: "SSE",
    async open({ topic, afterOffset, token }) {
      const stream = newStream();
      const [, project, , id] = topic.split("/");
      const from = afterOffset === undefined ? "latest" : String(afterOffset);
      let request: ClientRequest | null = null;
      let paused = false;
      let response: import("node:http").IncomingMessage | null = null;
      stream.pause = () => {
        paused = true;
        response?.pause();
      };
      stream.resume = () => {
        paused = false;
        response?.resume();
      };
      stream.cancel = () => request?.destroy();
      request = httpGet(
        `${baseUrl()}/v1/projects/${project}/topics/${id}/events?from=${from}`,
        { headers: { accept: "text/event-stream", ...bearer(token) }, agent: false },
        (incoming) => {
          response = incoming;
          incoming.setEncoding("utf8");
          let buffer = "";
          if (incoming.statusCode !== 200) {
            incoming.on("data", (chunk: string) => {
              buffer += chunk;
            });
            incoming.on("end", () => {
              const status = httpStatusName[incoming.statusCode ?? 0] ?? `HTTP_${incoming.statusCode}`;
              stream.end = { status, detail: buffer, resumeFrom: null };
              stream.markOpened();
            });
            return;
          }
          if (paused) incoming.pause();
          incoming.on("data", (chunk: string) => {
            buffer += chunk;
            let split = buffer.indexOf("\n\n");
            while (split >= 0) {
              const block = buffer.slice(0, split);
              buffer = buffer.slice(split + 2);
              split = buffer.indexOf("\n\n");
              stream.markOpened();
              const fields = new Map<string, string>();
              for (const line of block.split("\n")) {
                const colon = line.indexOf(": ");
                if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 2));
              }
              const event = fields.get("event");
              const data = fields.get("data");
              if (data === undefined) continue;
              if (event === "error") {
                const body = JSON.parse(data) as { status: string; message: string; resumeFrom: string };
                stream.end = { status: body.status, detail: body.message, resumeFrom: Number(body.resumeFrom) };
              } else if (event === "message" || event === undefined) {
                const message = JSON.parse(data) as { offset: string; data: string };
                stream.offsets.push(Number(message.offset));
                stream.texts.push(Buffer.from(message.data, "base64").toString());
              }
            }
          });
          incoming.on("close", () => {
            stream.end ??= { status: "OK", detail: "", resumeFrom: null };
          });
        },
      );
      request.on("error", () => {
        stream.end ??= { status: "CANCELLED", detail: "connection closed", resumeFrom: null };
      });
      return stream;
    },
  };
}

function webSocketTransport(baseUrl: () => string): LiveTransport {
  return {
    name: "WebSocket (ws)",
    async open({ topic, afterOffset, token }) {
      const stream = newStream();
      const socket = new WebSocket(`${baseUrl().replace(/^http/, "ws")}/v1/ws`, {
        headers: bearer(token),
        perMessageDeflate: false,
      });
      // ws resumes its socket whenever its own receiver drains: while paused, that resume is held back.
      const raw = () => (socket as unknown as { _socket: Socket | null })._socket;
      let heldResume: (() => Socket) | null = null;
      stream.pause = () => {
        const tcp = raw();
        if (tcp === null || heldResume !== null) return;
        heldResume = tcp.resume.bind(tcp);
        tcp.pause();
        tcp.resume = () => tcp;
      };
      stream.resume = () => {
        const tcp = raw();
        if (tcp === null || heldResume === null) return;
        tcp.resume = heldResume;
        heldResume = null;
        tcp.resume();
      };
      stream.cancel = () => socket.terminate();
      socket.on("open", () =>
        socket.send(
          JSON.stringify({
            type: "subscribe",
            id: "s",
            topic,
            from: afterOffset === undefined ? "latest" : String(afterOffset),
          }),
        ),
      );
      socket.on("message", (data) => {
        const frame = JSON.parse(String(data)) as {
          type: string;
          status?: string;
          message?: { offset: string; data: string } | string;
        };
        stream.markOpened();
        if (frame.type === "message" && typeof frame.message === "object") {
          stream.offsets.push(Number(frame.message.offset));
          stream.texts.push(Buffer.from(frame.message.data, "base64").toString());
        } else if (frame.type === "error") {
          stream.end = { status: frame.status ?? "UNKNOWN", detail: String(frame.message ?? ""), resumeFrom: null };
          socket.terminate();
        }
      });
      socket.on("close", (code, reason) => {
        const text = String(reason);
        // Close codes carry the status in their reason (1008 "UNAUTHENTICATED: …"); 1013 is a slow-consumer drop.
        const status = code === 1013 ? "RESOURCE_EXHAUSTED" : (/^([A-Z_]+)(?::|$)/.exec(text)?.[1] ?? `CLOSE_${code}`);
        stream.end ??= { status, detail: text, resumeFrom: resumeFromText(text) };
        stream.markOpened();
      });
      socket.on("error", () => undefined);
      return stream;
    },
  };
}

/**
 * Long poll: the "stream" is a loop of `?from=<cursor>&wait=…` requests, each resuming at the previous `nextFrom`.
 * Pausing stops issuing polls (the server holds nothing for a client between polls); cancel aborts the waiting poll.
 */
function longPollTransport(baseUrl: () => string): LiveTransport {
  return {
    name: "long poll (fetch)",
    async open({ topic, afterOffset, token }) {
      const stream = newStream();
      const [, project, , id] = topic.split("/");
      const controller = new AbortController();
      const gate = pauseGate(stream);
      stream.cancel = () => controller.abort();
      // `latest` is pinned by a first poll that does not wait; its `nextFrom` is the cursor from then on.
      let cursor = afterOffset === undefined ? "latest" : String(afterOffset);
      let wait = afterOffset === undefined ? 0 : 2;
      if (afterOffset !== undefined) stream.markOpened();
      void (async () => {
        try {
          while (!controller.signal.aborted) {
            await gate.passed();
            const response = await fetch(
              `${baseUrl()}/v1/projects/${project}/topics/${id}/events?from=${cursor}&wait=${wait}&max=50`,
              { headers: { connection: "close", ...bearer(token) }, signal: controller.signal },
            );
            wait = 2;
            const body = (await response.json()) as {
              messages?: { offset: string; data: string }[];
              nextFrom?: string;
              error?: { status: string; message: string };
            };
            if (response.status !== 200) {
              stream.end = {
                status: body.error?.status ?? httpStatusName[response.status] ?? `HTTP_${response.status}`,
                detail: body.error?.message ?? "",
                resumeFrom: null,
              };
              break;
            }
            for (const message of body.messages ?? []) {
              stream.offsets.push(Number(message.offset));
              stream.texts.push(Buffer.from(message.data, "base64").toString());
            }
            cursor = body.nextFrom!;
            stream.markOpened();
          }
        } catch {
          stream.end ??= { status: "CANCELLED", detail: "aborted by the client", resumeFrom: null };
        }
        stream.markOpened();
      })();
      return stream;
    },
  };
}

async function sign(grants: Record<string, unknown>): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ streamgate: grants })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject("scenario")
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt(now - 10)
    .setExpirationTime(now + 600)
    .sign(new TextEncoder().encode(SECRET));
}

describe("transport scenarios - one suite over gRPC, gRPC-Web, Connect, SSE, WebSocket and long poll", () => {
  let server: TestServer;
  let secured: TestServer;
  let clients: LiveClients;
  let securedClients: LiveClients;
  const project = uniqueName("scenarios");
  const open: LiveStream[] = [];

  before(async () => {
    [server, secured] = await Promise.all([
      startTestServer({ heartbeatMs: HEARTBEAT_MS, maxStreamBufferBytes: BUFFER_BYTES }),
      startTestServer({ heartbeatMs: HEARTBEAT_MS, authSecret: SECRET, authIssuer: ISSUER, authAudience: AUDIENCE }),
    ]);
    clients = createLiveClients(server.hostPort);
    securedClients = createLiveClients(secured.hostPort);
  });
  after(async () => {
    for (const stream of open) stream.cancel();
    clients?.close();
    securedClients?.close();
    await Promise.all([server?.close(), secured?.close()]);
  });

  const transports = (target: () => TestServer, grpcClients: () => LiveClients): LiveTransport[] => {
    const url = () => target().url;
    return [
      grpcJsTransport(grpcClients),
      connectEsTransport("gRPC-Web", url),
      connectEsTransport("Connect", url),
      sseTransport(url),
      webSocketTransport(url),
      longPollTransport(url),
    ];
  };
  const plain = transports(
    () => server,
    () => clients,
  );
  const withAuth = transports(
    () => secured,
    () => securedClients,
  );

  async function openStream(transport: LiveTransport, args: OpenArgs): Promise<LiveStream> {
    const stream = await transport.open(args);
    open.push(stream);
    await stream.opened;
    return stream;
  }
  async function newTopic(target: TestServer = server): Promise<string> {
    const name = `projects/${project}/topics/${uniqueName("t")}`;
    await target.server.engine.createTopic({ name });
    return name;
  }
  const publish = (topic: string, texts: string[], target: TestServer = server) =>
    target.server.engine.publish(
      topic,
      texts.map((text) => ({ data: Buffer.from(text), attributes: {}, orderingKey: "" })),
    );
  const received = (stream: LiveStream, count: number, what: string) =>
    waitFor(() => stream.offsets.length >= count || stream.end !== null, {
      timeoutMs: 15_000,
      describe: () => `${what}: ${stream.offsets.length} of ${count} messages (end ${JSON.stringify(stream.end)})`,
    });
  async function subscribers(target: TestServer): Promise<number> {
    const text = await (await fetch(`${target.url}/metrics`, { headers: { connection: "close" } })).text();
    const match = /^streamgate_stream_subscribers (\d+)/m.exec(text);
    assert.ok(match, "the metrics expose streamgate_stream_subscribers");
    return Number(match[1]);
  }
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, index) => from + index);

  for (const transport of plain) {
    it(`${transport.name} - publish → receive: live messages arrive once, in order, with their payloads`, async () => {
      const topic = await newTopic();
      const stream = await openStream(transport, { topic });
      await publish(topic, ["one", "two", "three"]);
      await publish(topic, ["four"]);
      await received(stream, 4, transport.name);
      assert.equal(stream.end, null, `still open: ${JSON.stringify(stream.end)}`);
      assert.deepEqual(stream.offsets, [1, 2, 3, 4]);
      assert.deepEqual(stream.texts, ["one", "two", "three", "four"]);
      stream.cancel();
    });

    it(`${transport.name} - resume: opening after offset 4 replays 5…10 then live 11, each exactly once`, async () => {
      const topic = await newTopic();
      await publish(
        topic,
        range(1, 10).map((offset) => `m${offset}`),
      );
      const stream = await openStream(transport, { topic, afterOffset: 4 });
      await received(stream, 6, `${transport.name} replay`);
      await publish(topic, ["m11"]);
      await received(stream, 7, `${transport.name} live`);
      await delay(3 * HEARTBEAT_MS); // room for a duplicate to show up
      assert.deepEqual(stream.offsets, range(5, 11));
      assert.deepEqual(
        stream.texts,
        range(5, 11).map((offset) => `m${offset}`),
      );
      stream.cancel();
    });

    it(`${transport.name} - slow consumer: a client that stops reading loses nothing and resumes from where it was`, async () => {
      const topic = await newTopic();
      const stream = await openStream(transport, { topic });
      stream.pause();
      // 2,000 × 4 kB = 8 MB against a 64 KiB buffer, in pages of 20 kB (a page that fits is not a "big batch").
      const total = 2_000;
      const payload = "x".repeat(4_000);
      for (let sent = 0; sent < total; sent += 5)
        await publish(
          topic,
          Array.from({ length: 5 }, () => payload),
        );
      stream.resume();
      await waitFor(() => stream.end !== null || stream.offsets.length === total, {
        timeoutMs: 30_000,
        describe: () => `${transport.name}: dropped or complete (${stream.offsets.length} received)`,
      });
      const seen = stream.offsets.length;
      assert.deepEqual(stream.offsets, range(1, seen), "what arrived is a gap-free prefix");
      let last = seen;
      if (transport.name.startsWith("long poll")) {
        // Nothing is held for a long-poll client between polls: it reads the log at its own pace.
        assert.equal(stream.end, null);
        assert.equal(seen, total);
      } else {
        assert.ok(stream.end, "a stream transport drops the slow client");
        assert.equal(stream.end.status, "RESOURCE_EXHAUSTED", JSON.stringify(stream.end));
        assert.match(stream.end.detail, /slow consumer/);
        assert.ok(seen < total, `dropped before the end (${seen} of ${total})`);
        if (stream.end.resumeFrom !== null)
          assert.equal(stream.end.resumeFrom, seen, "the drop names the last offset received");
        last = stream.end.resumeFrom ?? seen;
        const resumed = await openStream(transport, { topic, afterOffset: last });
        await received(resumed, total - last, `${transport.name} resumed`);
        assert.deepEqual(resumed.offsets, range(last + 1, total), "the rest, no gap, no duplicate");
        resumed.cancel();
      }
      stream.cancel();
    });

    it(`${transport.name} - a client that keeps up is not dropped by one publish batch forty times its buffer`, async () => {
      const topic = await newTopic();
      const stream = await openStream(transport, { topic });
      const total = 130; // 130 × 20 kB ≈ 2.6 MB in one Publish, against a 64 KiB buffer
      await publish(
        topic,
        range(1, total).map((offset) => `${offset}:`.padEnd(20_000, "y")),
      );
      await received(stream, total, transport.name);
      assert.equal(stream.end, null, `not dropped: ${JSON.stringify(stream.end)}`);
      assert.deepEqual(stream.offsets, range(1, total));
      assert.deepEqual(
        stream.texts.map((text) => text.slice(0, text.indexOf(":"))),
        range(1, total).map(String),
      );
      stream.cancel();
    });

    it(`${transport.name} - cancel: the server lets go of the client's subscription and serves the next one`, async () => {
      const topic = await newTopic();
      // Earlier tests cancelled their streams, and a release may still be on its way: counted from a moving
      // baseline, our subscription and a late release cancelled out (seen under load). Every earlier stream is let go.
      const before = 0;
      await waitFor(async () => (await subscribers(server)) === before, {
        timeoutMs: 10_000,
        describe: () => "the earlier tests' hub subscriptions to be released",
      });
      const stream = await openStream(transport, { topic });
      await publish(topic, ["first"]);
      await received(stream, 1, transport.name);
      await waitFor(async () => (await subscribers(server)) > before, {
        timeoutMs: 5_000,
        describe: () => "the stream's hub subscription to be counted",
      });
      stream.cancel();
      await waitFor(async () => (await subscribers(server)) === before, {
        timeoutMs: 10_000,
        describe: () => `the hub subscription to be released after ${transport.name} cancelled`,
      });
      const next = await openStream(transport, { topic, afterOffset: 1 });
      await publish(topic, ["second"]);
      await received(next, 1, `${transport.name} after cancel`);
      assert.deepEqual(next.texts, ["second"]);
      next.cancel();
    });
  }

  for (const transport of withAuth) {
    it(`${transport.name} - bad token: none is UNAUTHENTICATED, a token for another topic PERMISSION_DENIED, the right one streams`, async () => {
      const topic = await newTopic(secured);
      const other = await newTopic(secured);
      const topicId = topic.split("/").pop()!;
      const good = await sign({ subscribe: [`topics/${topicId}`] });
      const wrong = await sign({ subscribe: [`topics/${other.split("/").pop()}`] });

      const anonymous = await openStream(transport, { topic });
      await waitFor(() => anonymous.end !== null, {
        timeoutMs: 10_000,
        describe: () => "the anonymous stream refused",
      });
      assert.equal(anonymous.end!.status, "UNAUTHENTICATED", JSON.stringify(anonymous.end));
      assert.deepEqual(anonymous.offsets, []);

      const garbage = await openStream(transport, { topic, token: "not.a.jwt" });
      await waitFor(() => garbage.end !== null, { timeoutMs: 10_000, describe: () => "the malformed token refused" });
      assert.equal(garbage.end!.status, "UNAUTHENTICATED", JSON.stringify(garbage.end));

      const denied = await openStream(transport, { topic, token: wrong });
      await waitFor(() => denied.end !== null, { timeoutMs: 10_000, describe: () => "the wrong grant refused" });
      assert.equal(denied.end!.status, "PERMISSION_DENIED", JSON.stringify(denied.end));
      assert.match(denied.end!.detail, new RegExp(topicId));

      const allowed = await openStream(transport, { topic, token: good });
      await publish(topic, ["authorized"], secured);
      await received(allowed, 1, `${transport.name} with the right token`);
      assert.equal(allowed.end, null);
      assert.deepEqual(allowed.texts, ["authorized"]);
      allowed.cancel();
    });
  }
});
