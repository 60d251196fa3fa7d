// Consume-with-ack through `serve --engine jetstream` from two checkouts, alternated on one nats-server, next to the @nats-io anchor: CPU per message from /proc.
// Usage: node --import tsx bench/jetstream-engine/consume-ab.ts [--roots A,B] [--reps N] [--backlog N] [--warmup N] [--prof DIR]
// (--roots: comma-separated checkouts serving in turn, default this one; --prof: each server writes a V8 CPU profile
// to DIR/<index>/ and the consume windows, on the profile's clock, to DIR/<index>/windows.txt).
import { appendFileSync, mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { startNatsServer } from "../../test/harness/nats-server.js";
import { measureCpu, processCpuMs } from "../lib/process-cpu.js";
import { median, round } from "../lib/stats.js";
import { type StreamgateProcess, startStreamgateProcess } from "../lib/streamgate-process.js";
import type { PubsubDriver } from "../pubsub/driver.js";
import { DEFAULT_PUBSUB_SETTINGS } from "../pubsub/index.js";
import { JetStreamDriver } from "../pubsub/jetstream-driver.js";
import { PubsubGrpcClient } from "../pubsub/pubsub-grpc-client.js";
import { StreamgateDriver } from "../pubsub/streamgate-driver.js";

const { values } = parseArgs({
  options: {
    roots: { type: "string" },
    reps: { type: "string", default: "3" },
    backlog: { type: "string", default: "50000" },
    warmup: { type: "string", default: "2000" },
    prof: { type: "string" },
  },
});
const repoRoot = resolve(import.meta.dirname, "../..");
const roots = (values.roots ?? repoRoot).split(",").map((root) => resolve(root));
const settings = { ...DEFAULT_PUBSUB_SETTINGS, backlogMessages: Number(values.backlog) };
/** Monotonic microseconds, the clock of V8 CPU profiles' timestamps. */
const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

interface Sample {
  rate: number;
  serverUs: number;
  clientUs: number;
  natsUs: number;
}

const nats = await startNatsServer({ jetstream: true });
const servers: StreamgateProcess[] = [];
const drivers: PubsubDriver[] = [];
const samples = new Map<string, Sample[]>();
try {
  const anchor = await JetStreamDriver.connect(nats.url, nats.pid, "JetStream @nats-io");
  drivers.push(anchor);
  const contestants: { label: string; driver: PubsubDriver; profileDir?: string }[] = [];
  for (const [index, root] of roots.entries()) {
    const profileDir = values.prof === undefined ? undefined : resolve(values.prof, String(index));
    if (profileDir !== undefined) mkdirSync(profileDir, { recursive: true });
    const server = await startStreamgateProcess({
      repoRoot: root,
      // A namespace each: servers sharing one would form a cluster of instances, each seeing the other's subscriptions.
      args: ["--engine", "jetstream", "--nats-url", nats.url, "--jetstream-namespace", `ab${index}`],
      nodeArgs: profileDir === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", profileDir],
    });
    servers.push(server);
    const driver = new StreamgateDriver(new PubsubGrpcClient(server.target, repoRoot), server.pid, `${index}:${root}`);
    drivers.push(driver);
    contestants.push({ label: driver.name, driver, profileDir });
  }
  contestants.push({ label: "anchor", driver: anchor });
  for (const { driver } of contestants) {
    const warm = await driver.prepareConsume({ ...settings, backlogMessages: Number(values.warmup) });
    await warm.run().finally(() => warm.cleanup());
  }
  for (let rep = 0; rep < Number(values.reps); rep++) {
    const order = rep % 2 === 0 ? contestants : [...contestants].reverse();
    for (const { label, driver, profileDir } of order) {
      const prepared = await driver.prepareConsume(settings);
      const natsBefore = processCpuMs(nats.pid);
      const from = monotonicUs();
      const { result, serverCpuMs, clientCpuMs } = await measureCpu(driver.serverPid, () => prepared.run()).finally(
        () => prepared.cleanup(),
      );
      const natsAfter = processCpuMs(nats.pid);
      if (profileDir !== undefined) appendFileSync(`${profileDir}/windows.txt`, `${from} ${monotonicUs()}\n`);
      const sample: Sample = {
        rate: (result.messages * 1000) / result.elapsedMs,
        serverUs: ((serverCpuMs ?? Number.NaN) * 1000) / result.messages,
        clientUs: (clientCpuMs * 1000) / result.messages,
        natsUs: (((natsAfter ?? Number.NaN) - (natsBefore ?? Number.NaN)) * 1000) / result.messages,
      };
      const list = samples.get(label) ?? [];
      list.push(sample);
      samples.set(label, list);
      console.log(
        `#${rep + 1} ${label}: ${Math.round(sample.rate)} msg/s, server ${round(sample.serverUs, 1)} µs/msg, ` +
          `client ${round(sample.clientUs, 1)}, nats-server ${round(sample.natsUs, 1)}, dup ${result.duplicates}${result.capped ? " CAPPED" : ""}`,
      );
    }
  }
  const anchorRates = samples.get("anchor")!.map((sample) => sample.rate);
  for (const [label, list] of samples) {
    const pick = (key: keyof Sample) => round(median(list.map((sample) => sample[key])), 1);
    const ratios = list.map((sample, index) => sample.rate / anchorRates[index]!);
    console.log(
      `median ${label}: ${Math.round(pick("rate"))} msg/s (ratio ${round(median(ratios), 2)}), server ${pick("serverUs")} µs/msg, ` +
        `client ${pick("clientUs")}, nats-server ${pick("natsUs")}`,
    );
  }
} finally {
  for (const driver of drivers) await driver.close().catch(() => undefined);
  for (const server of servers) await server.stop();
  await nats.stop();
}
