// Server CPU per message of Publish (100 × 256 B), issue 12's publish target (≤ 5 µs): h2load (a C client) sends the
// same framed PublishRequest over one h2c connection, CPU from /proc/<pid>/stat around the measured calls. The same
// measurement, beside its floor, is `npm run bench -- publish-batch` (bench/publish-batch/index.ts).
//
//   node --import tsx bench/publish-batch.ts [--calls 2000] [--reps 3] [--server-root DIR] [--cpu-prof DIR] [--floor]
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { median, round } from "./lib/stats.js";
import { startStreamgateProcess } from "./lib/streamgate-process.js";
import { cpuPerMessage, type PublishServer, startPublishFloor, writePublishRequest } from "./publish-batch/index.js";

const { values } = parseArgs({
  options: {
    calls: { type: "string", default: "2000" },
    reps: { type: "string", default: "3" },
    messages: { type: "string", default: "100" },
    "server-root": { type: "string", default: "." },
    "cpu-prof": { type: "string" },
    /** Measure the floor (bare node:http2 + better-sqlite3) instead of streamgate. */
    floor: { type: "boolean", default: false },
  },
});
const calls = Number(values.calls);
const perCall = Number(values.messages);

async function startServer(): Promise<PublishServer> {
  if (values.floor) return startPublishFloor();
  const server = await startStreamgateProcess({
    repoRoot: resolve(values["server-root"]),
    nodeArgs: values["cpu-prof"] === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", resolve(values["cpu-prof"])],
  });
  return { name: "streamgate", port: server.port, pid: server.pid, stop: () => server.stop() };
}

const server = await startServer();
const dir = mkdtempSync(join(tmpdir(), "publish-batch-"));
try {
  const body = join(dir, "request.bin");
  await writePublishRequest(server.port, perCall, body);
  const samples: number[] = [];
  for (let rep = 0; rep < Number(values.reps); rep++) {
    // The first repetition's warm-up also warms the server; later ones warm it again (a quarter of `calls`).
    const micros = cpuPerMessage(server, body, calls, perCall);
    samples.push(micros);
    console.log(
      `rep ${rep + 1}: ${round(micros, 2)} µs server CPU per message (${server.name}, ${calls} × Publish ${perCall} × 256 B)`,
    );
  }
  console.log(
    `median ${round(median(samples), 2)} µs per message; load average ${loadavg()
      .map((load) => load.toFixed(1))
      .join(" ")}`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
  await server.stop();
}
