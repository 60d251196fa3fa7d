// Server CPU per fan-out delivery of two or more streamgate checkouts (e.g. main and a branch), all up at once, the
// fan-out bench's client worker alternating between them run by run.
//
//   node --import tsx bench/fanout/compare-roots.ts [--reps 3] [--targets sse,ws] <checkout> <checkout>…
//
// Each checkout runs its own `bin/streamgate.mjs` (its compiled dist/ when fresh: `npm run build` there first). On a
// shared machine deliveries/s swing with the load; CPU per delivery (from /proc, over each whole worker run) measured
// back to back is what this is for.
import { fork } from "node:child_process";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { processCpuMs } from "../lib/process-cpu.js";
import { median, round } from "../lib/stats.js";
import { type StreamgateProcess, startStreamgateProcess } from "../lib/streamgate-process.js";
import type { WorkerConfig, WorkerResult } from "./client-worker.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { reps: { type: "string", default: "3" }, targets: { type: "string", default: "sse,ws" } },
});
if (positionals.length === 0) {
  process.stderr.write("usage: compare-roots.ts [--reps N] [--targets sse,ws] <checkout>…\n");
  process.exit(2);
}
const repetitions = Number(values.reps);
const targets = values.targets.split(",") as WorkerConfig["target"][];
const repoRoot = resolve(import.meta.dirname, "..", "..");
const roots = positionals.map((root) => resolve(root));

function runWorker(config: WorkerConfig): Promise<WorkerResult> {
  const child = fork(join(repoRoot, "bench", "fanout", "client-worker.ts"), [JSON.stringify(config)], {
    cwd: repoRoot,
    execArgv: ["--import", "tsx"],
  });
  return new Promise((done, fail) => {
    child.once("message", (reply: { ok: boolean; result?: WorkerResult; error?: string }) =>
      reply.ok && reply.result !== undefined ? done(reply.result) : fail(new Error(reply.error)),
    );
    child.once("exit", (code) => fail(new Error(`client worker exited with ${code}`)));
  });
}

const servers: StreamgateProcess[] = [];
const rows = new Map<string, { perSecond: number; cpuUs: number; p99Ms: number }[]>();
try {
  for (const root of roots) servers.push(await startStreamgateProcess({ repoRoot: root }));
  let topicIndex = 0;
  for (let rep = 0; rep < repetitions; rep++) {
    for (const target of targets) {
      // Alternate the order each repetition, so neither checkout always runs right after the other.
      const order =
        rep % 2 === 0 ? servers.map((_, index) => index) : servers.map((_, index) => servers.length - 1 - index);
      for (const index of order) {
        const server = servers[index]!;
        const topic = `projects/bench/topics/compare-${topicIndex++}`;
        const created = await fetch(`${server.url}/v1/${topic}`, {
          method: "PUT",
          headers: { "content-type": "application/json", connection: "close" },
          body: "{}",
        });
        if (!created.ok) throw new Error(`create ${topic}: ${created.status}`);
        const before = processCpuMs(server.pid);
        const result = await runWorker({
          subscribers: 1_000,
          dataBytes: 128,
          batch: 20,
          window: 200,
          warmupMs: 1_000,
          saturationMs: 3_000,
          rate: 2_000,
          latencyMs: 3_000,
          sampleEvery: 50,
          target,
          host: "127.0.0.1",
          port: server.port,
          topic,
        });
        const after = processCpuMs(server.pid);
        const cpuUs =
          before === null || after === null ? Number.NaN : ((after - before) * 1000) / result.totalDelivered;
        const key = `${target} ${roots[index]}`;
        const row = { perSecond: result.deliveriesPerSecond, cpuUs, p99Ms: result.latency.p99Ms };
        rows.set(key, [...(rows.get(key) ?? []), row]);
        console.log(
          `${key}: ${Math.round(row.perSecond)} deliveries/s, ${round(cpuUs, 3)} µs server CPU per delivery, p99 ${Math.round(row.p99Ms)} ms`,
        );
      }
    }
  }
  for (const [key, list] of rows) {
    console.log(
      `median ${key}: ${Math.round(median(list.map((row) => row.perSecond)))} deliveries/s, ` +
        `${round(median(list.map((row) => row.cpuUs)), 3)} µs per delivery, p99 ${Math.round(median(list.map((row) => row.p99Ms)))} ms`,
    );
  }
} finally {
  for (const server of servers) await server.stop();
}
