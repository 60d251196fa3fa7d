// Benchmark result types and their JSON / Markdown writers (one file pair per bench plus summary.md).
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { round } from "./stats.js";

/** What a figure must reach to count as met. */
export type Target =
  /** `value / anchorValue` must be at least `ratio` (throughput: higher is better). */
  | { kind: "ratioAtLeast"; ratio: number }
  /** `value` must be strictly below `value` (latency: lower is better). */
  | { kind: "valueBelow"; value: number }
  /** `value` must be at least `value` (an absolute throughput floor). */
  | { kind: "valueAtLeast"; value: number };

/** One measured figure of the system under test next to its anchor from the same run. */
export interface Figure {
  /** What was measured, e.g. "Publish throughput, 256 B, batched". */
  name: string;
  /** Unit of `value` and `anchorValue`, e.g. "msg/s" or "ms". */
  unit: string;
  /** Whether a larger value is better (throughput) or worse (latency). */
  higherIsBetter: boolean;
  /** Median over the repetitions of the system under test (streamgate). */
  value: number;
  /** Every repetition's value, in run order. */
  samples: number[];
  /** Name of the anchor, e.g. "NATS JetStream 2.9.10". */
  anchorName: string;
  /** Median over the anchor's repetitions; null when the figure has no anchor. */
  anchorValue: number | null;
  /** Every repetition's anchor value, in run order. */
  anchorSamples: number[];
  /** `value / anchorValue`; null without an anchor. For latency, below 1 means faster than the anchor. */
  ratio: number | null;
  /** The target, or null for a figure reported for information only. */
  target: Target | null;
  /** Whether the target is met; null without a target. */
  met: boolean | null;
}

/** A JSON-serializable value (for free-form details). */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** What a benchmark returns; the runner adds timing and environment. */
export interface BenchOutcome {
  /** Parameters the run used (message size, counts, rates…). */
  parameters: Record<string, JsonValue>;
  /** The figures, in report order. */
  figures: Figure[];
  /** Free-form measurements that explain the figures (CPU per message, per-repetition details). */
  details: Record<string, JsonValue>;
  /** Sentences a reader needs to interpret the figures honestly (deviations, caps hit, limits). */
  notes: string[];
}

/** A complete result as written to `bench/results/<name>.json`. */
export interface BenchResult extends BenchOutcome {
  /** Benchmark name, also the file name. */
  name: string;
  /** One-line title. */
  title: string;
  /** ISO time the benchmark started. */
  startedAt: string;
  /** Wall time of the whole benchmark. */
  durationMs: number;
  /** Where it ran. */
  environment: Record<string, JsonValue>;
}

/** Builds a figure from per-repetition samples, computing medians, ratio and whether the target is met. */
export function makeFigure(input: {
  name: string;
  unit: string;
  higherIsBetter: boolean;
  samples: number[];
  anchorName: string;
  anchorSamples: number[];
  target: Target | null;
  median: (values: readonly number[]) => number;
}): Figure {
  const value = input.median(input.samples);
  const anchorValue = input.anchorSamples.length > 0 ? input.median(input.anchorSamples) : null;
  const ratio = anchorValue !== null && anchorValue !== 0 ? value / anchorValue : null;
  let met: boolean | null = null;
  if (input.target?.kind === "ratioAtLeast") met = ratio !== null && ratio >= input.target.ratio;
  else if (input.target?.kind === "valueBelow") met = Number.isFinite(value) && value < input.target.value;
  else if (input.target?.kind === "valueAtLeast") met = Number.isFinite(value) && value >= input.target.value;
  return {
    name: input.name,
    unit: input.unit,
    higherIsBetter: input.higherIsBetter,
    value,
    samples: input.samples,
    anchorName: input.anchorName,
    anchorValue,
    anchorSamples: input.anchorSamples,
    ratio,
    target: input.target,
    met,
  };
}

/** Formats a number for a table: thousands separators for big values, 2 decimals for small. */
export function formatNumber(value: number | null): string {
  if (value === null || Number.isNaN(value)) return "–";
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString("en-US");
  if (Math.abs(value) >= 100) return String(Math.round(value));
  return String(round(value, 2));
}

function formatTarget(figure: Figure): string {
  if (figure.target === null) return "–";
  if (figure.target.kind === "ratioAtLeast") return `≥ ${figure.target.ratio}×`;
  if (figure.target.kind === "valueAtLeast") return `≥ ${formatNumber(figure.target.value)} ${figure.unit}`;
  return `< ${figure.target.value} ${figure.unit}`;
}

function formatMet(met: boolean | null): string {
  if (met === null) return "–";
  return met ? "yes" : "**no**";
}

function formatRatio(ratio: number | null): string {
  return ratio === null ? "–" : `${round(ratio, 2)}×`;
}

const TABLE_HEADER =
  "| figure | value | anchor value | ratio | target | met? |\n| --- | ---: | ---: | ---: | --- | --- |";

function figureRow(figure: Figure, prefix = ""): string {
  const value = `${formatNumber(figure.value)} ${figure.unit}`;
  const anchor = figure.anchorValue === null ? "–" : `${formatNumber(figure.anchorValue)} ${figure.unit}`;
  return `| ${prefix}${figure.name} (vs ${figure.anchorName}) | ${value} | ${anchor} | ${formatRatio(figure.ratio)} | ${formatTarget(figure)} | ${formatMet(figure.met)} |`;
}

function jsonToText(value: JsonValue): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** Renders one result as Markdown. */
export function renderMarkdown(result: BenchResult): string {
  const lines: string[] = [`# ${result.title}`, ""];
  lines.push(`Run ${result.startedAt}, ${round(result.durationMs / 1000, 1)} s.`);
  const anchors = [...new Set(result.figures.map((figure) => figure.anchorName))].join(", ");
  lines.push(`Values are medians over repetitions; the anchor (${anchors}) ran in the same run, interleaved.`);
  lines.push("Ratio = value / anchor value (for latency, below 1× is faster than the anchor).", "");
  lines.push(TABLE_HEADER);
  for (const figure of result.figures) lines.push(figureRow(figure));
  lines.push("", "## Repetitions", "", "| figure | streamgate samples | anchor samples |", "| --- | --- | --- |");
  for (const figure of result.figures) {
    const own = figure.samples.map((sample) => formatNumber(sample)).join(", ");
    const anchor = figure.anchorSamples.map((sample) => formatNumber(sample)).join(", ") || "–";
    lines.push(`| ${figure.name} (${figure.unit}) | ${own} | ${anchor} |`);
  }
  lines.push("", "## Parameters", "");
  for (const [key, value] of Object.entries(result.parameters)) lines.push(`- ${key}: ${jsonToText(value)}`);
  lines.push("", "## Environment", "");
  for (const [key, value] of Object.entries(result.environment)) lines.push(`- ${key}: ${jsonToText(value)}`);
  if (Object.keys(result.details).length > 0) {
    lines.push("", "## Details", "");
    for (const [key, value] of Object.entries(result.details)) lines.push(`- ${key}: ${jsonToText(value)}`);
  }
  if (result.notes.length > 0) {
    lines.push("", "## Notes", "");
    for (const note of result.notes) lines.push(`- ${note}`);
  }
  return `${lines.join("\n")}\n`;
}

/** Writes `<dir>/<name>.json` and `<dir>/<name>.md`. */
export function writeResult(dir: string, result: BenchResult): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${result.name}.json`), `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(join(dir, `${result.name}.md`), renderMarkdown(result));
}

/** Reads every `<dir>/*.json` result (including older runs of benches not selected this time). */
export function readResults(dir: string): BenchResult[] {
  mkdirSync(dir, { recursive: true });
  const files = readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(".json"))
    .map((entry) => entry.name)
    .sort();
  // Other tools (the soak run) write their own JSON beside ours; only results with figures are benchmarks.
  return files
    .map((file) => JSON.parse(readFileSync(join(dir, file), "utf8")) as Partial<BenchResult>)
    .filter((result): result is BenchResult => Array.isArray(result.figures));
}

/** Writes `<dir>/summary.md`: one table over every result in `dir`. */
export function writeSummary(dir: string): string {
  const results = readResults(dir);
  const lines: string[] = ["# Benchmark summary", ""];
  lines.push("Medians over repetitions; each anchor measured in the same run as the figure next to it.");
  lines.push("Ratio = value / anchor value (for latency, below 1× is faster than the anchor).", "");
  lines.push(TABLE_HEADER);
  for (const result of results) {
    for (const figure of result.figures) lines.push(figureRow(figure, `${result.name}: `));
  }
  lines.push("", "| bench | run at | duration | anchor |", "| --- | --- | ---: | --- |");
  for (const result of results) {
    const anchors = [...new Set(result.figures.map((figure) => figure.anchorName))].join(", ");
    lines.push(
      `| [${result.name}](${result.name}.md) | ${result.startedAt} | ${round(result.durationMs / 1000, 1)} s | ${anchors} |`,
    );
  }
  const text = `${lines.join("\n")}\n`;
  writeFileSync(join(dir, "summary.md"), text);
  return text;
}
