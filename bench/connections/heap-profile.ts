// What one idle stream keeps alive in the server: heap snapshots of a streamgate child process before and after
// opening N idle SSE streams, then N idle WebSocket subscriptions (plus RSS at each step). Read the snapshots with
// bench/tunnel/profile-summary.ts (objects added per stream, grouped by constructor):
//
//   node --import tsx bench/connections/heap-profile.ts --streams 2000 --out /tmp/heap [--server-root DIR]
//   node --import tsx bench/tunnel/profile-summary.ts /tmp/heap/0-idle.heapsnapshot /tmp/heap/1-sse.heapsnapshot --per 2000
import { mkdirSync, readdirSync, readFileSync, renameSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { openSse, openWebSocket, type WireStream } from "../fanout/wire-clients.js";
import { startStreamgateProcess } from "../lib/streamgate-process.js";

const { values } = parseArgs({
  options: {
    streams: { type: "string", default: "2000" },
    out: { type: "string", default: "bench/results/heap" },
    "server-root": { type: "string", default: "." },
  },
});
const count = Number(values.streams);
const out = resolve(values.out);
mkdirSync(out, { recursive: true });
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

function rssKiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match === null ? Number.NaN : Number(match[1]);
}

const server = await startStreamgateProcess({
  repoRoot: resolve(values["server-root"]),
  // A snapshot on SIGUSR2 (GC first, as every heap snapshot does), written to `out`.
  nodeArgs: ["--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${out}`],
});
const topic = "projects/bench/topics/idle";
const held: WireStream[] = [];
try {
  const created = await fetch(`${server.url}/v1/${topic}`, {
    method: "PUT",
    headers: { "content-type": "application/json", connection: "close" },
    body: "{}",
  });
  if (!created.ok) throw new Error(`create topic: ${created.status}`);
  const base = { host: "127.0.0.1", port: server.port, handlers: {} };
  const open = (kind: "sse" | "ws"): Promise<WireStream> =>
    kind === "sse"
      ? openSse({ ...base, path: `/v1/${topic}/events?from=latest` })
      : openWebSocket({
          ...base,
          path: "/v1/ws",
          subscribeText: JSON.stringify({ type: "subscribe", id: "s", topic, from: "latest" }),
          awaitText: '"subscribed"',
        });
  const openMany = async (kind: "sse" | "ws", total: number): Promise<WireStream[]> => {
    const streams: WireStream[] = [];
    let next = 0;
    const lane = async () => {
      while (next < total) {
        next++;
        streams.push(await open(kind));
      }
    };
    await Promise.all(Array.from({ length: 32 }, lane));
    return streams;
  };
  // Warm-up: first-use costs (code, pools, label children) are not per stream.
  for (const stream of [...(await openMany("sse", 50)), ...(await openMany("ws", 50))]) stream.destroy();
  await sleep(1_000);

  const snapshot = async (name: string) => {
    const known = new Set(readdirSync(out));
    process.kill(server.pid, "SIGUSR2");
    for (;;) {
      await sleep(500);
      const written = readdirSync(out).find((file) => file.endsWith(".heapsnapshot") && !known.has(file));
      if (written === undefined) continue;
      const path = join(out, written);
      // The file appears when writing starts: wait until it holds the whole JSON document.
      while (!readFileSync(path, "latin1").trimEnd().endsWith("]}")) await sleep(500);
      const target = join(out, `${name}.heapsnapshot`);
      renameSync(path, target);
      console.log(`${name}: RSS ${rssKiB(server.pid)} KiB, snapshot ${target}`);
      return;
    }
  };
  await snapshot("0-idle");
  held.push(...(await openMany("sse", count)));
  await sleep(2_000);
  await snapshot("1-sse");
  held.push(...(await openMany("ws", count)));
  await sleep(2_000);
  await snapshot("2-ws");
} finally {
  for (const stream of held) stream.destroy();
  await server.stop();
}
