// Runs the pubsub bench's measurements over its contestants, interleaved per repetition, and collects samples.
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { BenchContext } from "../lib/benchmark.js";
import { measureCpu, runQueueWaitMs } from "../lib/process-cpu.js";
import type { JsonValue } from "../lib/report.js";
import { median, round } from "../lib/stats.js";
import type { PubsubDriver, PubsubSettings } from "./driver.js";

/** The three measurements of the pubsub bench. */
export const Phase = {
  /** Batched publish throughput. */
  Publish: "publish",
  /** Consume-with-ack throughput from a backlog. */
  Consume: "consume",
  /** Publish → receive latency at a fixed rate. */
  Latency: "latency",
} as const;
/** One of {@link Phase}. */
export type Phase = (typeof Phase)[keyof typeof Phase];

const PHASES: readonly Phase[] = [Phase.Publish, Phase.Consume, Phase.Latency];

/** Per-repetition measurements of one contestant. */
export interface Samples {
  /** Messages per second, per repetition. */
  publishRate: number[];
  consumeRate: number[];
  p50Ms: number[];
  p99Ms: number[];
  /** p50 / p99 per repetition at each extra latency rate (msg/s). */
  extraLatency: Record<number, { p50Ms: number[]; p99Ms: number[] }>;
  /** Share of each latency repetition's wall time the server's main thread waited for a CPU (%). */
  serverRunQueueWaitPercent: number[];
  /** p99 of the client process's event-loop delay during each latency repetition. */
  clientLoopDelayP99Ms: number[];
  /** Server and client CPU microseconds per message, per phase and repetition. */
  serverCpuUsPerMessage: Record<Phase, number[]>;
  clientCpuUsPerMessage: Record<Phase, number[]>;
  /** Raw results of every repetition, for the JSON report. */
  runs: JsonValue[];
  /** Capped runs and lost messages, for the notes. */
  problems: string[];
}

/** A driver taking part in some phases. */
export interface Contestant {
  driver: PubsubDriver;
  phases: readonly Phase[];
  /** Also measured at the extra latency rates. */
  extraLatency?: boolean;
  samples: Samples;
}

/** A contestant with empty samples. */
export function contestant(driver: PubsubDriver, phases: readonly Phase[] = PHASES): Contestant {
  return {
    driver,
    phases,
    samples: {
      publishRate: [],
      consumeRate: [],
      p50Ms: [],
      p99Ms: [],
      extraLatency: {},
      serverRunQueueWaitPercent: [],
      clientLoopDelayP99Ms: [],
      serverCpuUsPerMessage: { publish: [], consume: [], latency: [] },
      clientCpuUsPerMessage: { publish: [], consume: [], latency: [] },
      runs: [],
      problems: [],
    },
  };
}

function recordCpu(
  samples: Samples,
  phase: Phase,
  messages: number,
  serverCpuMs: number | null,
  clientCpuMs: number,
): void {
  if (messages <= 0) return;
  if (serverCpuMs !== null) samples.serverCpuUsPerMessage[phase].push((serverCpuMs * 1000) / messages);
  samples.clientCpuUsPerMessage[phase].push((clientCpuMs * 1000) / messages);
}

async function measureOnce(
  phase: Phase,
  repetition: number,
  entry: Contestant,
  settings: PubsubSettings,
  context: BenchContext,
): Promise<void> {
  const { driver, samples } = entry;
  const label = `  ${phase.padEnd(8)} #${repetition + 1} ${driver.name}:`;
  if (phase === Phase.Publish) {
    const { result, serverCpuMs, clientCpuMs } = await measureCpu(driver.serverPid, () => driver.publish(settings));
    const rate = (result.messages * 1000) / result.elapsedMs;
    samples.publishRate.push(rate);
    recordCpu(samples, phase, result.messages, serverCpuMs, clientCpuMs);
    samples.runs.push({ phase, repetition, ...result, rate: round(rate) });
    if (result.capped) samples.problems.push(`publish #${repetition + 1} was capped at ${result.messages} messages`);
    context.log(`${label} ${Math.round(rate)} msg/s`);
  } else if (phase === Phase.Consume) {
    const prepared = await driver.prepareConsume(settings);
    const measured = await measureCpu(driver.serverPid, () => prepared.run()).finally(() => prepared.cleanup());
    const { result, serverCpuMs, clientCpuMs } = measured;
    const rate = (result.messages * 1000) / result.elapsedMs;
    samples.consumeRate.push(rate);
    recordCpu(samples, phase, result.messages, serverCpuMs, clientCpuMs);
    samples.runs.push({ phase, repetition, backlog: prepared.backlog, ...result, rate: round(rate) });
    if (result.capped) samples.problems.push(`consume #${repetition + 1} was capped at ${result.messages} messages`);
    context.log(`${label} ${Math.round(rate)} msg/s (${result.duplicates} duplicates)`);
  } else {
    // The client's own event-loop delay bounds what it can observe: if its p99 is near the measured
    // p99, the client process (or the machine) is the limit, not the server.
    const loopDelay = monitorEventLoopDelay({ resolution: 1 });
    loopDelay.enable();
    const waitedBefore = runQueueWaitMs(driver.serverPid);
    const startedAt = performance.now();
    const measured = await measureCpu(driver.serverPid, () => driver.latency(settings)).finally(() =>
      loopDelay.disable(),
    );
    const waitedAfter = runQueueWaitMs(driver.serverPid);
    const { result, serverCpuMs, clientCpuMs } = measured;
    const clientLoopDelayP99Ms = round(loopDelay.percentile(99) / 1e6);
    const serverRunQueueWaitPercent =
      waitedBefore === null || waitedAfter === null
        ? null
        : round(((waitedAfter - waitedBefore) * 100) / (performance.now() - startedAt), 1);
    if (serverRunQueueWaitPercent !== null) samples.serverRunQueueWaitPercent.push(serverRunQueueWaitPercent);
    samples.p50Ms.push(result.p50Ms);
    samples.p99Ms.push(result.p99Ms);
    samples.clientLoopDelayP99Ms.push(clientLoopDelayP99Ms);
    recordCpu(samples, phase, result.received, serverCpuMs, clientCpuMs);
    samples.runs.push({ phase, repetition, ...result, clientLoopDelayP99Ms, serverRunQueueWaitPercent });
    if (result.missing > 0)
      samples.problems.push(`latency #${repetition + 1}: ${result.missing} messages not received`);
    context.log(
      `${label} p50 ${round(result.p50Ms)} ms, p99 ${round(result.p99Ms)} ms, max ${round(result.maxMs)} ms ` +
        `at ${Math.round(result.achievedRatePerSecond)} msg/s (client event-loop delay p99 ${clientLoopDelayP99Ms} ms, ` +
        `server main thread waiting for a CPU ${serverRunQueueWaitPercent ?? "?"}% of the time)`,
    );
  }
}

/**
 * Warms every contestant up with a short publish, then runs each phase `context.repetitions` times.
 * Within a repetition the contestants take turns, and the order flips every repetition, so drift in
 * the machine's load hits all of them alike.
 */
export async function measureAll(
  contestants: readonly Contestant[],
  settings: PubsubSettings,
  context: BenchContext,
): Promise<void> {
  const warmup = { ...settings, publishMessages: Math.min(5_000, settings.publishMessages) };
  for (const entry of contestants) {
    context.log(`  warm-up  ${entry.driver.name}`);
    await entry.driver.publish(warmup);
  }
  for (const phase of PHASES) {
    const taking = contestants.filter((entry) => entry.phases.includes(phase));
    for (let repetition = 0; repetition < context.repetitions; repetition++) {
      const order = repetition % 2 === 0 ? taking : [...taking].reverse();
      for (const entry of order) await measureOnce(phase, repetition, entry, settings, context);
    }
  }
  const extra = contestants.filter((entry) => entry.extraLatency === true && entry.phases.includes(Phase.Latency));
  for (const rate of settings.latencyExtraRatesPerSecond) {
    const atRate = { ...settings, latencyRatePerSecond: rate, latencyDurationMs: settings.latencyExtraDurationMs };
    for (let repetition = 0; repetition < context.repetitions; repetition++) {
      const order = repetition % 2 === 0 ? extra : [...extra].reverse();
      for (const entry of order) await measureExtraLatency(rate, repetition, entry, atRate, context);
    }
  }
}

/** One latency run at an extra rate: its p50/p99 only (CPU figures stay those of the main rate). */
async function measureExtraLatency(
  rate: number,
  repetition: number,
  entry: Contestant,
  settings: PubsubSettings,
  context: BenchContext,
): Promise<void> {
  const { driver, samples } = entry;
  const result = await driver.latency(settings);
  const slot = samples.extraLatency[rate] ?? { p50Ms: [], p99Ms: [] };
  samples.extraLatency[rate] = slot;
  slot.p50Ms.push(result.p50Ms);
  slot.p99Ms.push(result.p99Ms);
  samples.runs.push({ phase: `latency@${rate}`, repetition, ...result });
  if (result.missing > 0)
    samples.problems.push(`latency @${rate} #${repetition + 1}: ${result.missing} messages not received`);
  context.log(
    `  latency@${rate} #${repetition + 1} ${driver.name}: p50 ${round(result.p50Ms)} ms, p99 ${round(result.p99Ms)} ms ` +
      `at ${Math.round(result.achievedRatePerSecond)} msg/s`,
  );
}

/** Median CPU per message per phase, for the report's details. */
export function cpuDetails(name: string, samples: Samples): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  for (const phase of PHASES) {
    if (samples.clientCpuUsPerMessage[phase].length === 0) continue;
    out[`${name}: server CPU µs/msg, ${phase}`] = round(median(samples.serverCpuUsPerMessage[phase]), 1);
    out[`${name}: client CPU µs/msg, ${phase}`] = round(median(samples.clientCpuUsPerMessage[phase]), 1);
  }
  if (samples.serverRunQueueWaitPercent.length > 0) {
    out[`${name}: server main thread runnable but waiting for a CPU during latency, % of the time`] = round(
      median(samples.serverRunQueueWaitPercent),
      1,
    );
  }
  if (samples.clientLoopDelayP99Ms.length > 0) {
    out[`${name}: client event-loop delay p99 during latency, ms`] = round(median(samples.clientLoopDelayP99Ms));
  }
  return out;
}
