// The "tunnel" benchmark: gRPC unary calls/s, p50/p99 latency and bidi streaming messages/s (1 KiB) for a
// grpc-js backend reached directly, through nginx grpc_pass (one hop), through bare node:http2 relays (one and two
// hops, the floor reference) and through the streamgate tunnel (gRPC entry → server → agent → backend),
// interleaved in one run; plus memory per idle tunnelled stream.
import { readFileSync } from "node:fs";
import { startGrpcNginx } from "../../test/harness/interop-nginx.js";
import { findNginx } from "../../test/harness/nginx.js";
import type { BenchContext, Benchmark } from "../lib/benchmark.js";
import { processCpuMs } from "../lib/process-cpu.js";
import { type BenchOutcome, type Figure, type JsonValue, makeFigure } from "../lib/report.js";
import { median, percentileSorted, round } from "../lib/stats.js";
import type { WorkerReply } from "./client-worker.js";
import {
  type LoadWorker,
  startBackendProcess,
  startLoadWorker,
  startRelayProcess,
  startTunnelProcesses,
  type TunnelProcesses,
} from "./processes.js";

const BODY_BYTES = 1024;
/** Client processes generating load (each one grpc-js channel = one HTTP/2 connection). */
const WORKERS = 2;
/** Unary calls in flight per worker. */
const UNARY_CONCURRENCY = 32;
/** Bidi streams per worker, and messages in flight on each. */
const STREAMS_PER_WORKER = 8;
const STREAM_WINDOW = 16;
const IDLE_STREAMS = 10_000;
const WARMUP_MS = 500;
const ANCHOR = "nginx grpc_pass";
const RELAY1 = "bare node:http2 relay ×1 (floor reference)";
const RELAY2 = "bare node:http2 relay ×2 (floor reference)";

/** `relay1`: client → relay → backend; `relay2`: client → relay → relay → backend (as many Node hops as the tunnel). */
type Path = "direct" | "nginx" | "relay1" | "relay2" | "tunnel";

/** VmRSS of `pid` in bytes (NaN if gone). */
function rssBytes(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match === null ? Number.NaN : Number(match[1]) * 1024;
  } catch {
    return Number.NaN;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Measured {
  unaryCallsPerSecond: number;
  unaryLoadedP50Ms: number;
  unaryLoadedP99Ms: number;
  streamMessagesPerSecond: number;
  idleP50Ms: number;
  idleP99Ms: number;
  errors: number;
  firstError: string | null;
  /** CPU ms of the processes on the path during the unary + stream phases. */
  pathCpuMs: number | null;
  clientCpuMs: number | null;
}

async function measurePath(
  workers: LoadWorker[],
  address: string,
  pathPids: number[],
  durationMs: number,
): Promise<Measured> {
  const cpuOf = (pids: number[]) => {
    let total = 0;
    for (const pid of pids) {
      const value = processCpuMs(pid);
      if (value === null) return null;
      total += value;
    }
    return total;
  };
  const pathCpuBefore = cpuOf(pathPids);
  const clientCpuBefore = cpuOf(workers.map((worker) => worker.pid));
  let errors = 0;
  let firstError: string | null = null;
  const note = (reply: { errors: number; firstError: string | null }) => {
    errors += reply.errors;
    firstError ??= reply.firstError;
  };

  const unary = (await Promise.all(
    workers.map((worker) =>
      worker.run({
        kind: "unary",
        address,
        concurrency: UNARY_CONCURRENCY,
        bodyBytes: BODY_BYTES,
        warmupMs: WARMUP_MS,
        durationMs,
      }),
    ),
  )) as Extract<WorkerReply, { kind: "unary" }>[];
  unary.forEach(note);
  const latencies = unary.flatMap((reply) => reply.latenciesMs).sort((a, b) => a - b);
  const calls = unary.reduce((sum, reply) => sum + reply.calls, 0);

  const stream = (await Promise.all(
    workers.map((worker) =>
      worker.run({
        kind: "stream",
        address,
        streams: STREAMS_PER_WORKER,
        window: STREAM_WINDOW,
        bodyBytes: BODY_BYTES,
        warmupMs: WARMUP_MS,
        durationMs,
      }),
    ),
  )) as Extract<WorkerReply, { kind: "stream" }>[];
  stream.forEach(note);
  const messages = stream.reduce((sum, reply) => sum + reply.messages, 0);
  const pathCpuAfter = cpuOf(pathPids);
  const clientCpuAfter = cpuOf(workers.map((worker) => worker.pid));

  // Latency without load: one call at a time from one worker.
  const idle = (await workers[0]!.run({
    kind: "latency",
    address,
    bodyBytes: BODY_BYTES,
    warmupMs: WARMUP_MS,
    durationMs: Math.max(1_000, Math.round(durationMs * 0.6)),
  })) as Extract<WorkerReply, { kind: "latency" }>;
  note(idle);
  const idleSorted = [...idle.latenciesMs].sort((a, b) => a - b);

  return {
    unaryCallsPerSecond: calls / (durationMs / 1000),
    unaryLoadedP50Ms: percentileSorted(latencies, 50),
    unaryLoadedP99Ms: percentileSorted(latencies, 99),
    streamMessagesPerSecond: messages / (durationMs / 1000),
    idleP50Ms: percentileSorted(idleSorted, 50),
    idleP99Ms: percentileSorted(idleSorted, 99),
    errors,
    firstError,
    pathCpuMs: pathCpuBefore === null || pathCpuAfter === null ? null : pathCpuAfter - pathCpuBefore,
    clientCpuMs: clientCpuBefore === null || clientCpuAfter === null ? null : clientCpuAfter - clientCpuBefore,
  };
}

/** Opens `count` idle bidi streams (one echo each) through `address`; RSS growth of `pids` per stream. */
async function idleStreamMemory(
  context: BenchContext,
  workers: LoadWorker[],
  address: string,
  pids: number[],
  count: number,
): Promise<{ bytesPerStream: number; held: number; errors: number; firstError: string | null; openMs: number }> {
  const rss = () => pids.reduce((sum, pid) => sum + rssBytes(pid), 0);
  await sleep(1_000);
  const before = rss();
  const per = Math.ceil(count / workers.length);
  const replies = (await Promise.all(
    workers.map((worker) =>
      worker.run({ kind: "hold", address, streams: per, channels: Math.ceil(per / 900), bodyBytes: 16 }),
    ),
  )) as Extract<WorkerReply, { kind: "held" }>[];
  await sleep(1_500);
  const after = rss();
  const held = replies.reduce((sum, reply) => sum + reply.streams - reply.errors, 0);
  const errors = replies.reduce((sum, reply) => sum + reply.errors, 0);
  context.log(`  held ${held} idle streams (${errors} failed): +${round((after - before) / 2 ** 20, 1)} MiB`);
  await Promise.all(workers.map((worker) => worker.run({ kind: "release" })));
  return {
    bytesPerStream: held > 0 ? (after - before) / held : Number.NaN,
    held,
    errors,
    firstError: replies.find((reply) => reply.firstError !== null)?.firstError ?? null,
    openMs: Math.max(...replies.map((reply) => reply.openMs)),
  };
}

async function run(context: BenchContext): Promise<BenchOutcome> {
  if (findNginx() === null) throw new Error("nginx is not installed (apt-get install -y nginx): it is the anchor");
  const durationMs = Math.max(1_000, Math.round(3_000 * context.scale));
  const idleStreams = Math.round(IDLE_STREAMS * context.scale);
  const notes: string[] = [];
  const details: Record<string, JsonValue> = {};

  const backend = await startBackendProcess(context.repoRoot);
  const nginx = await startGrpcNginx({ upstreamPort: backend.port });
  const backendAddress = `127.0.0.1:${backend.port}`;
  const relay1 = await startRelayProcess(context.repoRoot, backendAddress);
  const relay2Inner = await startRelayProcess(context.repoRoot, backendAddress);
  const relay2 = await startRelayProcess(context.repoRoot, `127.0.0.1:${relay2Inner.port}`);
  let tunnel: TunnelProcesses | null = null;
  const workers = Array.from({ length: WORKERS }, () => startLoadWorker(context.repoRoot));
  try {
    if (!context.anchorOnly) {
      tunnel = await startTunnelProcesses({
        repoRoot: context.repoRoot,
        serverRoot: context.serverRoot,
        backendPort: backend.port,
        nodeArgs: context.cpuProfileDir === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", context.cpuProfileDir],
      });
    }
    const paths: { path: Path; address: string; pids: number[] }[] = [
      { path: "direct", address: `127.0.0.1:${backend.port}`, pids: [backend.pid] },
      { path: "nginx", address: nginx.hostPort, pids: [backend.pid, nginx.pid] },
      { path: "relay1", address: `127.0.0.1:${relay1.port}`, pids: [backend.pid, relay1.pid] },
      {
        path: "relay2",
        address: `127.0.0.1:${relay2.port}`,
        pids: [backend.pid, relay2.pid, relay2Inner.pid],
      },
    ];
    if (tunnel !== null)
      paths.push({
        path: "tunnel",
        address: tunnel.grpcEntry,
        pids: [backend.pid, tunnel.server.pid, tunnel.agentPid],
      });

    let memoryFigure: Figure | null = null;
    let relayMemoryFigure: Figure | null = null;
    let tunnelVsRelayMemoryFigure: Figure | null = null;
    if (tunnel !== null && idleStreams > 0) {
      // First, while server and agent are fresh: their RSS is not yet raised by the load phases.
      context.log(`  memory: ${idleStreams} idle streams direct, then through the tunnel`);
      const direct = await idleStreamMemory(context, workers, `127.0.0.1:${backend.port}`, [backend.pid], idleStreams);
      const tunnelled = await idleStreamMemory(
        context,
        workers,
        tunnel.grpcEntry,
        [tunnel.server.pid, tunnel.agentPid],
        idleStreams,
      );
      // The floor: the same streams through the two bare relays (as many Node processes and HTTP/2 streams).
      const relayed = await idleStreamMemory(
        context,
        workers,
        `127.0.0.1:${relay2.port}`,
        [relay2.pid, relay2Inner.pid],
        idleStreams,
      );
      memoryFigure = makeFigure({
        name: `Memory per idle tunnelled bidi stream at ${idleStreams} streams (server + agent RSS)`,
        unit: "B",
        higherIsBetter: false,
        samples: [tunnelled.bytesPerStream],
        anchorName: "the grpc-js backend holding the same streams directly (its RSS)",
        anchorSamples: [direct.bytesPerStream],
        target: { kind: "valueBelow", value: Math.round(2 * direct.bytesPerStream) },
        median,
      });
      relayMemoryFigure = makeFigure({
        name: `Memory per idle bidi stream at ${idleStreams} streams: ${RELAY2} (RSS of both relays)`,
        unit: "B",
        higherIsBetter: false,
        samples: [relayed.bytesPerStream],
        anchorName: "the grpc-js backend holding the same streams directly (its RSS)",
        anchorSamples: [direct.bytesPerStream],
        target: null,
        median,
      });
      tunnelVsRelayMemoryFigure = makeFigure({
        name: `Memory per idle tunnelled bidi stream at ${idleStreams} streams: tunnel vs the floor`,
        unit: "B",
        higherIsBetter: false,
        samples: [tunnelled.bytesPerStream],
        anchorName: RELAY2,
        anchorSamples: [relayed.bytesPerStream],
        target: null,
        median,
      });
      details.idleStreams = { direct, tunnel: tunnelled, relay2: relayed } as unknown as JsonValue;
      if (tunnelled.errors > 0)
        notes.push(
          `${tunnelled.errors} of ${idleStreams} tunnelled idle streams failed to open: ${tunnelled.firstError}`,
        );
    }

    // Warm-up round, discarded: JIT, connection pools and the tunnel's standby pool.
    for (const entry of paths) await measurePath(workers, entry.address, entry.pids, 1_000);
    const results: Record<Path, Measured[]> = { direct: [], nginx: [], relay1: [], relay2: [], tunnel: [] };
    for (let repetition = 0; repetition < context.repetitions; repetition += 1) {
      // Rotate the order per repetition so no path always runs on the warmest (or most loaded) machine.
      const order = paths.map((_, index) => paths[(index + repetition) % paths.length]!);
      for (const entry of order) {
        const measured = await measurePath(workers, entry.address, entry.pids, durationMs);
        results[entry.path].push(measured);
        context.log(
          `  rep ${repetition + 1} ${entry.path}: unary ${Math.round(measured.unaryCallsPerSecond)}/s (p50 ${round(measured.unaryLoadedP50Ms, 2)} ms loaded, ${round(measured.idleP50Ms, 3)} ms idle), stream ${Math.round(measured.streamMessagesPerSecond)} msg/s, errors ${measured.errors}${measured.firstError === null ? "" : ` (${measured.firstError})`}`,
        );
      }
    }
    const samples = (path: Path, pick: (measured: Measured) => number) => results[path].map(pick);
    const figures: Figure[] = [];
    const unaryName = `Unary calls/s, ${BODY_BYTES} B, ${WORKERS}×${UNARY_CONCURRENCY} in flight`;
    const streamName = `Bidi streaming msg/s, ${BODY_BYTES} B, ${WORKERS * STREAMS_PER_WORKER} streams × ${STREAM_WINDOW} in flight`;
    figures.push(
      makeFigure({
        name: `${unaryName}: tunnel`,
        unit: "calls/s",
        higherIsBetter: true,
        samples: samples("tunnel", (m) => m.unaryCallsPerSecond),
        anchorName: ANCHOR,
        anchorSamples: samples("nginx", (m) => m.unaryCallsPerSecond),
        // Issue 17 set the unary goal against the floor (below); against nginx it is reported only.
        target: null,
        median,
      }),
      makeFigure({
        name: `${streamName}: tunnel`,
        unit: "msg/s",
        higherIsBetter: true,
        samples: samples("tunnel", (m) => m.streamMessagesPerSecond),
        anchorName: ANCHOR,
        anchorSamples: samples("nginx", (m) => m.streamMessagesPerSecond),
        target: { kind: "ratioAtLeast", ratio: 1.0 },
        median,
      }),
    );
    // Added latency = p50 through the path minus p50 direct, per repetition (one call at a time).
    const added = (path: Path) =>
      results[path].map((measured, index) => measured.idleP50Ms - (results.direct[index]?.idleP50Ms ?? Number.NaN));
    const nginxAdded = added("nginx");
    // Floor references: what node:http2 alone does as a relay on this machine, in this run; no targets.
    figures.push(
      makeFigure({
        name: `${unaryName}: ${RELAY2}`,
        unit: "calls/s",
        higherIsBetter: true,
        samples: samples("relay2", (m) => m.unaryCallsPerSecond),
        anchorName: ANCHOR,
        anchorSamples: samples("nginx", (m) => m.unaryCallsPerSecond),
        target: null,
        median,
      }),
      makeFigure({
        name: `${streamName}: ${RELAY2}`,
        unit: "msg/s",
        higherIsBetter: true,
        samples: samples("relay2", (m) => m.streamMessagesPerSecond),
        anchorName: ANCHOR,
        anchorSamples: samples("nginx", (m) => m.streamMessagesPerSecond),
        target: null,
        median,
      }),
      ...(["relay1", "relay2"] as const).map((path) =>
        makeFigure({
          name: `Added p50 latency over direct, unary one at a time: ${path === "relay1" ? RELAY1 : RELAY2}`,
          unit: "ms",
          higherIsBetter: false,
          samples: added(path),
          anchorName: ANCHOR,
          anchorSamples: nginxAdded,
          target: null,
          median,
        }),
      ),
      makeFigure({
        name: `${unaryName}: tunnel vs the floor`,
        unit: "calls/s",
        higherIsBetter: true,
        samples: samples("tunnel", (m) => m.unaryCallsPerSecond),
        anchorName: RELAY2,
        anchorSamples: samples("relay2", (m) => m.unaryCallsPerSecond),
        target: { kind: "ratioAtLeast", ratio: 0.9 },
        median,
      }),
    );
    figures.push(
      makeFigure({
        name: "Added p50 latency over direct, unary one at a time: tunnel",
        unit: "ms",
        higherIsBetter: false,
        samples: added("tunnel"),
        anchorName: RELAY2,
        anchorSamples: added("relay2"),
        // The target is relative (≤ 1.5× the two-hop floor's added latency), so its bound comes from this run.
        target: { kind: "valueBelow", value: round(1.5 * median(added("relay2")), 4) },
        median,
      }),
      makeFigure({
        name: "p50 latency, unary one at a time: tunnel",
        unit: "ms",
        higherIsBetter: false,
        samples: samples("tunnel", (m) => m.idleP50Ms),
        anchorName: ANCHOR,
        anchorSamples: samples("nginx", (m) => m.idleP50Ms),
        target: null,
        median,
      }),
      makeFigure({
        name: "p99 latency, unary one at a time: tunnel",
        unit: "ms",
        higherIsBetter: false,
        samples: samples("tunnel", (m) => m.idleP99Ms),
        anchorName: ANCHOR,
        anchorSamples: samples("nginx", (m) => m.idleP99Ms),
        target: null,
        median,
      }),
      makeFigure({
        name: `p50 latency under load (${unaryName}): tunnel`,
        unit: "ms",
        higherIsBetter: false,
        samples: samples("tunnel", (m) => m.unaryLoadedP50Ms),
        anchorName: ANCHOR,
        anchorSamples: samples("nginx", (m) => m.unaryLoadedP50Ms),
        target: null,
        median,
      }),
      makeFigure({
        name: `p99 latency under load (${unaryName}): tunnel`,
        unit: "ms",
        higherIsBetter: false,
        samples: samples("tunnel", (m) => m.unaryLoadedP99Ms),
        anchorName: ANCHOR,
        anchorSamples: samples("nginx", (m) => m.unaryLoadedP99Ms),
        target: null,
        median,
      }),
      makeFigure({
        name: `${unaryName}: nginx grpc_pass`,
        unit: "calls/s",
        higherIsBetter: true,
        samples: samples("nginx", (m) => m.unaryCallsPerSecond),
        anchorName: "direct (grpc-js client → grpc-js server)",
        anchorSamples: samples("direct", (m) => m.unaryCallsPerSecond),
        target: null,
        median,
      }),
      makeFigure({
        name: `${streamName}: nginx grpc_pass`,
        unit: "msg/s",
        higherIsBetter: true,
        samples: samples("nginx", (m) => m.streamMessagesPerSecond),
        anchorName: "direct (grpc-js client → grpc-js server)",
        anchorSamples: samples("direct", (m) => m.streamMessagesPerSecond),
        target: null,
        median,
      }),
    );

    if (memoryFigure !== null) figures.push(memoryFigure);
    if (relayMemoryFigure !== null) figures.push(relayMemoryFigure);
    if (tunnelVsRelayMemoryFigure !== null) figures.push(tunnelVsRelayMemoryFigure);
    details.perRepetition = results as unknown as JsonValue;
    const cpuPerCall = (path: Path) =>
      results[path].map((m) =>
        m.pathCpuMs === null
          ? null
          : round(
              (m.pathCpuMs * 1000) /
                (m.unaryCallsPerSecond * (durationMs / 1000) + m.streamMessagesPerSecond * (durationMs / 1000)),
              2,
            ),
      );
    details.pathCpuMicrosecondsPerCallOrMessage = {
      direct: cpuPerCall("direct"),
      nginx: cpuPerCall("nginx"),
      relay1: cpuPerCall("relay1"),
      relay2: cpuPerCall("relay2"),
      tunnel: cpuPerCall("tunnel"),
    };
    const totalErrors = (Object.values(results) as Measured[][]).flat().reduce((sum, m) => sum + m.errors, 0);
    if (totalErrors > 0)
      notes.push(`${totalErrors} calls or streams failed during the load phases; see perRepetition.`);
    notes.push(
      `${WORKERS} client processes (grpc-js, one HTTP/2 connection each) share the machine's cores with the backend, nginx (1 worker) and the tunnel's server and agent processes; compare ratios, not absolute rates.`,
      "Added latency is measured one call at a time (no queueing); the latency under load includes queueing in the client processes.",
      `Floor reference: "relay ×1" and "relay ×2" are a bare relay on node:http2 alone (bench/tunnel/relay-process.ts, about 100 lines: one upstream session, streams piped with backpressure, trailers and cancellation passed on; no tunnel protocol, rules, metrics or limits), in one process (client → relay → backend) and in two (client → relay → relay → backend, as many Node processes as the tunnel's server and agent). They have no target: they show what Node's own http2 reaches as a relay on this machine in this run, a floor no Node relay of the same shape is expected to beat; "tunnel vs the floor" is the tunnel's unary rate over the two-hop relay's.`,
    );
    if (tunnel === null) notes.push("--anchor-only: the tunnel was not measured.");
    else if (totalErrors > 0 || figures.some((figure) => !Number.isFinite(figure.value))) {
      // Failures through the tunnel: keep what the server and agent said (an agent that died, refused streams).
      details.agentExit = tunnel.agentExit();
      details.agentLogTail = tunnel.agentLog();
      details.serverLogTail = tunnel.server.logTail();
    }
    return {
      parameters: {
        bodyBytes: BODY_BYTES,
        workers: WORKERS,
        unaryConcurrencyPerWorker: UNARY_CONCURRENCY,
        streamsPerWorker: STREAMS_PER_WORKER,
        streamWindow: STREAM_WINDOW,
        warmupMs: WARMUP_MS,
        durationMs,
        idleStreams,
        nginxWorkers: 1,
      },
      figures,
      details,
      notes,
    };
  } catch (error) {
    if (tunnel !== null) context.log(`agent log:\n${tunnel.agentLog()}\nserver log:\n${tunnel.server.logTail()}`);
    throw error;
  } finally {
    await Promise.all(workers.map((worker) => worker.stop()));
    await tunnel?.stop();
    await Promise.all([relay1.stop(), relay2.stop(), relay2Inner.stop()]);
    await nginx.stop();
    await backend.stop();
  }
}

export const tunnelBenchmark: Benchmark = {
  name: "tunnel",
  title:
    "Tunnel: gRPC unary and bidi streaming through the streamgate tunnel vs nginx grpc_pass vs bare node:http2 relays vs direct",
  // About 10 s per path and repetition at scale 1 (5 paths × 3 repetitions), plus warm-up and the memory phase.
  maxDurationMs: 9 * 60_000,
  run,
};
