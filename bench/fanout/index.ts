// The "fanout" benchmark: one topic, 1,000 subscribers; deliveries/s at saturation and p99 latency at a
// fixed rate, streamgate (SSE, WebSocket) vs a bare `ws` server broadcasting pre-serialized frames.
import { join } from "node:path";
import type { BenchContext, Benchmark } from "../lib/benchmark.js";
import { processCpuMs } from "../lib/process-cpu.js";
import { type BenchOutcome, type Figure, type JsonValue, makeFigure } from "../lib/report.js";
import { median, round } from "../lib/stats.js";
import { type StreamgateProcess, startStreamgateProcess } from "../lib/streamgate-process.js";
import { forkForMessage } from "./child.js";
import type { WorkerConfig, WorkerResult } from "./client-worker.js";

type Target = WorkerConfig["target"];
const ANCHOR = "bare ws broadcast, pre-serialized";
const SSE_FLOOR = "bare node:http SSE broadcast, pre-serialized";

interface Settings {
  subscribers: number;
  dataBytes: number;
  batch: number;
  window: number;
  warmupMs: number;
  saturationMs: number;
  rate: number;
  latencyMs: number;
  sampleEvery: number;
}

const DEFAULTS: Settings = {
  subscribers: 1_000,
  dataBytes: 128,
  batch: 20,
  window: 200,
  warmupMs: 1_000,
  saturationMs: 3_000,
  rate: 2_000,
  latencyMs: 3_000,
  sampleEvery: 50,
};

async function runWorker(
  context: BenchContext,
  settings: Settings,
  target: Target,
  port: number,
  topic: string,
): Promise<WorkerResult & { serverCpuMs: number | null }> {
  const config: WorkerConfig = { ...settings, target, host: "127.0.0.1", port, topic };
  const script = join(context.repoRoot, "bench", "fanout", "client-worker.ts");
  const { message } = forkForMessage<{ ok: boolean; result?: WorkerResult; error?: string }>(
    context.repoRoot,
    script,
    [JSON.stringify(config)],
    120_000,
  );
  const reply = await message;
  if (!reply.ok || reply.result === undefined) throw new Error(`${target} worker failed: ${reply.error}`);
  return { ...reply.result, serverCpuMs: null };
}

async function createTopic(server: StreamgateProcess, topic: string): Promise<void> {
  const response = await fetch(`${server.url}/v1/${topic}`, {
    method: "PUT",
    headers: { "content-type": "application/json", connection: "close" },
    body: "{}",
  });
  if (!response.ok) throw new Error(`create ${topic}: ${response.status} ${await response.text()}`);
}

export const fanoutBenchmark: Benchmark = {
  name: "fanout",
  title: "Fan-out: one topic to 1,000 SSE / WebSocket subscribers — streamgate vs a bare ws broadcast",
  maxDurationMs: 6 * 60_000,
  async run(context: BenchContext): Promise<BenchOutcome> {
    const settings: Settings = {
      ...DEFAULTS,
      subscribers: Math.max(50, Math.round(DEFAULTS.subscribers * context.scale)),
    };
    const targets: Target[] = context.anchorOnly ? ["bare", "bare-sse"] : ["bare", "bare-sse", "ws", "sse"];
    const runs: Record<Target, (WorkerResult & { serverCpuMs: number | null; pid: number })[]> = {
      bare: [],
      "bare-sse": [],
      ws: [],
      sse: [],
    };
    let streamgate: StreamgateProcess | undefined;
    const anchorProcess = forkForMessage<{ port: number }>(
      context.repoRoot,
      join(context.repoRoot, "bench", "fanout", "bare-ws-server.ts"),
      [],
      30_000,
    );
    try {
      const { port: anchorPort } = await anchorProcess.message;
      if (!context.anchorOnly) {
        streamgate = await startStreamgateProcess({
          repoRoot: context.serverRoot,
          nodeArgs: context.cpuProfileDir === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", context.cpuProfileDir],
        });
      }
      for (let rep = 0; rep < context.repetitions; rep++) {
        for (const target of targets) {
          const server = target === "bare" || target === "bare-sse" ? null : streamgate!;
          const topic = `projects/bench/topics/fanout-${target}-${rep}`;
          if (server !== null) await createTopic(server, topic);
          const pid = server?.pid ?? anchorProcess.child.pid ?? 0;
          const cpuBefore = processCpuMs(pid);
          const result = await runWorker(context, settings, target, server?.port ?? anchorPort, topic);
          const cpuAfter = processCpuMs(pid);
          result.serverCpuMs = cpuBefore !== null && cpuAfter !== null ? cpuAfter - cpuBefore : null;
          runs[target].push({ ...result, pid });
          context.log(
            `  rep ${rep + 1} ${target}: ${Math.round(result.deliveriesPerSecond).toLocaleString("en-US")} deliveries/s ` +
              `(${Math.round(result.eventsPerSecond)} events/s), p99 ${round(result.latency.p99Ms, 1)} ms @ ${settings.rate}/s ` +
              `(delivered ${round(result.latencyDeliveredShare * 100, 1)} %), closed ${result.closed}`,
          );
        }
      }
    } finally {
      await streamgate?.stop();
      anchorProcess.child.kill("SIGTERM");
    }

    const series = (target: Target, pick: (run: WorkerResult) => number) => runs[target].map(pick);
    const figures: Figure[] = [];
    const mineOrAnchor = (target: Target) => (context.anchorOnly ? [] : series(target, (r) => r.deliveriesPerSecond));
    for (const [target, label] of [
      ["ws", "WebSocket"],
      ["sse", "SSE"],
    ] as const) {
      figures.push(
        makeFigure({
          name: `${label} fan-out to ${settings.subscribers} subscribers, saturation`,
          unit: "deliveries/s",
          higherIsBetter: true,
          samples: mineOrAnchor(target),
          anchorName: ANCHOR,
          anchorSamples: series("bare", (r) => r.deliveriesPerSecond),
          target: { kind: "ratioAtLeast", ratio: label === "SSE" ? 0.9 : 0.8 },
          median,
        }),
        makeFigure({
          name: `${label} p99 publish→receive @ ${settings.rate.toLocaleString("en-US")} events/s × ${settings.subscribers}`,
          unit: "ms",
          higherIsBetter: false,
          samples: context.anchorOnly ? [] : series(target, (r) => r.latency.p99Ms),
          anchorName: ANCHOR,
          anchorSamples: series("bare", (r) => r.latency.p99Ms),
          target: { kind: "valueBelow", value: 50 },
          median,
        }),
      );
    }
    // The SSE floor: bare Node serving SSE to the same clients, against the anchor (bare ws) and against SSE.
    figures.push(
      makeFigure({
        name: `${SSE_FLOOR} to ${settings.subscribers} subscribers, saturation (the SSE floor)`,
        unit: "deliveries/s",
        higherIsBetter: true,
        samples: series("bare-sse", (r) => r.deliveriesPerSecond),
        anchorName: ANCHOR,
        anchorSamples: series("bare", (r) => r.deliveriesPerSecond),
        target: null,
        median,
      }),
      makeFigure({
        name: `SSE fan-out to ${settings.subscribers} subscribers, saturation, against the SSE floor`,
        unit: "deliveries/s",
        higherIsBetter: true,
        samples: mineOrAnchor("sse"),
        anchorName: SSE_FLOOR,
        anchorSamples: series("bare-sse", (r) => r.deliveriesPerSecond),
        target: null,
        median,
      }),
    );
    // Server CPU over the whole worker run (connect, saturation, fixed rate) per message delivered in it: the
    // figure that moves least with the other load on a shared machine.
    const cpuPerDelivery = (run: WorkerResult & { serverCpuMs: number | null }) =>
      run.serverCpuMs === null ? Number.NaN : round((run.serverCpuMs * 1000) / Math.max(1, run.totalDelivered), 3);
    for (const [target, label] of [
      ["ws", "WebSocket"],
      ["sse", "SSE"],
    ] as const) {
      figures.push(
        makeFigure({
          name: `${label} server CPU per delivery`,
          unit: "µs",
          higherIsBetter: false,
          samples: context.anchorOnly ? [] : runs[target].map(cpuPerDelivery),
          anchorName: ANCHOR,
          anchorSamples: runs.bare.map(cpuPerDelivery),
          target: null,
          median,
        }),
      );
    }
    const details: Record<string, JsonValue> = {};
    for (const target of targets) {
      details[`${target}: runs`] = runs[target].map((run) => ({
        connectMs: round(run.connectMs),
        deliveriesPerSecond: round(run.deliveriesPerSecond),
        eventsPerSecond: round(run.eventsPerSecond),
        latency: {
          count: run.latency.count,
          p50Ms: round(run.latency.p50Ms),
          p99Ms: round(run.latency.p99Ms),
          maxMs: round(run.latency.maxMs),
        },
        latencyPublished: run.latencyPublished,
        latencyDeliveredShare: round(run.latencyDeliveredShare, 4),
        closed: run.closed,
        closeReasons: run.closeReasons,
        clientCpuMs: round(run.clientCpuMs),
        serverCpuMs: run.serverCpuMs,
        totalDelivered: run.totalDelivered,
      }));
    }
    const s = settings;
    return {
      parameters: { ...s, repetitions: context.repetitions, scale: context.scale },
      figures,
      details,
      notes: [
        "streamgate runs as a child process (`node bin/streamgate.mjs serve`, embedded engine); the anchor is a child process too: a bare `ws` server that broadcasts pre-serialized frames (the same JSON shape and size as streamgate's WebSocket message frame) to every subscriber, one corked burst per subscriber per batch.",
        `Subscribers and the publisher run in one client child process per measurement (raw TCP clients that count frames/events without a full parser; every ${s.sampleEvery}th subscriber decodes the send time from the data for latency). The SSE floor is the same anchor process serving node:http SSE (one response.write per subscriber of the batch's events, serialized once) to the same SSE clients. Order per repetition: anchor, SSE floor, WebSocket, SSE; fresh topic each.`,
        `Saturation: batches of ${s.batch} events of ${s.dataBytes} B data as fast as the slowest subscriber lets a window of ${s.window} events advance (keeps every buffer far below the 1 MiB slow-consumer limit); ${s.warmupMs / 1000} s warm-up, then ${s.saturationMs / 1000} s counted. Deliveries = messages received summed over all subscribers.`,
        `Latency: ${s.rate} events/s published open-loop in 5 ms ticks for ${s.latencyMs / 1000} s (send time = performance.now() in the data; the same process receives); events not delivered within 5 s after the end are not in the percentiles but show as latencyDeliveredShare < 1 in details (share of events × subscribers that arrived). When that share is low the p99 covers only what got through: read the two together. Subscribers dropped as slow consumers (1013) show as closed/closeReasons.`,
        "Server, client and publisher share 2 noisy cores: the client process's CPU (details) is part of every figure, equally for streamgate and the anchor.",
      ],
    };
  },
};
