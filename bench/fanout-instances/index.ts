// The "fanout-instances" benchmark: fan-out deliveries/s with 1, 2 and 3 streamgate instances
// (`--engine jetstream`) behind one nats-server, 600 SSE subscribers spread evenly over them, the
// publisher on instance 1. Anchors from the same run: the jetstream engine with 1 instance (for the
// scaling ratio) and the embedded engine with 1 instance.
import { join } from "node:path";
import { type NatsServer, startNatsServer } from "../../test/harness/nats-server.js";
import { forkForMessage } from "../fanout/child.js";
import type { BenchContext, Benchmark } from "../lib/benchmark.js";
import { processCpuMs } from "../lib/process-cpu.js";
import { type BenchOutcome, type Figure, type JsonValue, makeFigure } from "../lib/report.js";
import { median, round } from "../lib/stats.js";
import { type StreamgateProcess, startStreamgateProcess } from "../lib/streamgate-process.js";
import type { InstancesWorkerConfig, InstancesWorkerResult } from "./client-worker.js";

const MAX_INSTANCES = 3;
const ANCHOR_ONE = "streamgate --engine jetstream, 1 instance";

interface Settings {
  subscribers: number;
  dataBytes: number;
  batch: number;
  window: number;
  framesInFlight: number;
  warmupMs: number;
  saturationMs: number;
}

const DEFAULTS: Settings = {
  subscribers: 600,
  dataBytes: 128,
  batch: 20,
  window: 200,
  framesInFlight: 8,
  warmupMs: 1_000,
  saturationMs: 3_000,
};

/** A measured configuration: "js1".."js3" (jetstream engine, N instances) or "embedded" (1 instance). */
type Config = "embedded" | "js1" | "js2" | "js3";

interface Run extends InstancesWorkerResult {
  serverCpuMs: (number | null)[];
}

async function createTopic(server: StreamgateProcess, topic: string): Promise<void> {
  const response = await fetch(`${server.url}/v1/${topic}`, {
    method: "PUT",
    headers: { "content-type": "application/json", connection: "close" },
    body: "{}",
  });
  if (!response.ok) throw new Error(`create ${topic}: ${response.status} ${await response.text()}`);
}

async function measure(
  context: BenchContext,
  settings: Settings,
  servers: readonly StreamgateProcess[],
  topic: string,
): Promise<Run> {
  await createTopic(servers[0]!, topic);
  const config: InstancesWorkerConfig = {
    ...settings,
    host: "127.0.0.1",
    ports: servers.map((server) => server.port),
    topic,
  };
  const cpuBefore = servers.map((server) => processCpuMs(server.pid));
  const { message } = forkForMessage<{ ok: boolean; result?: InstancesWorkerResult; error?: string }>(
    context.repoRoot,
    join(context.repoRoot, "bench", "fanout-instances", "client-worker.ts"),
    [JSON.stringify(config)],
    60_000,
  );
  const reply = await message;
  if (!reply.ok || reply.result === undefined) throw new Error(`worker failed: ${reply.error}`);
  const serverCpuMs = servers.map((server, index) => {
    const after = processCpuMs(server.pid);
    const before = cpuBefore[index];
    return after !== null && before !== null && before !== undefined ? round(after - before) : null;
  });
  return { ...reply.result, serverCpuMs };
}

export const fanoutInstancesBenchmark: Benchmark = {
  name: "fanout-instances",
  title: "Fan-out with 1, 2, 3 streamgate instances (--engine jetstream) behind one nats-server, 600 SSE subscribers",
  maxDurationMs: 4 * 60_000,
  async run(context: BenchContext): Promise<BenchOutcome> {
    const settings: Settings = {
      ...DEFAULTS,
      subscribers: Math.max(60, Math.round(DEFAULTS.subscribers * context.scale)),
    };
    const repetitions = Math.min(context.repetitions, 2);
    const configs: Config[] = context.anchorOnly ? ["js1", "embedded"] : ["js1", "js2", "js3", "embedded"];
    const runs: Record<Config, Run[]> = { embedded: [], js1: [], js2: [], js3: [] };
    let nats: NatsServer | undefined;
    const jetstreamServers: StreamgateProcess[] = [];
    let embedded: StreamgateProcess | undefined;
    try {
      context.log(`  starting nats-server -js, ${MAX_INSTANCES} streamgate --engine jetstream and 1 embedded`);
      nats = await startNatsServer({ jetstream: true });
      for (let index = 0; index < MAX_INSTANCES; index++)
        jetstreamServers.push(
          await startStreamgateProcess({
            repoRoot: context.serverRoot,
            args: ["--engine", "jetstream", "--nats-url", nats.url],
          }),
        );
      embedded = await startStreamgateProcess({ repoRoot: context.serverRoot });
      for (let rep = 0; rep < repetitions; rep++) {
        for (const config of configs) {
          const servers = config === "embedded" ? [embedded] : jetstreamServers.slice(0, Number(config.slice(2)));
          const topic = `projects/bench/topics/fanout-instances-${config}-${rep}`;
          const run = await measure(context, settings, servers, topic);
          runs[config].push(run);
          context.log(
            `  rep ${rep + 1} ${config}: ${Math.round(run.deliveriesPerSecond).toLocaleString("en-US")} deliveries/s ` +
              `(${Math.round(run.eventsPerSecond)} events/s; per instance ${run.perInstance.map((v) => Math.round(v)).join(" / ")}), ` +
              `closed ${run.closed}, publish errors ${run.publishErrors}`,
          );
        }
      }
    } finally {
      await Promise.all([...jetstreamServers, ...(embedded === undefined ? [] : [embedded])].map((s) => s.stop()));
      await nats?.stop();
    }

    const deliveries = (config: Config) => runs[config].map((run) => run.deliveriesPerSecond);
    const figures: Figure[] = [];
    const label = `${settings.subscribers} SSE subscribers`;
    for (const n of [1, 2, 3] as const) {
      figures.push(
        makeFigure({
          name: `jetstream engine, ${n} instance${n === 1 ? "" : "s"}, fan-out to ${label}`,
          unit: "deliveries/s",
          higherIsBetter: true,
          samples: context.anchorOnly && n > 1 ? [] : deliveries(`js${n}`),
          anchorName: ANCHOR_ONE,
          anchorSamples: deliveries("js1"),
          target: null,
          median,
        }),
      );
    }
    figures.push(
      makeFigure({
        name: `jetstream engine, 1 instance vs embedded engine, fan-out to ${label}`,
        unit: "deliveries/s",
        higherIsBetter: true,
        samples: deliveries("js1"),
        anchorName: "streamgate embedded engine, 1 instance",
        anchorSamples: deliveries("embedded"),
        target: null,
        median,
      }),
    );
    const details: Record<string, JsonValue> = {};
    for (const config of configs) {
      details[`${config}: runs`] = runs[config].map((run) => ({
        connectMs: round(run.connectMs),
        deliveriesPerSecond: round(run.deliveriesPerSecond),
        eventsPerSecond: round(run.eventsPerSecond),
        perInstance: run.perInstance.map((value) => round(value)),
        published: run.published,
        publishErrors: run.publishErrors,
        closed: run.closed,
        closeReasons: run.closeReasons,
        clientCpuMs: round(run.clientCpuMs),
        serverCpuMs: run.serverCpuMs,
      }));
    }
    const s = settings;
    return {
      parameters: { ...s, instances: [1, 2, 3], repetitions, scale: context.scale },
      figures,
      details,
      notes: [
        `One nats-server -js and ${MAX_INSTANCES} streamgate child processes (\`serve --engine jetstream --nats-url\`) started once; a measurement with N instances uses the first N (the others stay idle, no subscribers). The embedded-engine row is a separate streamgate child process (\`serve\`, default engine).`,
        `${s.subscribers} SSE subscribers (the lean raw-TCP clients of bench/fanout) in one client child process, subscriber i on instance i mod N, all on one fresh topic per measurement created through instance 1; one WebSocket publisher on instance 1.`,
        `Saturation, closed loop: publish frames of ${s.batch} events of ${s.dataBytes} B as fast as instance 1 acknowledges them (at most ${s.framesInFlight} frames unacknowledged) and the slowest subscriber lets a window of ${s.window} events advance; ${s.warmupMs / 1000} s warm-up, then ${s.saturationMs / 1000} s counted. Deliveries = events received summed over all subscribers of all instances.`,
        `Ratios: rows 1–3 are against the jetstream engine with 1 instance from the same run; the last row is jetstream-engine 1 instance against the embedded engine. Medians of ${repetitions} repetition(s), order per repetition: 1, 2, 3 instances, embedded.`,
        "Every process (nats-server, N streamgate instances, the client process) shares the same cores: more instances add event loops but no cores, so the ratio shows how the work splits across processes on this machine, not horizontal scaling on separate hosts. Server CPU per instance is in details.",
      ],
    };
  },
};
