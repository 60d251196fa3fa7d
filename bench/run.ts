// Benchmark runner: `npm run bench [-- <name>… --reps N --quick]`; writes bench/results/<name>.{json,md} and summary.md.
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { connectionsBenchmark } from "./connections/index.js";
import { fanoutBenchmark } from "./fanout/index.js";
import { fanoutInstancesBenchmark } from "./fanout-instances/index.js";
import { grpcCpuBenchmark } from "./grpc-cpu/index.js";
import { jetstreamEngineBenchmark } from "./jetstream-engine/index.js";
import type { BenchContext, Benchmark } from "./lib/benchmark.js";
import { describeEnvironment } from "./lib/environment.js";
import { type BenchResult, writeResult, writeSummary } from "./lib/report.js";
import { orderedBenchmark } from "./ordered/index.js";
import { publishBatchBenchmark } from "./publish-batch/index.js";
import { pubsubBenchmark } from "./pubsub/index.js";
import { storeAppendBenchmark } from "./store/append.js";
import { tunnelBenchmark } from "./tunnel/index.js";

/** Every benchmark, in default run order. */
const BENCHMARKS: readonly Benchmark[] = [
  pubsubBenchmark,
  orderedBenchmark,
  fanoutBenchmark,
  fanoutInstancesBenchmark,
  jetstreamEngineBenchmark,
  connectionsBenchmark,
  tunnelBenchmark,
  storeAppendBenchmark,
  grpcCpuBenchmark,
  publishBatchBenchmark,
];

const USAGE = `usage: npm run bench -- [name…] [--reps N] [--quick] [--anchor-only] [--cpu-prof] [--server-root DIR] [--list]

  name      benchmarks to run (default: all): ${BENCHMARKS.map((bench) => bench.name).join(", ")}
  --reps N  repetitions of each measurement, medians reported (default 3, 1–9)
  --quick   smaller workloads (scale 0.2) for a smoke run
  --anchor-only  measure only the anchors (checks a bench without its system under test)
  --cpu-prof     the streamgate server writes a V8 CPU profile to bench/results/profiles/
  --server-root DIR  serve from another checkout's bin/streamgate.mjs (A/B a change; clients stay here)
  --list    list the benchmarks and exit`;

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
const resultsDir = join(repoRoot, "bench", "results");

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** Runs one benchmark under a hard time limit; a benchmark past it ends the process (children die with it). */
async function runOne(bench: Benchmark, context: BenchContext): Promise<BenchResult> {
  const startedAt = new Date();
  const limitMs = Math.ceil(bench.maxDurationMs * Math.max(1, context.repetitions / 3));
  const watchdog = setTimeout(() => {
    log(`bench ${bench.name}: exceeded ${Math.round(limitMs / 1000)} s, aborting`);
    process.exit(2);
  }, limitMs);
  watchdog.unref();
  try {
    const outcome = await bench.run(context);
    return {
      name: bench.name,
      title: bench.title,
      startedAt: startedAt.toISOString(),
      durationMs: Date.now() - startedAt.getTime(),
      environment: describeEnvironment(repoRoot),
      ...outcome,
    };
  } finally {
    clearTimeout(watchdog);
  }
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      reps: { type: "string" },
      quick: { type: "boolean", default: false },
      "anchor-only": { type: "boolean", default: false },
      "cpu-prof": { type: "boolean", default: false },
      "server-root": { type: "string" },
      list: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    log(USAGE);
    return 0;
  }
  if (values.list) {
    for (const bench of BENCHMARKS) log(`${bench.name}\t${bench.title}`);
    return 0;
  }
  const repetitions = values.reps === undefined ? 3 : Number(values.reps);
  if (!Number.isInteger(repetitions) || repetitions < 1 || repetitions > 9) {
    log(`--reps must be an integer from 1 to 9, got ${values.reps}\n\n${USAGE}`);
    return 64;
  }
  const unknown = positionals.filter((name) => !BENCHMARKS.some((bench) => bench.name === name));
  if (unknown.length > 0) {
    log(`unknown benchmark: ${unknown.join(", ")}\n\n${USAGE}`);
    return 64;
  }
  const selected =
    positionals.length === 0 ? BENCHMARKS : BENCHMARKS.filter((bench) => positionals.includes(bench.name));
  const context: BenchContext = {
    repoRoot,
    serverRoot: values["server-root"] === undefined ? repoRoot : resolve(values["server-root"]),
    repetitions,
    scale: values.quick ? 0.2 : 1,
    anchorOnly: values["anchor-only"],
    cpuProfileDir: values["cpu-prof"] ? join(resultsDir, "profiles") : undefined,
    log,
  };

  let failed = false;
  for (const bench of selected) {
    log(`bench ${bench.name}: ${bench.title}`);
    try {
      const result = await runOne(bench, context);
      writeResult(resultsDir, result);
      const unmeasured = result.figures.filter(
        (figure) => !Number.isFinite(figure.value) || figure.anchorValue === null,
      );
      if (unmeasured.length > 0) failed = true;
      log(
        `bench ${bench.name}: done in ${Math.round(result.durationMs / 1000)} s → ${relative(repoRoot, join(resultsDir, `${bench.name}.md`))}`,
      );
    } catch (error) {
      failed = true;
      log(`bench ${bench.name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    }
  }
  try {
    process.stdout.write(writeSummary(resultsDir));
  } catch (error) {
    log(`could not write the summary: ${error instanceof Error ? error.message : String(error)}`);
    failed = true;
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
// Everything should be closed by now; if a handle leaked, do not hang.
setTimeout(() => {
  log("bench: handles still open 5 s after the end, exiting");
  process.exit();
}, 5_000).unref();
