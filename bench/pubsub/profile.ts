// Profiles the streamgate server under the pubsub bench's latency and consume phases alone (no anchor): a fresh
// server per phase, optionally with --cpu-prof, one phase, a clean stop so the profile is written. Prints p50/p99,
// rates and server CPU per message from /proc.
//
//   node --import tsx bench/pubsub/profile.ts [latency|consume …] [--rate 5000] [--seconds 10] [--reps 1] [--prof] [--relay]
//     [--node-args='--trace-gc --import ./probe.mjs'] (extra node flags of the server)
import { appendFileSync, mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { mainThreadCpuMs, measureCpu, processCpuPreciseMs, runQueueWaitMs } from "../lib/process-cpu.js";
import { round } from "../lib/stats.js";
import { startStreamgateProcess } from "../lib/streamgate-process.js";
import { startBareRelay } from "./bare-relay.js";
import { DEFAULT_PUBSUB_SETTINGS } from "./index.js";
import { PubsubGrpcClient } from "./pubsub-grpc-client.js";
import { StreamgateDriver } from "./streamgate-driver.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    out: { type: "string", default: "bench/results/profiles/pubsub" },
    rate: { type: "string", default: "5000" },
    outstanding: { type: "string", default: "1000" },
    seconds: { type: "string", default: "10" },
    reps: { type: "string", default: "1" },
    backlog: { type: "string", default: "50000" },
    prof: { type: "boolean", default: false },
    relay: { type: "boolean", default: false },
    root: { type: "string" },
    args: { type: "string", default: "" },
    "node-args": { type: "string", default: "" },
  },
});
const repoRoot = resolve(import.meta.dirname, "../..");
/** Monotonic microseconds, the clock of V8 CPU profiles' timestamps. */
const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);
const phases = positionals.length === 0 ? ["latency", "consume"] : positionals;
const settings = {
  ...DEFAULT_PUBSUB_SETTINGS,
  latencyRatePerSecond: Number(values.rate),
  latencyDurationMs: Number(values.seconds) * 1000,
  backlogMessages: Number(values.backlog),
  maxOutstandingMessages: Number(values.outstanding),
};

for (const phase of phases) {
  const dir = resolve(repoRoot, values.out!, phase);
  mkdirSync(dir, { recursive: true });
  // --relay: the same client and phase against the bare node:http2 relay (the latency floor) instead.
  const server = values.relay
    ? await startBareRelay()
    : await startStreamgateProcess({
        repoRoot: values.root === undefined ? repoRoot : resolve(values.root),
        nodeArgs: [
          ...(values.prof ? ["--cpu-prof", "--cpu-prof-dir", dir] : []),
          ...(values["node-args"] === "" ? [] : values["node-args"].split(" ")),
        ],
        args: values.args === "" ? [] : values.args.split(" "),
      });
  const driver = new StreamgateDriver(new PubsubGrpcClient(server.target, repoRoot), server.pid);
  try {
    await driver.publish({ ...settings, publishMessages: 5_000 });
    for (let rep = 0; rep < Number(values.reps); rep++) {
      if (phase === "latency") {
        const loop = monitorEventLoopDelay({ resolution: 1 });
        loop.enable();
        const from = monotonicUs();
        const waited = runQueueWaitMs(server.pid);
        const mainBefore = mainThreadCpuMs(server.pid) ?? 0;
        const { result, serverCpuMs, clientCpuMs } = await measureCpu(server.pid, () => driver.latency(settings));
        const waitedMs = (runQueueWaitMs(server.pid) ?? 0) - (waited ?? 0);
        const mainMs = (mainThreadCpuMs(server.pid) ?? 0) - mainBefore;
        loop.disable();
        appendFileSync(`${dir}/windows.txt`, `${server.pid} latency ${from} ${monotonicUs()}\n`);
        console.log(
          `latency @${settings.latencyRatePerSecond}: p50 ${round(result.p50Ms)} ms p99 ${round(result.p99Ms)} ms max ${round(result.maxMs)} ms, ` +
            `sent ${result.sent} missing ${result.missing}, server ${round(((serverCpuMs ?? 0) * 1000) / result.received, 1)} µs/msg ` +
            `(main thread ${round((mainMs * 1000) / result.received, 1)}), ` +
            `client ${round((clientCpuMs * 1000) / result.received, 1)} µs/msg, client loop p99 ${round(loop.percentile(99) / 1e6)} ms, ` +
            `server's event loop waited for a CPU ${round(waitedMs)} ms (${round((waitedMs / (monotonicUs() - from)) * 1e5, 1)}% of the time)`,
        );
      } else {
        const prepared = await driver.prepareConsume(settings);
        const from = monotonicUs();
        const preciseBefore = processCpuPreciseMs(server.pid) ?? 0;
        const { result, serverCpuMs, clientCpuMs } = await measureCpu(server.pid, () => prepared.run());
        const preciseMs = (processCpuPreciseMs(server.pid) ?? 0) - preciseBefore;
        await prepared.cleanup();
        appendFileSync(`${dir}/windows.txt`, `${server.pid} consume ${from} ${monotonicUs()}\n`);
        console.log(
          `consume: ${Math.round((result.messages * 1000) / result.elapsedMs)} msg/s, dup ${result.duplicates}, ` +
            `server ${round(((serverCpuMs ?? 0) * 1000) / result.messages, 1)} µs/msg ` +
            `(schedstat ${round((preciseMs * 1000) / result.messages, 2)}), client ${round((clientCpuMs * 1000) / result.messages, 1)} µs/msg`,
        );
      }
    }
  } finally {
    await driver.close();
    await server.stop();
  }
}
