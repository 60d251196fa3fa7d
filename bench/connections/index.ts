// The "connections" benchmark: idle SSE and WebSocket streams held by one server; server RSS per
// connection and time to accept them, streamgate vs bare Node (node:http SSE / `ws`) in the same run.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { forkForMessage } from "../fanout/child.js";
import { openSse, openWebSocket } from "../fanout/wire-clients.js";
import type { BenchContext, Benchmark } from "../lib/benchmark.js";
import { type BenchOutcome, type Figure, type JsonValue, makeFigure } from "../lib/report.js";
import { median, round } from "../lib/stats.js";
import { type StreamgateProcess, startStreamgateProcess } from "../lib/streamgate-process.js";
import type { HolderConfig, HolderReport } from "./holder.js";

const TARGET_CONNECTIONS = 50_000;
const PER_HOLDER = 6_000;
const ANCHOR = "bare Node (node:http SSE / ws)";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** VmRSS of `pid` in bytes. */
function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match === null ? Number.NaN : Number(match[1]) * 1024;
}

/** Soft RLIMIT_NOFILE of `pid`. */
function openFileLimit(pid: number): number {
  const match = /Max open files\s+(\d+)/.exec(readFileSync(`/proc/${pid}/limits`, "utf8"));
  return match === null ? Number.POSITIVE_INFINITY : Number(match[1]);
}

interface Phase {
  kind: "sse" | "ws";
  requested: number;
  opened: number;
  failed: number;
  firstError: string;
  acceptMs: number;
  rssBeforeBytes: number;
  rssAfterBytes: number;
  bytesPerConnection: number;
}

interface ServerRun {
  server: "streamgate" | "bare";
  fileLimit: number;
  rssIdleBytes: number;
  phases: Phase[];
}

async function measureServer(
  context: BenchContext,
  server: "streamgate" | "bare",
  pid: number,
  port: number,
  topic: string,
  total: number,
  subnet: number,
): Promise<ServerRun> {
  const fileLimit = openFileLimit(pid);
  // The server needs one descriptor per connection plus its own (SQLite, listener, pipes).
  const perTransport = Math.floor(Math.min(total, fileLimit - 300) / 2);
  // Warm-up: a few streams opened and closed so first-use costs (code, pools) are not counted per connection.
  const base = { host: "127.0.0.1", port, handlers: {} };
  for (let round_ = 0; round_ < 2; round_++) {
    const warm = await Promise.all(
      Array.from({ length: 50 }, (_, index) =>
        index % 2 === 0
          ? openSse({ ...base, path: server === "bare" ? "/sse" : `/v1/${topic}/events?from=latest` })
          : server === "bare"
            ? openWebSocket({ ...base, path: "/sub" })
            : openWebSocket({
                ...base,
                path: "/v1/ws",
                subscribeText: JSON.stringify({ type: "subscribe", id: "s", topic, from: "latest" }),
                awaitText: '"subscribed"',
              }),
      ),
    );
    for (const stream of warm) stream.destroy();
    await sleep(500);
  }
  await sleep(1_000);
  const rssIdleBytes = rssBytes(pid);
  const phases: Phase[] = [];
  const holders: ReturnType<typeof forkForMessage<HolderReport>>[] = [];
  let address = 2;
  try {
    for (const kind of ["sse", "ws"] as const) {
      const rssBeforeBytes = rssBytes(pid);
      const count = Math.ceil(perTransport / PER_HOLDER);
      const started = performance.now();
      const mine: typeof holders = [];
      for (let index = 0; index < count; index++) {
        const config: HolderConfig = {
          kind,
          server,
          host: "127.0.0.1",
          port,
          topic,
          count: Math.min(PER_HOLDER, perTransport - index * PER_HOLDER),
          localAddress: `127.0.${subnet}.${address++}`,
          concurrency: 64,
          deadlineMs: 90_000,
        };
        mine.push(
          forkForMessage<HolderReport>(
            context.repoRoot,
            join(context.repoRoot, "bench", "connections", "holder.ts"),
            [JSON.stringify(config)],
            120_000,
          ),
        );
      }
      holders.push(...mine);
      const reports = await Promise.all(mine.map((holder) => holder.message));
      const acceptMs = performance.now() - started;
      await sleep(2_000);
      const rssAfterBytes = rssBytes(pid);
      const opened = reports.reduce((sum, report) => sum + report.opened, 0);
      const phase: Phase = {
        kind,
        requested: perTransport,
        opened,
        failed: reports.reduce((sum, report) => sum + report.failed, 0),
        firstError: reports.map((report) => report.firstError).find((text) => text !== "") ?? "",
        // Wall time from forking the holders to the last stream open (includes each holder's ~0.5 s start).
        acceptMs,
        rssBeforeBytes,
        rssAfterBytes,
        bytesPerConnection: (rssAfterBytes - rssBeforeBytes) / Math.max(1, opened),
      };
      phases.push(phase);
      context.log(
        `  ${server} ${kind}: ${opened.toLocaleString("en-US")}/${perTransport.toLocaleString("en-US")} streams in ` +
          `${round(acceptMs / 1000, 1)} s, RSS +${round((rssAfterBytes - rssBeforeBytes) / 1048576, 1)} MiB → ` +
          `${round(phase.bytesPerConnection / 1024, 2)} KiB/conn${phase.failed > 0 ? ` (${phase.failed} failed: ${phase.firstError})` : ""}`,
      );
    }
  } finally {
    for (const holder of holders) {
      if (holder.child.connected) holder.child.send("stop");
      else holder.child.kill("SIGKILL");
    }
    await sleep(1_000);
  }
  return { server, fileLimit, rssIdleBytes, phases };
}

async function createTopic(server: StreamgateProcess, topic: string): Promise<void> {
  const response = await fetch(`${server.url}/v1/${topic}`, {
    method: "PUT",
    headers: { "content-type": "application/json", connection: "close" },
    body: "{}",
  });
  if (!response.ok) throw new Error(`create ${topic}: ${response.status} ${await response.text()}`);
}

export const connectionsBenchmark: Benchmark = {
  name: "connections",
  title: "Connections: idle SSE + WebSocket streams held by one server — RSS per connection, time to accept",
  maxDurationMs: 8 * 60_000,
  async run(context: BenchContext): Promise<BenchOutcome> {
    const total = Math.round(TARGET_CONNECTIONS * context.scale);
    const runs: Record<"streamgate" | "bare", ServerRun[]> = { streamgate: [], bare: [] };
    // Idle memory moves little between repetitions and each costs ~1 min: at most 2.
    const repetitions = Math.min(2, context.repetitions);
    for (let rep = 0; rep < repetitions; rep++) {
      const anchor = forkForMessage<{ port: number }>(
        context.repoRoot,
        join(context.repoRoot, "bench", "fanout", "bare-ws-server.ts"),
        [],
        30_000,
      );
      try {
        const { port } = await anchor.message;
        runs.bare.push(await measureServer(context, "bare", anchor.child.pid ?? 0, port, "", total, 1 + rep * 2));
      } finally {
        anchor.child.kill("SIGTERM");
      }
      if (context.anchorOnly) continue;
      const streamgate = await startStreamgateProcess({
        repoRoot: context.serverRoot,
        nodeArgs: context.cpuProfileDir === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", context.cpuProfileDir],
      });
      try {
        const topic = "projects/bench/topics/idle";
        await createTopic(streamgate, topic);
        runs.streamgate.push(
          await measureServer(context, "streamgate", streamgate.pid, streamgate.port, topic, total, 2 + rep * 2),
        );
      } finally {
        await streamgate.stop();
      }
    }

    const pick = (server: "streamgate" | "bare", kind: "sse" | "ws", value: (phase: Phase) => number) =>
      runs[server].flatMap((run) => run.phases.filter((phase) => phase.kind === kind).map(value));
    const figures: Figure[] = [];
    const reached = Math.max(0, ...runs.streamgate.map((run) => run.phases.reduce((sum, p) => sum + p.opened, 0)));
    for (const [kind, label] of [
      ["sse", "SSE"],
      ["ws", "WebSocket"],
    ] as const) {
      const count = median(pick("streamgate", kind, (p) => p.opened)) || median(pick("bare", kind, (p) => p.opened));
      figures.push(
        makeFigure({
          name: `Server RSS per idle ${label} stream (${Math.round(count).toLocaleString("en-US")} held)`,
          unit: "KiB",
          higherIsBetter: false,
          samples: pick("streamgate", kind, (p) => round(p.bytesPerConnection / 1024, 2)),
          anchorName: ANCHOR,
          anchorSamples: pick("bare", kind, (p) => round(p.bytesPerConnection / 1024, 2)),
          target: { kind: "valueBelow", value: 8 },
          median,
        }),
        makeFigure({
          name: `Time to accept ${Math.round(count).toLocaleString("en-US")} ${label} streams`,
          unit: "s",
          higherIsBetter: false,
          samples: pick("streamgate", kind, (p) => round(p.acceptMs / 1000, 2)),
          anchorName: ANCHOR,
          anchorSamples: pick("bare", kind, (p) => round(p.acceptMs / 1000, 2)),
          target: null,
          median,
        }),
      );
    }
    const details: Record<string, JsonValue> = {};
    for (const server of ["bare", "streamgate"] as const)
      details[`${server}: runs`] = runs[server].map((run) => ({
        fileLimit: run.fileLimit,
        rssIdleMiB: round(run.rssIdleBytes / 1048576, 1),
        phases: run.phases.map((phase) => ({
          kind: phase.kind,
          requested: phase.requested,
          opened: phase.opened,
          failed: phase.failed,
          firstError: phase.firstError,
          acceptMs: round(phase.acceptMs),
          rssBeforeMiB: round(phase.rssBeforeBytes / 1048576, 1),
          rssAfterMiB: round(phase.rssAfterBytes / 1048576, 1),
          kibPerConnection: round(phase.bytesPerConnection / 1024, 2),
        })),
      }));
    const fileLimit = runs.streamgate[0]?.fileLimit ?? runs.bare[0]?.fileLimit ?? Number.NaN;
    const notes = [
      `Asked for ${total.toLocaleString("en-US")} concurrent streams, half SSE and half WebSocket, held by one server process; reached ${reached.toLocaleString("en-US")} on streamgate (SSE + WebSocket at once).`,
      `The server's RLIMIT_NOFILE is ${fileLimit} (soft = hard here; raising it needs CAP_SYS_RESOURCE, which this container lacks, so \`ulimit -n\`/prlimit cannot go higher): one process can hold at most that many sockets, so the count is capped at limit − 300 split evenly between SSE and WebSocket. On a host with a higher limit the same bench asks for the full 50,000.`,
      "RSS per connection = (VmRSS after the streams are open and 2 s settled − VmRSS before) / streams opened, from /proc/<pid>/status; kernel socket buffers are not in RSS. Measured SSE first, then WebSocket on top; idle RSS after a warm-up of 100 streams opened and closed.",
      `Clients: child processes of ${PER_HOLDER} raw TCP streams each (WebSocket answers pings), each from its own source address 127.0.x.y (one ephemeral port range per address), 64 handshakes in flight per process. A streamgate WebSocket stream counts once its "subscribed" frame arrived; an SSE stream once the 200 head arrived.`,
      "Centrifugo documents ~27 KiB per idle connection by default (not measured here); the anchor is bare Node in the same run.",
    ];
    return {
      parameters: { target: total, perHolder: PER_HOLDER, repetitions, scale: context.scale },
      figures,
      details,
      notes,
    };
  },
};
