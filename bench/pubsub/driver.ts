// The interface both sides of the pubsub bench implement (streamgate and its JetStream anchor), plus shared helpers.
import { setTimeout as sleep } from "node:timers/promises";
import type { LatencySummary } from "../lib/stats.js";

/** Workload settings of the pubsub bench; both drivers get the same ones. */
export interface PubsubSettings {
  /** Payload size of every message. */
  messageBytes: number;
  /** Messages per publish-throughput repetition. */
  publishMessages: number;
  /** Messages per Publish request (the official client's default batch: 100 messages …). */
  batchMaxMessages: number;
  /** … or 1 MB, whichever comes first. */
  batchMaxBytes: number;
  /** Publish requests in flight at once on streamgate (× batchMaxMessages = messages in flight). */
  publishRequestsInFlight: number;
  /** Async publishes awaiting their ack at once on JetStream. */
  jetstreamPublishWindow: number;
  /** Backlog size of each consume repetition. */
  backlogMessages: number;
  /** Flow control: unacknowledged messages a consumer may hold (StreamingPull max_outstanding_messages, JetStream max_ack_pending). */
  maxOutstandingMessages: number;
  /** Acknowledge request sent once this many ack ids are pending … */
  ackBatchMaxMessages: number;
  /** … or this long after the first pending one. */
  ackBatchMaxDelayMs: number;
  /** Publish rate of the latency measurement. */
  latencyRatePerSecond: number;
  /** Length of each latency measurement, warm-up included. */
  latencyDurationMs: number;
  /** Further rates measured the same way after the main latency phase (reported without a target). */
  latencyExtraRatesPerSecond: number[];
  /** Length of each of those measurements, warm-up included. */
  latencyExtraDurationMs: number;
  /**
   * How often the latency publisher sends what is due (streamgate: one Publish request per tick).
   * 1 ms = no batching delay; the official client's default would be up to 10 ms.
   */
  latencyPublishIntervalMs: number;
  /** Initial part of each latency measurement left out of the percentiles. */
  latencyWarmupMs: number;
  /** Upper bound of any single measurement; hitting it is reported as "capped". */
  measurementTimeoutMs: number;
}

/** One publish-throughput repetition. */
export interface PublishRun {
  /** Messages acknowledged by the server. */
  messages: number;
  elapsedMs: number;
  /** True if the timeout cut the run short. */
  capped: boolean;
}

/** One consume-with-ack repetition. */
export interface ConsumeRun {
  /** Distinct messages received and acknowledged. */
  messages: number;
  /** Deliveries of an already received message. */
  duplicates: number;
  elapsedMs: number;
  capped: boolean;
}

/** A filled backlog, ready to be consumed once. */
export interface PreparedConsume {
  /** Messages in the backlog. */
  backlog: number;
  /** Consumes and acknowledges the whole backlog, timed. */
  run(): Promise<ConsumeRun>;
  /** Deletes what prepareConsume() created. */
  cleanup(): Promise<void>;
}

/** One fixed-rate latency repetition. */
export interface LatencyRun extends LatencySummary {
  sent: number;
  received: number;
  /** Sent but not received before the drain timeout. */
  missing: number;
  /** Rate actually sent, messages per second. */
  achievedRatePerSecond: number;
}

/** A system under measurement: streamgate (over google.pubsub.v1) or JetStream. */
export interface PubsubDriver {
  /** Name in reports. */
  readonly name: string;
  /** Server process id, for CPU accounting. */
  readonly serverPid: number;
  /** Publishes `settings.publishMessages` durable messages as fast as the window allows. */
  publish(settings: PubsubSettings): Promise<PublishRun>;
  /** Fills a backlog (untimed); the returned handle times consuming and acknowledging all of it. */
  prepareConsume(settings: PubsubSettings): Promise<PreparedConsume>;
  /** Publishes at a fixed rate while consuming; measures publish → receive latency. */
  latency(settings: PubsubSettings): Promise<LatencyRun>;
  /** Releases clients (not the server). */
  close(): Promise<void>;
}

/** A payload of `bytes` bytes with recognizable, non-zero content. */
export function makePayload(bytes: number): Buffer {
  const payload = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) payload[i] = 97 + (i % 26);
  return payload;
}

/**
 * A copy of `base` carrying a `performance.now()` time (default: now) in its first 8 bytes; the same
 * process sends and receives, so clocks agree.
 */
export function stampedPayload(base: Buffer, time = performance.now()): Buffer {
  const payload = Buffer.allocUnsafe(base.length);
  base.copy(payload);
  payload.writeDoubleLE(time, 0);
  return payload;
}

/** Milliseconds since the stamp written by {@link stampedPayload}. */
export function latencyOf(data: Uint8Array): number {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return performance.now() - view.getFloat64(0, true);
}

/**
 * Calls `send(count, dueAt)` so that `ratePerSecond` messages are sent on average over `durationMs`,
 * checking every `intervalMs` (default 1, Node timers' resolution) and catching up after a stall.
 * `dueAt(k)` is when the k-th message of this call fell due (`performance.now()` time): stamping that,
 * not the send time, counts timer granularity, batching and client stalls against latency instead of
 * hiding them (no coordinated omission). Resolves to the number sent.
 */
export async function sendAtFixedRate(
  ratePerSecond: number,
  durationMs: number,
  send: (count: number, dueAt: (k: number) => number) => void,
  intervalMs = 1,
): Promise<number> {
  const start = performance.now();
  const periodMs = 1000 / ratePerSecond;
  let sent = 0;
  for (;;) {
    const elapsed = performance.now() - start;
    if (elapsed >= durationMs) break;
    const due = Math.floor(elapsed / periodMs) - sent;
    if (due > 0) {
      const first = sent;
      send(due, (k) => start + (first + k + 1) * periodMs);
      sent += due;
    }
    await sleep(intervalMs);
  }
  return sent;
}

/** Resolves when `done()` is true, polling every 5 ms, or after `timeoutMs`; resolves to whether it got there. */
export async function waitUntil(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

/** A unique suffix for names of one repetition's topics, streams and subscriptions. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
