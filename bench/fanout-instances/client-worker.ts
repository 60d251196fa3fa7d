// Child process of the fanout-instances bench: SSE subscribers spread round-robin over N streamgate
// instances (one topic), one WebSocket publisher on the first instance; counts deliveries/s across all
// subscribers at saturation and sends the result over IPC.
import { performance } from "node:perf_hooks";
import { clientFrame, openSse, openWebSocket, type WireStream } from "../fanout/wire-clients.js";

/** What the bench hands a worker (argv[2], JSON). */
export interface InstancesWorkerConfig {
  host: string;
  /** HTTP ports of the instances; subscriber i connects to ports[i % N]; the publisher to ports[0]. */
  ports: number[];
  topic: string;
  subscribers: number;
  dataBytes: number;
  /** Events per publish frame. */
  batch: number;
  /** Events published but not yet received by the slowest subscriber, at most (bounds every buffer). */
  window: number;
  /** Publish frames awaiting "published", at most. */
  framesInFlight: number;
  warmupMs: number;
  saturationMs: number;
}

/** What a worker sends back. */
export interface InstancesWorkerResult {
  connectMs: number;
  deliveriesPerSecond: number;
  /** Events per second that reached every subscriber (slowest subscriber's progress) in the window. */
  eventsPerSecond: number;
  /** Deliveries/s per instance (subscribers of ports[i]). */
  perInstance: number[];
  published: number;
  publishErrors: number;
  closed: number;
  closeReasons: string[];
  clientCpuMs: number;
}

const config = JSON.parse(process.argv[2] ?? "{}") as InstancesWorkerConfig;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => performance.now();

async function main(): Promise<InstancesWorkerResult> {
  const { host, ports } = config;
  const closeReasons: string[] = [];
  let closed = 0;
  const streams: { stream: WireStream; instance: number }[] = [];
  const cpuBefore = process.cpuUsage();
  const startedAt = now();
  const handlers = {
    onClose: (code: number, reason: string) => {
      closed++;
      if (closeReasons.length < 5) closeReasons.push(`${code} ${reason}`);
    },
  };
  const path = `/v1/${config.topic}/events?from=latest`;
  for (let first = 0; first < config.subscribers; first += 50) {
    const opening: Promise<{ stream: WireStream; instance: number }>[] = [];
    for (let index = first; index < Math.min(config.subscribers, first + 50); index++) {
      const instance = index % ports.length;
      opening.push(
        openSse({ host, port: ports[instance]!, path, parse: false, handlers }).then((stream) => ({
          stream,
          instance,
        })),
      );
    }
    streams.push(...(await Promise.all(opening)));
  }
  const connectMs = now() - startedAt;
  // An SSE subscription on a remote instance may attach a moment after its 200; give them all a beat.
  await sleep(500);

  let acked = 0;
  let publishErrors = 0;
  const publisher = await openWebSocket({
    host,
    port: ports[0]!,
    path: "/v1/ws",
    handlers: {
      onText: (text) => {
        if (text.startsWith('{"type":"published"')) acked++;
        else if (text.startsWith('{"type":"error"')) {
          acked++;
          publishErrors++;
          if (publishErrors <= 3) process.stderr.write(`publish error: ${text.slice(0, 300)}\n`);
        }
      },
    },
  });
  const data = Buffer.from("x".repeat(config.dataBytes)).toString("base64");
  let published = 0;
  let sentFrames = 0;
  const publish = () => {
    const messages = Array.from({ length: config.batch }, () => ({ data }));
    const text = JSON.stringify({ type: "publish", ref: `r${sentFrames}`, topic: config.topic, messages });
    publisher.socket.write(clientFrame(1, Buffer.from(text)));
    sentFrames++;
    published += config.batch;
  };
  const delivered = () => {
    let total = 0;
    for (const { stream } of streams) total += stream.messages;
    return total;
  };
  const perInstance = () => {
    const totals = ports.map(() => 0);
    for (const { stream, instance } of streams) totals[instance]! += stream.messages;
    return totals;
  };
  const slowest = () => {
    let least = Number.POSITIVE_INFINITY;
    for (const { stream } of streams) if (!stream.closed && stream.messages < least) least = stream.messages;
    return least === Number.POSITIVE_INFINITY ? published : least;
  };

  const saturationStart = now();
  const measureFrom = saturationStart + config.warmupMs;
  const saturationEnd = measureFrom + config.saturationMs;
  let windowStart: { at: number; delivered: number; slowest: number; perInstance: number[] } | null = null;
  while (now() < saturationEnd) {
    if (windowStart === null && now() >= measureFrom)
      windowStart = { at: now(), delivered: delivered(), slowest: slowest(), perInstance: perInstance() };
    if (published - slowest() + config.batch <= config.window && sentFrames - acked < config.framesInFlight) publish();
    else await sleep(1);
    if (closed === streams.length) break;
  }
  const endAt = now();
  const end = { delivered: delivered(), slowest: slowest(), perInstance: perInstance() };
  const start = windowStart ?? { at: saturationStart, delivered: 0, slowest: 0, perInstance: ports.map(() => 0) };
  const seconds = (endAt - start.at) / 1000;
  for (const { stream } of streams) stream.destroy();
  publisher.destroy();
  const cpu = process.cpuUsage(cpuBefore);
  return {
    connectMs,
    deliveriesPerSecond: (end.delivered - start.delivered) / seconds,
    eventsPerSecond: (end.slowest - start.slowest) / seconds,
    perInstance: end.perInstance.map((total, index) => (total - start.perInstance[index]!) / seconds),
    published,
    publishErrors,
    closed,
    closeReasons,
    clientCpuMs: (cpu.user + cpu.system) / 1000,
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
