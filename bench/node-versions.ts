// Runs `npm run bench` on two Node versions, each in its own checkout, alternating bench by bench, and compares them.
// usage: node --import tsx bench/node-versions.ts --old-node /usr/bin/node --old-root ../bench-node20 [--new-node PATH] [--new-root DIR] [--reps N] [--quick] [name…]
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { BenchResult, JsonValue } from "./lib/report.js";
import { formatNumber } from "./lib/report.js";
import { median, round } from "./lib/stats.js";

const ALL = ["pubsub", "fanout", "fanout-instances", "connections", "tunnel"];
const USAGE = `usage: node --import tsx bench/node-versions.ts --old-node PATH --old-root DIR [--new-node PATH] [--new-root DIR] [--reps N] [--quick] [name…]
  Each checkout must be installed (npm ci) and built with its own node. --new-* default to this node and this checkout.
  Output: bench/results/node-versions/comparison.{json,md}, plus each version's raw results.`;

/** One side of the comparison: a node binary and the checkout it runs. */
interface Side {
  label: string;
  node: string;
  version: string;
  root: string;
}

/** What happened when one side ran one benchmark. */
interface Run {
  exitCode: number | null;
  seconds: number;
  /** Executables seen running `streamgate.mjs` under the runner (read from /proc/<pid>/exe while it ran). */
  serverExecutables: string[];
  result: BenchResult | null;
  error: string | null;
}

const log = (message: string) => process.stderr.write(`${message}\n`);
const here = resolve(dirname(fileURLToPath(import.meta.url)), "..");

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, onTick?: (pid: number) => void) {
  return new Promise<number | null>((done) => {
    const child = spawn(command, args, { cwd, env, stdio: ["ignore", "inherit", "inherit"] });
    const timer = onTick && child.pid !== undefined ? setInterval(() => onTick(child.pid!), 1_000) : undefined;
    child.on("exit", (code) => {
      clearInterval(timer);
      done(code);
    });
  });
}

/** Paths of the executables of every descendant of `rootPid` whose command line runs streamgate.mjs. */
function streamgateExecutables(rootPid: number): string[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {} // the process ended meanwhile
  }
  const found: string[] = [];
  for (const pid of parents.keys()) {
    let ancestor = parents.get(pid);
    while (ancestor !== undefined && ancestor > 1 && ancestor !== rootPid) ancestor = parents.get(ancestor);
    if (ancestor !== rootPid) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("streamgate.mjs"))
        found.push(readlinkSync(`/proc/${pid}/exe`));
    } catch {}
  }
  return found;
}

function sideEnv(side: Side): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${dirname(side.node)}${delimiter}${process.env.PATH ?? ""}` };
}

/** `npm run bench -- <name>` without npm: prebench (the build) ran once before; this is the script it runs. */
async function runBench(side: Side, name: string, extra: string[]): Promise<Run> {
  const started = Date.now();
  const seen = new Set<string>();
  log(`\n=== ${side.label} ${name} (${side.node}, ${side.root}) ${new Date().toISOString()}`);
  const exitCode = await run(
    side.node,
    ["--import", "tsx", "bench/run.ts", name, ...extra],
    side.root,
    sideEnv(side),
    (pid) => {
      for (const exe of streamgateExecutables(pid)) seen.add(exe);
    },
  );
  const file = join(side.root, "bench", "results", `${name}.json`);
  let result: BenchResult | null = null;
  let error: string | null = exitCode === 0 ? null : `exit code ${exitCode}`;
  if (existsSync(file)) {
    const parsed = JSON.parse(readFileSync(file, "utf8")) as BenchResult;
    if (Date.parse(parsed.startedAt) >= started) result = parsed;
  }
  if (result === null) error = `${error ?? "exit code 0"}; no fresh ${file}`;
  else if (result.environment.node !== side.version)
    error = `result says node ${String(result.environment.node)}, expected ${side.version}`;
  return { exitCode, seconds: Math.round((Date.now() - started) / 1000), serverExecutables: [...seen], result, error };
}

/** Sum of a numeric list that may hold nulls; null when any is missing. */
function sum(values: JsonValue): number | null {
  const list = Array.isArray(values) ? values : [values];
  return list.every((value) => typeof value === "number") ? (list as number[]).reduce((a, b) => a + b, 0) : null;
}

type Runs = Record<string, { [key: string]: JsonValue }[]>;

/** Server CPU µs per operation, per row label, read from a result's details (the shapes differ per bench). */
function cpuPerOperation(result: BenchResult): Record<string, number> {
  const out: Record<string, number> = {};
  const details = result.details;
  const p = result.parameters as Record<string, number>;
  const runs = Object.fromEntries(
    Object.entries(details)
      .filter(([key]) => key.endsWith(": runs"))
      .map(([key, value]) => [key.slice(0, -": runs".length), value]),
  ) as Runs;
  if (result.name === "pubsub") {
    for (const [key, value] of Object.entries(details))
      if (key.includes("server CPU µs/msg") && typeof value === "number") out[key.replace("server CPU ", "")] = value;
  } else if (result.name === "fanout" || result.name === "fanout-instances") {
    // serverCpuMs covers the worker's whole run (connect, warm-up, saturation, and fanout's fixed-rate phase).
    for (const [target, list] of Object.entries(runs)) {
      const perRun = list.flatMap((r) => {
        const cpuMs = sum(r.serverCpuMs ?? null);
        const delivered =
          (r.deliveriesPerSecond as number) * ((p.warmupMs + p.saturationMs) / 1000) +
          (result.name === "fanout"
            ? (r.latencyPublished as number) * p.subscribers * (r.latencyDeliveredShare as number)
            : 0);
        return cpuMs === null || delivered <= 0 ? [] : [(cpuMs * 1000) / delivered];
      });
      if (perRun.length > 0) out[`${target}: µs/delivery (whole run)`] = round(median(perRun), 2);
    }
  } else if (result.name === "tunnel") {
    const paths = (details.pathCpuMicrosecondsPerCallOrMessage ?? {}) as Record<string, (number | null)[]>;
    for (const [path, values] of Object.entries(paths)) {
      const numbers = values.filter((value): value is number => value !== null);
      if (numbers.length > 0) out[`${path}: µs/call or message (path processes)`] = round(median(numbers), 2);
    }
  }
  return out;
}

const ratio = (a: number | null, b: number | null) =>
  a === null || b === null || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? null : a / b;
const times = (value: number | null) => (value === null ? "–" : `${round(value, 2)}×`);

function compare(sides: [Side, Side], names: string[], runs: Record<string, [Run, Run]>) {
  const [a, b] = sides;
  const cpuRows: JsonValue[] = [];
  const figureRows: JsonValue[] = [];
  const md: string[] = [];
  md.push(
    `| bench: server CPU per operation | ${a.label} | ${b.label} | ${b.label} / ${a.label} |`,
    "| --- | ---: | ---: | ---: |",
  );
  for (const name of names) {
    const [ra, rb] = runs[name]!;
    const ca = ra.result ? cpuPerOperation(ra.result) : {};
    const cb = rb.result ? cpuPerOperation(rb.result) : {};
    for (const key of [...new Set([...Object.keys(ca), ...Object.keys(cb)])]) {
      const row = { bench: name, figure: key, [a.label]: ca[key] ?? null, [b.label]: cb[key] ?? null };
      cpuRows.push({ ...row, ratio: ratio(cb[key] ?? null, ca[key] ?? null) });
      md.push(
        `| ${name}: ${key} | ${formatNumber(ca[key] ?? null)} | ${formatNumber(cb[key] ?? null)} | ${times(ratio(cb[key] ?? null, ca[key] ?? null))} |`,
      );
    }
  }
  md.push(
    "",
    `| bench: figure (↑ higher is better, ↓ lower) | ${a.label} | ${b.label} | ${b.label} / ${a.label} | anchor ratio ${a.label} | anchor ratio ${b.label} |`,
    "| --- | ---: | ---: | ---: | ---: | ---: |",
  );
  for (const name of names) {
    const [ra, rb] = runs[name]!;
    for (const fa of ra.result?.figures ?? rb.result?.figures ?? []) {
      const fb = rb.result?.figures.find((figure) => figure.name === fa.name);
      const va = ra.result?.figures.find((figure) => figure.name === fa.name);
      const row = { bench: name, figure: fa.name, unit: fa.unit, higherIsBetter: fa.higherIsBetter };
      const old = va?.value ?? null;
      const now = fb?.value ?? null;
      figureRows.push({
        ...row,
        [a.label]: old,
        [b.label]: now,
        ratio: ratio(now, old),
        anchorRatio: [va?.ratio ?? null, fb?.ratio ?? null],
      });
      md.push(
        `| ${name}: ${fa.name} (vs ${fa.anchorName}) ${fa.higherIsBetter ? "↑" : "↓"} | ${formatNumber(old)} ${fa.unit} | ${formatNumber(now)} ${fa.unit} | ${times(ratio(now, old))} | ${times(va?.ratio ?? null)} | ${times(fb?.ratio ?? null)} |`,
      );
    }
  }
  md.push("", `| bench | ${a.label} run | ${b.label} run | server processes ran on |`, "| --- | --- | --- | --- |");
  for (const name of names) {
    const [ra, rb] = runs[name]!;
    const status = (r: Run) => `${r.seconds} s${r.error ? `, **failed: ${r.error}**` : ""}`;
    const exes = [
      ...new Set([
        ...ra.serverExecutables.map((e) => `${a.label}: ${e}`),
        ...rb.serverExecutables.map((e) => `${b.label}: ${e}`),
      ]),
    ];
    md.push(`| ${name} | ${status(ra)} | ${status(rb)} | ${exes.join("; ") || "–"} |`);
  }
  return { cpuRows, figureRows, markdown: `${md.join("\n")}\n` };
}

/** The command line, or a message saying what is wrong with it. */
function parseCommandLine(args: string[]) {
  try {
    return parseArgs({
      args,
      allowPositionals: true,
      options: {
        "old-node": { type: "string" },
        "old-root": { type: "string" },
        "new-node": { type: "string", default: process.execPath },
        "new-root": { type: "string", default: here },
        reps: { type: "string", default: "3" },
        quick: { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
    });
  } catch (error) {
    return (error as Error).message;
  }
}

async function main(): Promise<number> {
  const parsed = parseCommandLine(process.argv.slice(2));
  if (typeof parsed === "string") {
    log(`node-versions: ${parsed}\n${USAGE}`);
    return 64;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const names = positionals.length > 0 ? positionals : ALL;
  const unknown = names.filter((name) => !ALL.includes(name));
  if (!values["old-node"] || !values["old-root"] || unknown.length > 0) {
    const what =
      unknown.length > 0
        ? `unknown benchmark ${unknown.join(", ")} (${ALL.join(", ")})`
        : "--old-node and --old-root are required";
    log(`node-versions: ${what}\n${USAGE}`);
    return 64;
  }
  const side = (node: string, root: string): Side => {
    const version = execFileSync(node, ["--version"], { encoding: "utf8" }).trim();
    return { label: `Node ${version.slice(1).split(".")[0]}`, node, version, root: resolve(root) };
  };
  const sides: [Side, Side] = [
    side(values["old-node"], values["old-root"]),
    side(values["new-node"], values["new-root"]),
  ];
  const extra = ["--reps", values.reps, ...(values.quick ? ["--quick"] : [])];
  const startedAt = new Date().toISOString();
  for (const s of sides) {
    log(`=== build ${s.label} in ${s.root}`);
    if ((await run(s.node, ["scripts/build.mjs"], s.root, sideEnv(s))) !== 0)
      throw new Error(`build failed in ${s.root}`);
  }
  const runs: Record<string, [Run, Run]> = {};
  for (const name of names) runs[name] = [await runBench(sides[0], name, extra), await runBench(sides[1], name, extra)];

  const out = join(here, "bench", "results", "node-versions");
  for (const s of sides) {
    mkdirSync(join(out, s.label), { recursive: true });
    for (const name of names) {
      const file = join(s.root, "bench", "results", `${name}.json`);
      if (existsSync(file)) copyFileSync(file, join(out, s.label, `${name}.json`));
    }
  }
  const { cpuRows, figureRows, markdown } = compare(sides, names, runs);
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "unknown"}, ${Math.round(totalmem() / 2 ** 30)} GiB, load ${loadavg()
    .map((v) => round(v, 2))
    .join(" ")} at the end`;
  const header = [
    `Run ${startedAt} → ${new Date().toISOString()}, ${extra.join(" ")}, benchmarks alternating ${sides.map((s) => s.label).join(" / ")}.`,
    ...sides.map((s) => `- ${s.label}: \`${s.node}\` ${s.version}, checkout \`${s.root}\``),
    `- machine: ${machine}`,
    "",
  ].join("\n");
  const summary = {
    startedAt,
    arguments: extra,
    machine,
    sides: sides as unknown as JsonValue,
    serverCpuPerOperation: cpuRows,
    figures: figureRows,
    runs: Object.fromEntries(
      names.map((name) => [name, runs[name]!.map((r) => ({ ...r, result: r.result?.startedAt ?? null }))]),
    ) as unknown as JsonValue,
  };
  // In a subfolder: the runner's summary.md reads only the files directly in bench/results.
  writeFileSync(join(out, "comparison.json"), `${JSON.stringify(summary, null, 2)}\n`);
  writeFileSync(join(out, "comparison.md"), `${header}\n${markdown}`);
  process.stdout.write(`${header}\n${markdown}`);
  return Object.values(runs).some(([ra, rb]) => ra.error !== null || rb.error !== null) ? 1 : 0;
}

process.exitCode = await main();
