// The shape of a benchmark as the runner sees it, and what the runner hands it.
import type { BenchOutcome } from "./report.js";

/** What the runner gives each benchmark. */
export interface BenchContext {
  /** Repository root (holds bin/, node_modules/). */
  repoRoot: string;
  /** Checkout whose `bin/streamgate.mjs` serves (`--server-root`, to A/B a change); default `repoRoot`. */
  serverRoot: string;
  /** Repetitions of each measurement; medians are reported. Default 3. */
  repetitions: number;
  /** Workload scale: 1 = default sizes, `--quick` = 0.2 for a smoke run. */
  scale: number;
  /** Measure only the anchors (`--anchor-only`), to check a bench before its system under test runs. */
  anchorOnly: boolean;
  /** When set (`--cpu-prof`), the system under test's server writes a V8 CPU profile into this folder. */
  cpuProfileDir: string | undefined;
  /** Progress output (stderr), one line per call. */
  log(message: string): void;
}

/** A benchmark the runner can select by name. */
export interface Benchmark {
  /** Name on the command line and of the result files. */
  name: string;
  /** One-line title for reports. */
  title: string;
  /** Hard upper bound of one run at 3 repetitions (scaled with more); the runner aborts the process past it. */
  maxDurationMs: number;
  /** Runs every measurement, anchor included, and returns the figures. */
  run(context: BenchContext): Promise<BenchOutcome>;
}
