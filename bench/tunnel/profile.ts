// Profiles the tunnel's server and agent under one bench figure at a time: a fresh backend + server + agent per
// phase, started with --cpu-prof (and --heapsnapshot-signal for the idle phase), one load phase, then a clean stop
// so the profiles are written. CPU time per call or message of each process comes from /proc around the phase.
//
//   npm run build && node --import tsx bench/tunnel/profile.ts [unary|stream|latency|idle …] [--out DIR] [--idle N]
//   node --import tsx bench/tunnel/profile-summary.ts DIR/<phase>/*.cpuprofile   # top functions
import { mkdirSync, readdirSync, readFileSync, renameSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { processCpuMs } from "../lib/process-cpu.js";
import type { WorkerReply } from "./client-worker.js";
import { getJson, startBackendProcess, startLoadWorker, startRelayProcess, startTunnelProcesses } from "./processes.js";

type Phase = "unary" | "stream" | "latency" | "idle";
const PHASES: readonly Phase[] = ["unary", "stream", "latency", "idle"];

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    out: { type: "string", default: "bench/results/profiles/tunnel" },
    idle: { type: "string", default: "2000" },
    seconds: { type: "string", default: "4" },
    /** Only the CPU per operation (no profiler in the processes): for A/B comparisons of two builds. */
    "no-prof": { type: "boolean", default: false },
    /** Load the two bare relays (the floor) instead of the tunnel: "server" is the outer relay, "agent" the inner. */
    floor: { type: "boolean", default: false },
    /** Serve the tunnel from another checkout's build (A/B against this one). */
    root: { type: "string" },
  },
});
const repoRoot = resolve(import.meta.dirname, "../..");
const phases = (positionals.length === 0 ? PHASES : positionals) as Phase[];
for (const phase of phases)
  if (!PHASES.includes(phase)) throw new Error(`unknown phase ${phase} (${PHASES.join(", ")})`);
const durationMs = Number(values.seconds) * 1000;
const idleStreams = Number(values.idle);
/** VmRSS of `pid` in bytes. */
const rssOf = (pid: number) =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) * 1024;
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

async function profile(phase: Phase): Promise<void> {
  const dir = resolve(repoRoot, values.out!, phase);
  mkdirSync(dir, { recursive: true });
  const backend = await startBackendProcess(repoRoot);
  const nodeArgs = values["no-prof"]
    ? ["--heapsnapshot-signal=SIGUSR2", "--diagnostic-dir", dir]
    : ["--cpu-prof", "--cpu-prof-dir", dir, "--heapsnapshot-signal=SIGUSR2", "--diagnostic-dir", dir];
  const tunnel = values.floor
    ? await startFloor(backend.port, nodeArgs)
    : await startTunnelProcesses({
        repoRoot,
        serverRoot: values.root === undefined ? repoRoot : resolve(values.root),
        backendPort: backend.port,
        nodeArgs,
      });
  const workers = [startLoadWorker(repoRoot), startLoadWorker(repoRoot)];
  const pids = { server: tunnel.server.pid, agent: tunnel.agentPid, backend: backend.pid };
  const cpu = () => Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, processCpuMs(pid) ?? 0]));
  try {
    const address = tunnel.grpcEntry;
    const run = (task: Parameters<(typeof workers)[0]["run"]>[0]) => Promise.all(workers.map((w) => w.run(task)));
    // Tunnel streams the agent attached during the phase (with stream reuse, far fewer than calls).
    const attached = async () => {
      const port = (tunnel.server as { port?: number }).port;
      if (port === undefined) return 0;
      const reply = (await getJson(port, "/v1/tunnel/agents").catch(() => null)) as {
        agents?: { streams_attached?: number }[];
      } | null;
      return (reply?.agents ?? []).reduce((sum, agent) => sum + (agent.streams_attached ?? 0), 0);
    };
    const attachedBefore = await attached();
    let before = cpu();
    let operations = 0;
    if (phase === "unary") {
      const replies = await run({ kind: "unary", address, concurrency: 32, bodyBytes: 1024, warmupMs: 0, durationMs });
      operations = replies.reduce((sum, r) => sum + (r as Extract<WorkerReply, { kind: "unary" }>).calls, 0);
    } else if (phase === "stream") {
      const replies = await run({
        kind: "stream",
        address,
        streams: 8,
        window: 16,
        bodyBytes: 1024,
        warmupMs: 0,
        durationMs,
      });
      operations = replies.reduce((sum, r) => sum + (r as Extract<WorkerReply, { kind: "stream" }>).messages, 0);
    } else if (phase === "latency") {
      const reply = (await workers[0]!.run({
        kind: "latency",
        address,
        bodyBytes: 1024,
        warmupMs: 0,
        durationMs,
      })) as Extract<WorkerReply, { kind: "latency" }>;
      operations = reply.latenciesMs.length;
      const sorted = [...reply.latenciesMs].sort((a, b) => a - b);
      console.log(`  latency p50 ${sorted[Math.floor(sorted.length / 2)]?.toFixed(3)} ms over ${sorted.length} calls`);
    } else {
      // Heap snapshots with the streams held (the diff against one taken before shows what each stream keeps).
      process.kill(pids.server, "SIGUSR2");
      process.kill(pids.agent, "SIGUSR2");
      await sleep(3_000);
      before = cpu();
      const rssBefore = { server: rssOf(pids.server), agent: rssOf(pids.agent) };
      const per = Math.ceil(idleStreams / workers.length);
      await run({ kind: "hold", address, streams: per, channels: Math.ceil(per / 900), bodyBytes: 16 });
      operations = per * workers.length;
      await sleep(1_000);
      const perStream = (name: "server" | "agent") =>
        `${((rssOf(pids[name]) - rssBefore[name]) / 1024 / operations).toFixed(1)} KiB`;
      console.log(`  RSS per held stream: server ${perStream("server")}, agent ${perStream("agent")}`);
      process.kill(pids.server, "SIGUSR2");
      process.kill(pids.agent, "SIGUSR2");
      await sleep(5_000);
      await Promise.all(workers.map((w) => w.run({ kind: "release" })));
    }
    const after = cpu();
    const perOp = Object.fromEntries(
      Object.keys(pids).map((name) => [
        name,
        `${(((after[name]! - before[name]!) * 1000) / Math.max(1, operations)).toFixed(1)} µs`,
      ]),
    );
    console.log(`${phase}: ${operations} operations; CPU per operation ${JSON.stringify(perOp)}`);
    if (!values.floor)
      console.log(`  tunnel streams attached during the phase: ${(await attached()) - attachedBefore}`);
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await tunnel.stop();
    await backend.stop();
  }
  // Name the profiles after the process they came from (pid → role).
  for (const file of readdirSync(dir)) {
    for (const [name, pid] of Object.entries(pids)) {
      if (file.includes(`.${pid}.`) && !file.startsWith(name))
        renameSync(join(dir, file), join(dir, `${name}-${file}`));
    }
  }
  console.log(`  profiles in ${dir}`);
}

/** The two bare relays in the shape of the tunnel's processes (outer = "server", inner = "agent"). */
async function startFloor(backendPort: number, nodeArgs: string[]) {
  const inner = await startRelayProcess(repoRoot, `127.0.0.1:${backendPort}`, nodeArgs);
  const outer = await startRelayProcess(repoRoot, `127.0.0.1:${inner.port}`, nodeArgs);
  return {
    grpcEntry: `127.0.0.1:${outer.port}`,
    server: { pid: outer.pid },
    agentPid: inner.pid,
    stop: async () => {
      await outer.stop();
      await inner.stop();
    },
  };
}

for (const phase of phases) await profile(phase);
