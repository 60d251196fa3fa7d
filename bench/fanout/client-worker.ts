// Child process of the fan-out bench: holds the subscribers (raw TCP WebSocket or SSE clients) and the
// publisher of one target, runs the saturation and fixed-rate phases, and sends the result over IPC.
// Subscribers and publisher share this process's clock, so publish→receive latency needs no clock sync.
import { performance } from "node:perf_hooks";
import { LatencyRecorder } from "../lib/stats.js";
import { openSse, openWebSocket, sendTimeOf, type WireStream } from "./wire-clients.js";

/** What the bench hands a worker (argv[2], JSON). */
export interface WorkerConfig {
  /** streamgate over WebSocket or SSE, the bare `ws` anchor, or the bare node:http SSE anchor. */
  target: "ws" | "sse" | "bare" | "bare-sse";
  host: string;
  port: number;
  /** Topic resource name (streamgate targets). */
  topic: string;
  subscribers: number;
  /** Every how many subscribers one records latency. */
  sampleEvery: number;
  /** Bytes of message data (the send time is its prefix). */
  dataBytes: number;
  /** Events per publish frame at saturation. */
  batch: number;
  /** Events published but not yet received by the slowest subscriber, at most (keeps every buffer bounded). */
  window: number;
  warmupMs: number;
  saturationMs: number;
  /** Fixed publish rate of the latency phase (events/s) and its length. */
  rate: number;
  latencyMs: number;
}

/** What a worker sends back. */
export interface WorkerResult {
  connectMs: number;
  /** Deliveries per second across all subscribers in the saturation window. */
  deliveriesPerSecond: number;
  /** Events per second published in that window. */
  eventsPerSecond: number;
  latency: { count: number; p50Ms: number; p90Ms: number; p99Ms: number; maxMs: number };
  /** Events the latency phase published, and the share of (events × subscribers) that arrived. */
  latencyPublished: number;
  latencyDeliveredShare: number;
  /** Subscribers the server closed during the run (slow-consumer drops would show here). */
  closed: number;
  closeReasons: string[];
  clientCpuMs: number;
  /** Messages received over the whole run (connect, both phases), summed over subscribers: divides server CPU. */
  totalDelivered: number;
}

const config = JSON.parse(process.argv[2] ?? "{}") as WorkerConfig;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => performance.now();

/** Data of one event: "<send ms>|" padded with x to dataBytes, base64 as the protocols carry it. */
function eventData(sendMs: number): string {
  const prefix = `${sendMs.toFixed(3)}|`;
  return Buffer.from(prefix.padEnd(config.dataBytes, "x")).toString("base64");
}

let anchorOffset = 0;
/** A pre-serialized frame of the anchor: the same JSON shape and size as streamgate's WebSocket message frame. */
function anchorFrame(sendMs: number): string {
  anchorOffset++;
  const message = {
    offset: String(anchorOffset),
    messageId: String(anchorOffset),
    publishTime: new Date().toISOString(),
    attributes: {},
    orderingKey: "",
    data: eventData(sendMs),
  };
  return `{"type":"message","id":"s","message":${JSON.stringify(message)}}`;
}

async function main(): Promise<WorkerResult> {
  const { host, port } = config;
  const recorder = new LatencyRecorder(2_000_000);
  let recording = false;
  const closeReasons: string[] = [];
  let closed = 0;
  const streams: WireStream[] = [];
  const cpuBefore = process.cpuUsage();
  const startedAt = now();
  const handlersFor = (sampled: boolean) => ({
    onMessage: sampled
      ? (frame: string | null) => {
          if (!recording || frame === null) return;
          const sent = sendTimeOf(frame);
          if (Number.isFinite(sent)) recorder.record(now() - sent);
        }
      : undefined,
    onClose: (code: number, reason: string) => {
      closed++;
      if (closeReasons.length < 5) closeReasons.push(`${code} ${reason}`);
    },
  });
  const eventsPath = `/v1/${config.topic}/events?from=latest`;
  // Bounded concurrency: 50 handshakes in flight.
  for (let first = 0; first < config.subscribers; first += 50) {
    const opening: Promise<WireStream>[] = [];
    for (let index = first; index < Math.min(config.subscribers, first + 50); index++) {
      const sampled = index % config.sampleEvery === 0;
      const base = { host, port, parse: sampled, handlers: handlersFor(sampled) };
      if (config.target === "sse") opening.push(openSse({ ...base, path: eventsPath }));
      else if (config.target === "ws")
        opening.push(
          openWebSocket({
            ...base,
            path: "/v1/ws",
            subscribeText: JSON.stringify({ type: "subscribe", id: "s", topic: config.topic, from: "latest" }),
            awaitText: '"subscribed"',
          }),
        );
      else if (config.target === "bare-sse") opening.push(openSse({ ...base, path: "/sse-sub" }));
      else opening.push(openWebSocket({ ...base, path: "/sub" }));
    }
    streams.push(...(await Promise.all(opening)));
  }
  const connectMs = now() - startedAt;

  // The publisher: one WebSocket; streamgate answers each publish frame with "published", the anchor with "ack".
  const anchor = config.target === "bare" || config.target === "bare-sse";
  let acked = 0;
  const publisher = await openWebSocket({
    host,
    port,
    path: anchor ? "/pub" : "/v1/ws",
    handlers: {
      onText: (text) => {
        if (text.startsWith('{"type":"published"') || text === "ack") acked++;
        else if (text.startsWith('{"type":"error"')) process.stderr.write(`publish error: ${text.slice(0, 300)}\n`);
      },
    },
  });
  const { clientFrame } = await import("./wire-clients.js");
  let published = 0;
  let sentFrames = 0;
  const publish = (count: number) => {
    const sendMs = now();
    let text: string;
    if (anchor) {
      const frames: string[] = [];
      for (let index = 0; index < count; index++) frames.push(anchorFrame(sendMs));
      text = frames.join("\n");
    } else {
      const data = eventData(sendMs);
      const messages = Array.from({ length: count }, () => ({ data }));
      text = JSON.stringify({ type: "publish", ref: `r${sentFrames}`, topic: config.topic, messages });
    }
    publisher.socket.write(clientFrame(1, Buffer.from(text)));
    sentFrames++;
    published += count;
  };
  const delivered = () => {
    let total = 0;
    for (const stream of streams) total += stream.messages;
    return total;
  };
  const slowest = () => {
    let least = Number.POSITIVE_INFINITY;
    for (const stream of streams) if (!stream.closed && stream.messages < least) least = stream.messages;
    return least === Number.POSITIVE_INFINITY ? published : least;
  };

  // Saturation: publish as fast as the slowest subscriber lets the window advance.
  const saturationStart = now();
  const measureFrom = saturationStart + config.warmupMs;
  const saturationEnd = measureFrom + config.saturationMs;
  let windowStart: { at: number; delivered: number; published: number } | null = null;
  while (now() < saturationEnd) {
    if (windowStart === null && now() >= measureFrom)
      windowStart = { at: now(), delivered: delivered(), published: slowest() };
    if (published - slowest() + config.batch <= config.window && sentFrames - acked < 8) publish(config.batch);
    else await sleep(1);
    if (closed === streams.length) break;
  }
  const end = { at: now(), delivered: delivered(), published: slowest() };
  const start = windowStart ?? { at: saturationStart, delivered: 0, published: 0 };
  const seconds = (end.at - start.at) / 1000;
  const deliveriesPerSecond = (end.delivered - start.delivered) / seconds;
  const eventsPerSecond = (end.published - start.published) / seconds;

  // Drain, then the fixed-rate phase: events due are published every 5 ms, open loop (no waiting on acks).
  const drainDeadline = now() + 5_000;
  while (slowest() < published && now() < drainDeadline) await sleep(5);
  const deliveredBefore = delivered();
  const publishedBefore = published;
  recording = true;
  const latencyStart = now();
  while (now() - latencyStart < config.latencyMs) {
    const due = Math.floor(((now() - latencyStart) / 1000) * config.rate) - (published - publishedBefore);
    if (due > 0 && sentFrames - acked < 400) publish(due);
    await sleep(5);
  }
  const latencyPublished = published - publishedBefore;
  const latencyDeadline = now() + 5_000;
  while (slowest() < published && now() < latencyDeadline) await sleep(5);
  recording = false;
  const latencyDeliveredShare = (delivered() - deliveredBefore) / Math.max(1, latencyPublished * streams.length);
  const totalDelivered = delivered();
  for (const stream of streams) stream.destroy();
  publisher.destroy();
  const cpu = process.cpuUsage(cpuBefore);
  return {
    connectMs,
    deliveriesPerSecond,
    eventsPerSecond,
    latency: recorder.summarize(),
    latencyPublished,
    latencyDeliveredShare,
    closed,
    closeReasons,
    clientCpuMs: (cpu.user + cpu.system) / 1000,
    totalDelivered,
  };
}

main().then(
  (result) => {
    process.send?.({ ok: true, result }, () => process.exit(0));
  },
  (error: unknown) => {
    process.send?.({ ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }, () =>
      process.exit(1),
    );
  },
);
