// Publish 100 × 256 B server CPU per message of two or more streamgate checkouts (e.g. main and a branch) and the
// floor, all started at once and measured round by round, in alternating order, in one run.
//
//   node --import tsx bench/publish-batch/compare-roots.ts [--rounds 10] [--calls 500] <checkout> <checkout>…
//
// Each checkout runs its own `bin/streamgate.mjs` (its compiled dist/ when fresh: `npm run build` there first).
// On a shared machine one server's figure swings with the load from one run to the next; here every round
// measures each server for `--calls` calls back to back, so the per-round ratios to the first checkout are
// what to read (their median is printed).
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { median, round } from "../lib/stats.js";
import { startStreamgateProcess } from "../lib/streamgate-process.js";
import { cpuPerMessage, type PublishServer, startPublishFloor, writePublishRequest } from "./index.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { rounds: { type: "string", default: "10" }, calls: { type: "string", default: "500" } },
});
if (positionals.length === 0) {
  process.stderr.write("usage: compare-roots.ts [--rounds N] [--calls N] <checkout>…\n");
  process.exit(2);
}
const rounds = Number(values.rounds);
const calls = Number(values.calls);
const messages = 100;
const dir = mkdtempSync(join(tmpdir(), "publish-batch-compare-"));
const servers: { server: PublishServer; body: string; samples: number[] }[] = [];
try {
  for (const root of positionals) {
    const process = await startStreamgateProcess({ repoRoot: resolve(root) });
    servers.push({
      server: { name: root, port: process.port, pid: process.pid, stop: () => process.stop() },
      body: join(dir, `request-${servers.length}.bin`),
      samples: [],
    });
  }
  servers.push({ server: await startPublishFloor(), body: join(dir, "request-floor.bin"), samples: [] });
  for (const entry of servers) await writePublishRequest(entry.server.port, messages, entry.body);
  for (let roundIndex = 0; roundIndex < rounds; roundIndex++) {
    const order = roundIndex % 2 === 0 ? servers : [...servers].reverse();
    for (const entry of order) entry.samples.push(cpuPerMessage(entry.server, entry.body, calls, messages));
    console.log(
      `round ${roundIndex + 1}: ${servers.map((entry) => `${entry.server.name} ${round(entry.samples.at(-1)!, 2)}`).join(", ")} µs/msg`,
    );
  }
  const first = servers[0]!.samples;
  for (const entry of servers) {
    const ratios = entry.samples.map((sample, index) => sample / first[index]!);
    console.log(
      `${entry.server.name}: median ${round(median(entry.samples), 2)} µs per message, median ratio to ${positionals[0]} ${round(median(ratios), 3)}×`,
    );
  }
  console.log(
    `load average ${loadavg()
      .map((load) => load.toFixed(1))
      .join(" ")}`,
  );
} finally {
  for (const entry of servers) await entry.server.stop();
  rmSync(dir, { recursive: true, force: true });
}
