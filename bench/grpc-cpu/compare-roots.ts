// Lean-path CPU per unary call of two or more streamgate checkouts (e.g. main and a branch) against the bare floor, interleaved in one run.
//
//   node --import tsx bench/grpc-cpu/compare-roots.ts [--reps 5] [--calls 20000] <checkout> <checkout>…
//
// Each checkout runs its own `bin/streamgate.mjs` (its compiled dist/ when fresh: `npm run build` there first).
// On a shared machine the absolute figures move with the load; the ratios between checkouts measured
// back to back, call for call, are what this is for.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { median, round } from "../lib/stats.js";
import { startStreamgateProcess } from "../lib/streamgate-process.js";
import { cpuPerCall, MEASURED_CALLS, type Method, prepare, type Server, startFloor } from "./index.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { reps: { type: "string", default: "5" }, calls: { type: "string", default: String(MEASURED_CALLS) } },
});
if (positionals.length === 0) {
  process.stderr.write("usage: compare-roots.ts [--reps N] [--calls N] <checkout>…\n");
  process.exit(2);
}
const repetitions = Number(values.reps);
const calls = Number(values.calls);
const dir = mkdtempSync(join(tmpdir(), "streamgate-bench-compare-"));
const servers: Server[] = [];
try {
  const floor = await startFloor();
  servers.push(floor);
  const checkouts: { server: Server; methods: Method[] }[] = [];
  for (const root of positionals) {
    const child = await startStreamgateProcess({ repoRoot: resolve(root), args: ["--grpc-path", "lean"] });
    const server: Server = { name: root, port: child.port, pid: child.pid, stop: () => child.stop() };
    servers.push(server);
    checkouts.push({ server, methods: await prepare(server.port) });
  }
  const samples = new Map<string, number[]>();
  const add = (key: string, value: number) => samples.set(key, [...(samples.get(key) ?? []), round(value, 1)]);
  const names = checkouts[0]!.methods.map((method) => method.name);
  for (let repetition = 0; repetition < repetitions; repetition++) {
    for (const [index, name] of names.entries()) {
      add(`floor|${name}`, cpuPerCall(floor, checkouts[0]!.methods[index]!, calls, dir));
      for (const { server, methods } of checkouts)
        add(`${server.name}|${name}`, cpuPerCall(server, methods[index]!, calls, dir));
    }
  }
  const lines = [
    `| call | bare floor | ${positionals.map((root) => `${root} (÷ floor)`).join(" | ")} |`,
    `| --- | ---: | ${positionals.map(() => "---:").join(" | ")} |`,
  ];
  for (const name of names) {
    const floorMedian = median(samples.get(`floor|${name}`)!);
    const cells = checkouts.map(({ server }) => {
      const value = median(samples.get(`${server.name}|${name}`)!);
      return `${value} µs (${round(value / floorMedian, 2)}×)`;
    });
    lines.push(`| ${name} | ${floorMedian} µs | ${cells.join(" | ")} |`);
  }
  process.stdout.write(`${lines.join("\n")}\n\nsamples (µs): ${JSON.stringify(Object.fromEntries(samples))}\n`);
} finally {
  for (const server of servers) await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
