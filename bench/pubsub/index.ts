// The "pubsub" benchmark: publish throughput, consume-with-ack throughput and fixed-rate latency, streamgate vs NATS JetStream.
import { type NatsServer, startNatsServer } from "../../test/harness/nats-server.js";
import type { BenchContext, Benchmark } from "../lib/benchmark.js";
import { natsServerVersion } from "../lib/environment.js";
import { measureCpu } from "../lib/process-cpu.js";
import { type BenchOutcome, type JsonValue, makeFigure } from "../lib/report.js";
import { median, round } from "../lib/stats.js";
import { type StreamgateProcess, startStreamgateProcess, streamgateBinary } from "../lib/streamgate-process.js";
import type { PubsubDriver, PubsubSettings } from "./driver.js";
import { JetStreamDriver } from "./jetstream-driver.js";
import { PubsubGrpcClient } from "./pubsub-grpc-client.js";
import { StreamgateDriver } from "./streamgate-driver.js";

/** Settings at scale 1 (about 2–3 minutes on 2 cores). */
export const DEFAULT_PUBSUB_SETTINGS: PubsubSettings = {
  messageBytes: 256,
  publishMessages: 50_000,
  batchMaxMessages: 100,
  batchMaxBytes: 1_000_000,
  publishRequestsInFlight: 10,
  jetstreamPublishWindow: 1_000,
  backlogMessages: 50_000,
  maxOutstandingMessages: 1_000,
  ackBatchMaxMessages: 500,
  ackBatchMaxDelayMs: 10,
  latencyRatePerSecond: 5_000,
  latencyDurationMs: 10_000,
  latencyWarmupMs: 1_000,
  measurementTimeoutMs: 60_000,
};

/** Scales message counts and the latency window (rates, sizes and windows stay). */
export function scaleSettings(settings: PubsubSettings, scale: number): PubsubSettings {
  const count = (value: number): number => Math.max(1_000, Math.round((value * scale) / 100) * 100);
  return {
    ...settings,
    publishMessages: count(settings.publishMessages),
    backlogMessages: count(settings.backlogMessages),
    latencyDurationMs: Math.max(3_000, Math.round(settings.latencyDurationMs * scale)),
    latencyWarmupMs: Math.min(settings.latencyWarmupMs, Math.max(500, Math.round(settings.latencyWarmupMs * scale))),
  };
}

/** Per-repetition measurements of one driver. */
interface Samples {
  publishRate: number[];
  consumeRate: number[];
  p50: number[];
  p99: number[];
  /** Server CPU microseconds per message, per measurement kind. */
  serverCpuUsPerMessage: Record<"publish" | "consume" | "latency", number[]>;
  clientCpuUsPerMessage: Record<"publish" | "consume" | "latency", number[]>;
  runs: JsonValue[];
  problems: string[];
}

function emptySamples(): Samples {
  return {
    publishRate: [],
    consumeRate: [],
    p50: [],
    p99: [],
    serverCpuUsPerMessage: { publish: [], consume: [], latency: [] },
    clientCpuUsPerMessage: { publish: [], consume: [], latency: [] },
    runs: [],
    problems: [],
  };
}

function recordCpu(
  samples: Samples,
  kind: "publish" | "consume" | "latency",
  messages: number,
  serverCpuMs: number | null,
  clientCpuMs: number,
): void {
  if (messages <= 0) return;
  if (serverCpuMs !== null) samples.serverCpuUsPerMessage[kind].push((serverCpuMs * 1000) / messages);
  samples.clientCpuUsPerMessage[kind].push((clientCpuMs * 1000) / messages);
}

/** Runs each measurement `repetitions` times, alternating which driver goes first so drift hits both alike. */
async function measureAll(
  drivers: readonly PubsubDriver[],
  samples: ReadonlyMap<PubsubDriver, Samples>,
  settings: PubsubSettings,
  context: BenchContext,
): Promise<void> {
  const ordered = (repetition: number): readonly PubsubDriver[] =>
    repetition % 2 === 0 ? drivers : [...drivers].reverse();
  const warmup = { ...settings, publishMessages: Math.min(5_000, settings.publishMessages) };
  for (const driver of drivers) {
    context.log(`  warm-up ${driver.name}`);
    await driver.publish(warmup);
  }
  for (let repetition = 0; repetition < context.repetitions; repetition++) {
    for (const driver of ordered(repetition)) {
      const own = samples.get(driver)!;
      const { result, serverCpuMs, clientCpuMs } = await measureCpu(driver.serverPid, () => driver.publish(settings));
      const rate = (result.messages * 1000) / result.elapsedMs;
      own.publishRate.push(rate);
      recordCpu(own, "publish", result.messages, serverCpuMs, clientCpuMs);
      own.runs.push({ kind: "publish", repetition, ...result, rate: round(rate) });
      if (result.capped)
        own.problems.push(`publish repetition ${repetition + 1} was capped (${result.messages} messages)`);
      context.log(`  publish   #${repetition + 1} ${driver.name}: ${Math.round(rate)} msg/s`);
    }
  }
  for (let repetition = 0; repetition < context.repetitions; repetition++) {
    for (const driver of ordered(repetition)) {
      const own = samples.get(driver)!;
      const prepared = await driver.prepareConsume(settings);
      const { result, serverCpuMs, clientCpuMs } = await measureCpu(driver.serverPid, () => prepared.run()).finally(
        () => prepared.cleanup(),
      );
      recordCpu(own, "consume", result.messages, serverCpuMs, clientCpuMs);
      const rate = (result.messages * 1000) / result.elapsedMs;
      own.consumeRate.push(rate);
      own.runs.push({ kind: "consume", repetition, ...result, rate: round(rate) });
      if (result.capped)
        own.problems.push(`consume repetition ${repetition + 1} was capped (${result.messages} messages)`);
      context.log(
        `  consume   #${repetition + 1} ${driver.name}: ${Math.round(rate)} msg/s (${result.duplicates} duplicates)`,
      );
    }
  }
  for (let repetition = 0; repetition < context.repetitions; repetition++) {
    for (const driver of ordered(repetition)) {
      const own = samples.get(driver)!;
      const { result, serverCpuMs, clientCpuMs } = await measureCpu(driver.serverPid, () => driver.latency(settings));
      own.p50.push(result.p50Ms);
      own.p99.push(result.p99Ms);
      recordCpu(own, "latency", result.received, serverCpuMs, clientCpuMs);
      own.runs.push({ kind: "latency", repetition, ...result });
      if (result.missing > 0)
        own.problems.push(`latency repetition ${repetition + 1}: ${result.missing} messages not received`);
      context.log(
        `  latency   #${repetition + 1} ${driver.name}: p50 ${round(result.p50Ms)} ms, p99 ${round(result.p99Ms)} ms, ` +
          `max ${round(result.maxMs)} ms at ${Math.round(result.achievedRatePerSecond)} msg/s`,
      );
    }
  }
}

function cpuDetails(samples: Samples): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  for (const kind of ["publish", "consume", "latency"] as const) {
    out[`server CPU µs/msg, ${kind}`] = round(median(samples.serverCpuUsPerMessage[kind]), 1);
    out[`client CPU µs/msg, ${kind}`] = round(median(samples.clientCpuUsPerMessage[kind]), 1);
  }
  return out;
}

/** The "pubsub" benchmark. */
export const pubsubBenchmark: Benchmark = {
  name: "pubsub",
  title:
    "Pub/Sub: publish throughput, consume-with-ack throughput, publish→receive latency — streamgate vs NATS JetStream",
  maxDurationMs: 10 * 60_000,
  async run(context: BenchContext): Promise<BenchOutcome> {
    const settings = scaleSettings(DEFAULT_PUBSUB_SETTINGS, context.scale);
    const anchorName = `NATS JetStream ${natsServerVersion()?.replace(/^nats-server:\s*/, "") ?? ""}`.trim();
    const notes: string[] = [];
    let nats: NatsServer | undefined;
    let streamgate: StreamgateProcess | undefined;
    const drivers: PubsubDriver[] = [];
    const streamgateSamples = emptySamples();
    const anchorSamples = emptySamples();
    try {
      context.log("  starting nats-server -js and streamgate (child processes)");
      nats = await startNatsServer({ jetstream: true });
      const jetStreamDriver = await JetStreamDriver.connect(nats.url, nats.pid, anchorName);
      drivers.push(jetStreamDriver);
      const samples = new Map<PubsubDriver, Samples>([[jetStreamDriver, anchorSamples]]);
      if (context.anchorOnly || streamgateBinary(context.repoRoot) === null) {
        // Checks the anchor and the report plumbing without the server; the figures then show "–" and fail.
        context.log("  *** measuring the anchor only ***");
        notes.push("Only the anchor was measured (--anchor-only or bin/streamgate.mjs missing).");
      } else {
        streamgate = await startStreamgateProcess({ repoRoot: context.repoRoot });
        const client = new PubsubGrpcClient(streamgate.target, context.repoRoot);
        const streamgateDriver = new StreamgateDriver(client, streamgate.pid);
        drivers.unshift(streamgateDriver);
        samples.set(streamgateDriver, streamgateSamples);
      }
      await measureAll(drivers, samples, settings, context);
    } finally {
      for (const driver of drivers) await driver.close().catch(() => undefined);
      await streamgate?.stop();
      await nats?.stop();
    }

    const figure = (
      name: string,
      unit: string,
      higherIsBetter: boolean,
      own: number[],
      anchor: number[],
      target: Parameters<typeof makeFigure>[0]["target"],
    ) =>
      makeFigure({
        name,
        unit,
        higherIsBetter,
        samples: own.map((v) => round(v)),
        anchorName,
        anchorSamples: anchor.map((v) => round(v)),
        target,
        median,
      });
    const figures = [
      figure(
        `Publish throughput, ${settings.messageBytes} B, batched`,
        "msg/s",
        true,
        streamgateSamples.publishRate,
        anchorSamples.publishRate,
        { kind: "ratioAtLeast", ratio: 1 },
      ),
      figure(
        `Consume with ack, backlog ${settings.backlogMessages.toLocaleString("en-US")}`,
        "msg/s",
        true,
        streamgateSamples.consumeRate,
        anchorSamples.consumeRate,
        { kind: "ratioAtLeast", ratio: 1 },
      ),
      figure(
        `Latency p50 @ ${settings.latencyRatePerSecond.toLocaleString("en-US")} msg/s`,
        "ms",
        false,
        streamgateSamples.p50,
        anchorSamples.p50,
        null,
      ),
      figure(
        `Latency p99 @ ${settings.latencyRatePerSecond.toLocaleString("en-US")} msg/s`,
        "ms",
        false,
        streamgateSamples.p99,
        anchorSamples.p99,
        {
          kind: "valueBelow",
          value: 10,
        },
      ),
    ];

    notes.push(
      "Both servers run as child processes (streamgate: node bin/streamgate.mjs serve, embedded SQLite engine; nats-server -js, file storage); the client runs in the bench process.",
      `streamgate is driven by a raw @grpc/grpc-js client over one h2c channel (google/pubsub/v1/pubsub.proto via @grpc/proto-loader); JetStream by @nats-io/jetstream over one connection.`,
      `Publish: streamgate gets Publish requests of ${settings.batchMaxMessages} messages, ${settings.publishRequestsInFlight} in flight (${settings.batchMaxMessages * settings.publishRequestsInFlight} messages); JetStream gets async publishes with ${settings.jetstreamPublishWindow} awaiting their ack. Every message is acknowledged by the server before it counts.`,
      `Consume: streamgate via one StreamingPull (max_outstanding_messages ${settings.maxOutstandingMessages}) with acks in unary Acknowledge calls of up to ${settings.ackBatchMaxMessages} ids or after ${settings.ackBatchMaxDelayMs} ms; JetStream via a durable pull consumer (explicit ack, max_ack_pending ${settings.maxOutstandingMessages}) with consume() and ack() per message. Timing ends when every ack is confirmed (Acknowledge answered / NATS flush round trip).`,
      `Latency: ${settings.latencyRatePerSecond} msg/s for ${settings.latencyDurationMs / 1000} s, the first ${settings.latencyWarmupMs / 1000} s left out; each message carries its send time (performance.now() at send, same process receives). streamgate sends what is due each millisecond as one Publish (no batching delay; the official client's default would add up to 10 ms).`,
      "The official client batches acks for up to 100 ms; with 1000 outstanding that alone would cap one stream at ~10k msg/s whatever the server does, so acks here are flushed after 10 ms or 500 ids.",
      "Durability: nats-server 2.9 syncs its file store to disk every 2 minutes by default, not per message; compare with the streamgate engine's setting before reading the publish ratio.",
      "Client and both servers share 2 noisy cores; the CPU µs/msg details are less sensitive to noise than the rates.",
    );
    for (const problem of streamgateSamples.problems) notes.push(`streamgate: ${problem}`);
    for (const problem of anchorSamples.problems) notes.push(`anchor: ${problem}`);

    return {
      parameters: { ...settings, repetitions: context.repetitions, scale: context.scale },
      figures,
      details: {
        ...Object.fromEntries(
          Object.entries(cpuDetails(streamgateSamples)).map(([key, value]) => [`streamgate ${key}`, value]),
        ),
        ...Object.fromEntries(
          Object.entries(cpuDetails(anchorSamples)).map(([key, value]) => [`JetStream ${key}`, value]),
        ),
        streamgateRuns: streamgateSamples.runs,
        jetstreamRuns: anchorSamples.runs,
      },
      notes,
    };
  },
};
