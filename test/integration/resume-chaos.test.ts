// Resume under chaos: while events are published, the TCP connection of each client (SSE, WebSocket, long poll through
// streamgate/client; gRPC Events/Subscribe through @grpc/grpc-js resuming with after_offset) is cut at random points;
// each client must end with exactly the published sequence. The 20,000 events × 100 cuts run by default
// (about 40 s here); STREAMGATE_CHAOS_QUICK=1 runs 5,000 × 40 (about 15 s).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createStreamClient, type StreamTransport } from "../../src/client/index.js";
import { type CutProxy, startCutProxy } from "../harness/cut-proxy.js";
import { grpc, liveProtoPaths } from "../harness/live-clients.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";

/** `connection: close`, so no idle keep-alive socket outlives the test (the harness fails on leaked connections). */
const closingFetch: typeof fetch = (input, init = {}) =>
  fetch(input, { ...init, headers: { ...(init.headers as Record<string, string>), connection: "close" } });

const QUICK = process.env.STREAMGATE_CHAOS_QUICK === "1";
const TOTAL = QUICK ? 5_000 : 20_000;
const CUTS = QUICK ? 40 : 100;
/** Mean time between two cuts of one client; publishing is spread over about CUTS × this. */
const MEAN_CUT_INTERVAL_MS = 150;
const CHUNK = 25;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What one client saw: offsets and payloads in arrival order, and how many times it reconnected. */
interface Received {
  offsets: number[];
  data: string[];
  ids: string[];
  reconnects: number;
}

const newReceived = (): Received => ({ offsets: [], data: [], ids: [], reconnects: 0 });

/** Cuts every connection through `proxy` `cuts` times at random moments; a cut only counts if it cut something. */
async function cutRandomly(proxy: CutProxy, cuts: number, done: () => boolean): Promise<number> {
  let performed = 0;
  while (performed < cuts && !done()) {
    await sleep(Math.random() * 2 * MEAN_CUT_INTERVAL_MS);
    while (proxy.open() === 0 && !done()) await sleep(2);
    if (proxy.cut() > 0) performed++;
  }
  return performed;
}

/** streamgate/client over `transport`, through the proxy, from earliest until TOTAL messages arrived. */
async function receiveWithClient(
  url: string,
  transport: StreamTransport,
  topic: string,
  out: Received,
  signal: AbortSignal,
): Promise<void> {
  const client = createStreamClient({
    baseUrl: url,
    transport,
    fetch: closingFetch,
    reconnect: { initialDelayMs: 5, maxDelayMs: 100, jitter: 0.5 },
    // Three of the server's 1 s heartbeats: a connection the HTTP stack silently lost is noticed within 3 s.
    idleTimeoutMs: 3_000,
    longPollWaitSeconds: 2,
  });
  const decoder = new TextDecoder();
  try {
    for await (const message of client.subscribe(topic, {
      from: "earliest",
      signal,
      onReconnect: () => out.reconnects++,
    })) {
      out.offsets.push(message.offset);
      out.data.push(decoder.decode(message.data));
      out.ids.push(message.messageId);
      if (out.offsets.length >= TOTAL) break;
    }
  } finally {
    await client.close();
  }
}

interface GrpcEvent {
  kind: "message" | "gap" | "heartbeat";
  message?: { offset: string; messageId: string; data: Buffer };
}

/** A plain @grpc/grpc-js Events/Subscribe client that resumes with after_offset = the last offset it saw (no dedup). */
async function receiveWithGrpc(hostPort: string, topic: string, out: Received, signal: AbortSignal): Promise<void> {
  const protoLoader = await import("@grpc/proto-loader");
  const definition = protoLoader.loadSync(liveProtoPaths.events, {
    keepCase: false,
    longs: String,
    defaults: true,
    oneofs: true,
    includeDirs: [liveProtoPaths.events.replace(/streamgate\/v1\/events\.proto$/, "")],
  });
  const Events = (
    grpc.loadPackageDefinition(definition) as unknown as {
      streamgate: { v1: { Events: grpc.ServiceClientConstructor } };
    }
  ).streamgate.v1.Events;
  const client = new Events(hostPort, grpc.credentials.createInsecure(), {
    "grpc.initial_reconnect_backoff_ms": 5,
    "grpc.max_reconnect_backoff_ms": 100,
  });
  try {
    while (out.offsets.length < TOTAL && !signal.aborted) {
      const last = out.offsets.at(-1);
      const call = client.Subscribe({
        topic,
        position: last === undefined ? { earliest: true } : { afterOffset: String(last) },
      });
      await new Promise<void>((resolve) => {
        call.on("data", (event: GrpcEvent) => {
          if (event.kind !== "message" || event.message === undefined) return;
          out.offsets.push(Number(event.message.offset));
          out.data.push(event.message.data.toString("utf8"));
          out.ids.push(event.message.messageId);
          if (out.offsets.length >= TOTAL) call.cancel();
        });
        const cancel = () => call.cancel();
        signal.addEventListener("abort", cancel, { once: true });
        const finish = () => {
          signal.removeEventListener("abort", cancel);
          resolve();
        };
        call.on("error", finish);
        call.on("end", finish);
      });
      if (out.offsets.length < TOTAL) {
        out.reconnects++;
        await sleep(5);
      }
    }
  } finally {
    client.close();
  }
}

describe("resume under chaos", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ heartbeatMs: 1_000 });
  });
  after(async () => {
    await server.close();
  });

  it(`resume chaos - ${TOTAL} events; SSE, WebSocket, gRPC and long-poll clients each cut at ${CUTS} random points end with exactly the published sequence`, {
    timeout: 300_000,
  }, async () => {
    const started = Date.now();
    const topic = `projects/p/topics/${uniqueName("chaos")}`;
    await server.server.engine.createTopic({ name: topic });
    const clients = ["sse", "websocket", "grpc", "longpoll"] as const;
    const proxies = Object.fromEntries(
      await Promise.all(clients.map(async (name) => [name, await startCutProxy(server)] as const)),
    ) as Record<(typeof clients)[number], CutProxy>;
    // Ends every client if the test fails, so nothing keeps reconnecting after it.
    const stopAll = new AbortController();
    const received = Object.fromEntries(clients.map((name) => [name, newReceived()])) as Record<
      (typeof clients)[number],
      Received
    >;
    try {
      const publisher = createStreamClient({ baseUrl: server.url, fetch: closingFetch });
      const publishedIds: string[] = [];
      const chunkPauseMs = (CUTS * MEAN_CUT_INTERVAL_MS) / (TOTAL / CHUNK);
      const publishing = (async () => {
        for (let sent = 0; sent < TOTAL; sent += CHUNK) {
          const results = await publisher.publish(
            topic,
            Array.from({ length: CHUNK }, (_, index) => ({ data: `e${sent + index + 1}` })),
          );
          publishedIds.push(...results.map((result) => result.messageId));
          await sleep(chunkPauseMs);
        }
        await publisher.close();
      })();

      const progress = setInterval(() => {
        if (process.env.STREAMGATE_CHAOS_PROGRESS !== "1") return;
        const counts = clients.map(
          (name) =>
            `${name}=${received[name].offsets.length}/${received[name].reconnects} (open ${proxies[name].open()}, ended ${proxies[name].ended()})`,
        );
        console.log(`# chaos +${Date.now() - started} ms: published ${publishedIds.length}; ${counts.join(" ")}`);
      }, 2_000);
      const receiving = Promise.all([
        receiveWithClient(proxies.sse.url, "sse", topic, received.sse, stopAll.signal),
        receiveWithClient(proxies.websocket.url, "websocket", topic, received.websocket, stopAll.signal),
        receiveWithGrpc(proxies.grpc.hostPort, topic, received.grpc, stopAll.signal),
        receiveWithClient(proxies.longpoll.url, "longpoll", topic, received.longpoll, stopAll.signal),
      ]);
      const cutting = Promise.all(
        clients.map((name) =>
          cutRandomly(proxies[name], CUTS, () => stopAll.signal.aborted || received[name].offsets.length >= TOTAL),
        ),
      );
      await publishing;
      const publishedMs = Date.now() - started;
      await receiving;
      const cuts = await cutting;
      clearInterval(progress);

      const expectedOffsets = Array.from({ length: TOTAL }, (_, index) => index + 1);
      const expectedData = expectedOffsets.map((offset) => `e${offset}`);
      for (const [index, name] of clients.entries()) {
        const got = received[name];
        assert.deepEqual(got.offsets, expectedOffsets, `${name}: every offset once, in order`);
        assert.deepEqual(got.data, expectedData, `${name}: the published payloads in order`);
        assert.deepEqual(got.ids, publishedIds, `${name}: the published message ids in order`);
        assert.ok(
          cuts[index]! >= Math.min(CUTS, 10),
          `${name}: connection cut ${cuts[index]} times (wanted ${CUTS}; fewer only if it finished first)`,
        );
      }
      const summary = clients
        .map((name, index) => `${name}: ${cuts[index]} cuts, ${received[name].reconnects} reconnects`)
        .join("; ");
      console.log(
        `# resume chaos: ${TOTAL} events published in ${publishedMs} ms, all received after ${Date.now() - started} ms; ${summary}`,
      );
    } finally {
      stopAll.abort();
      await Promise.all(clients.map((name) => proxies[name].close()));
    }
  });
});
