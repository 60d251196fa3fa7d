// The "pubsub" benchmark: publish throughput, consume-with-ack throughput and fixed-rate latency, streamgate vs NATS JetStream.
import { type NatsServer, startNatsServer } from "../../test/harness/nats-server.js";
import type { BenchContext, Benchmark } from "../lib/benchmark.js";
import { natsServerVersion } from "../lib/environment.js";
import { type BenchOutcome, type Figure, type JsonValue, makeFigure, type Target } from "../lib/report.js";
import { median, round } from "../lib/stats.js";
import { type StreamgateProcess, startStreamgateProcess, streamgateBinary } from "../lib/streamgate-process.js";
import { type BareRelay, startBareRelay } from "./bare-relay.js";
import type { PubsubSettings } from "./driver.js";
import { JetStreamDriver } from "./jetstream-driver.js";
import { type Contestant, contestant, cpuDetails, measureAll, Phase } from "./measure.js";
import { OfficialClientDriver } from "./official-client-driver.js";
import { PubsubGrpcClient } from "./pubsub-grpc-client.js";
import { StreamgateDriver } from "./streamgate-driver.js";

/** Settings at scale 1 (about 2–3 minutes on 2 cores). */
const JETSTREAM_ENGINE_NAME = "streamgate --engine jetstream";
/** The latency floor: the same client and driver against a bare node:http2 relay (bare-relay.ts). */
const RELAY_NAME = "bare node:http2 relay";

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
  latencyExtraRatesPerSecond: [1_000, 20_000],
  latencyExtraDurationMs: 5_000,
  latencyPublishIntervalMs: 1,
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
    latencyExtraDurationMs: Math.max(3_000, Math.round(settings.latencyExtraDurationMs * scale)),
    latencyWarmupMs: Math.min(settings.latencyWarmupMs, Math.max(500, Math.round(settings.latencyWarmupMs * scale))),
  };
}

/** Builds one figure from two sample lists, rounding samples for the report. */
function compare(
  name: string,
  unit: string,
  higherIsBetter: boolean,
  own: readonly number[],
  anchorName: string,
  anchor: readonly number[],
  target: Target | null,
): Figure {
  const samples = own.map((value) => round(value));
  const anchorSamples = anchor.map((value) => round(value));
  return makeFigure({ name, unit, higherIsBetter, samples, anchorName, anchorSamples, target, median });
}

function describeSetup(settings: PubsubSettings): string[] {
  const s = settings;
  return [
    "Both servers run as child processes (streamgate: `node bin/streamgate.mjs serve`, embedded SQLite engine; `nats-server -js`, file storage); the clients run in the bench process.",
    "streamgate is driven by a raw @grpc/grpc-js client over one h2c channel (google/pubsub/v1/pubsub.proto via @grpc/proto-loader); JetStream by @nats-io/jetstream over one connection.",
    `Publish: streamgate gets Publish requests of ${s.batchMaxMessages} messages (the official client's batch), ${s.publishRequestsInFlight} in flight (${s.batchMaxMessages * s.publishRequestsInFlight} messages); JetStream gets ${s.jetstreamPublishWindow} publishes awaiting their PubAck. A message counts once the server acknowledged it.`,
    "JetStream is measured publishing two ways: the official client's `js.publish()` (a promise and a timer per message; its client CPU is the limit, see details) and raw (core publish with a reply subject per message under one wildcard subscription, what Go's PublishAsync does), which shows the server's capacity. Both rows are reported; the raw one is the harder target. The latency phase is run both ways too.",
    `Consume: streamgate via one StreamingPull (max_outstanding_messages ${s.maxOutstandingMessages}) with acks in unary Acknowledge calls of up to ${s.ackBatchMaxMessages} ids or after ${s.ackBatchMaxDelayMs} ms; JetStream via a durable pull consumer (explicit ack, max_ack_pending ${s.maxOutstandingMessages}) with consume() and ack() per message. Timing ends when every ack is confirmed (Acknowledge answered / a NATS flush round trip).`,
    "The official Pub/Sub client batches acks for up to 100 ms; with 1000 outstanding that alone would cap one stream near 10k msg/s whatever the server does, so acks here go out after 10 ms or 500 ids.",
    `Latency at ${s.latencyExtraRatesPerSecond.join(" and ")} msg/s: measured the same way (${s.latencyExtraDurationMs / 1000} s each) after the main latency phase, streamgate and the @nats-io anchor only, no target.`,
    `Latency: ${s.latencyRatePerSecond} msg/s for ${s.latencyDurationMs / 1000} s, the first ${s.latencyWarmupMs / 1000} s left out; each message carries the time it fell due on the fixed schedule (performance.now(); the same process receives), so timer granularity and client stalls count against latency rather than being hidden. Every ${s.latencyPublishIntervalMs} ms streamgate gets what is due as one Publish (the official client's default batching would add up to 10 ms), JetStream one publish per message.`,
    "Rows 'via @google-cloud/pubsub defaults' are for information: the official client as an application would use it (publisher batching 100 messages / 10 ms with 1000 publishMessage() calls pending; subscriber with 5 streams, 1000 outstanding, acks batched up to 100 ms).",
    "Durability is comparable: streamgate's embedded engine by default runs SQLite in WAL mode with synchronous=NORMAL (no fsync per commit; an acknowledged publish survives kill -9, not necessarily power loss), and nats-server 2.9 syncs its file store every 2 minutes by default.",
    "Clients and both servers share 2 noisy cores; CPU µs per message (details) is steadier than the rates.",
  ];
}

/** The "pubsub" benchmark. */
export const pubsubBenchmark: Benchmark = {
  name: "pubsub",
  title:
    "Pub/Sub: publish throughput, consume-with-ack throughput, publish→receive latency — streamgate vs NATS JetStream",
  maxDurationMs: 10 * 60_000,
  async run(context: BenchContext): Promise<BenchOutcome> {
    const settings = scaleSettings(DEFAULT_PUBSUB_SETTINGS, context.scale);
    const version = natsServerVersion()?.replace(/^nats-server:\s*v?/, "") ?? "?";
    const anchorName = `JetStream ${version} @nats-io client`;
    const rawAnchorName = `JetStream ${version} raw publish`;
    const notes: string[] = [];
    let nats: NatsServer | undefined;
    let streamgate: StreamgateProcess | undefined;
    const contestants: Contestant[] = [];
    let own: Contestant | undefined;
    let anchor: Contestant | undefined;
    let rawAnchor: Contestant | undefined;
    let official: Contestant | undefined;
    // streamgate --engine jetstream on the anchor's nats-server: the overhead streamgate adds over raw JetStream.
    let onJetStream: Contestant | undefined;
    let streamgateJetStream: StreamgateProcess | undefined;
    let relay: BareRelay | undefined;
    let floor: Contestant | undefined;
    try {
      context.log("  starting nats-server -js and streamgate (child processes)");
      nats = await startNatsServer({ jetstream: true });
      const jetStreamDriver = await JetStreamDriver.connect(nats.url, nats.pid, anchorName);
      anchor = contestant(jetStreamDriver);
      rawAnchor = contestant(jetStreamDriver.withPublishMode("raw", rawAnchorName), [Phase.Publish, Phase.Latency]);
      // The extra latency rates: streamgate and the @nats-io anchor only (the raw anchor's latency matches it).
      anchor.extraLatency = true;
      if (context.anchorOnly || streamgateBinary(context.serverRoot) === null) {
        // Checks the anchor and the report plumbing without the server; the figures then show "–" and fail.
        context.log("  *** measuring the anchor only ***");
        notes.push("Only the anchor was measured (--anchor-only or bin/streamgate.mjs missing).");
      } else {
        const nodeArgs =
          context.cpuProfileDir === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", context.cpuProfileDir];
        streamgate = await startStreamgateProcess({ repoRoot: context.serverRoot, nodeArgs });
        const client = new PubsubGrpcClient(streamgate.target, context.repoRoot);
        own = contestant(new StreamgateDriver(client, streamgate.pid));
        own.extraLatency = true;
        official = contestant(new OfficialClientDriver(streamgate.target, streamgate.pid), [
          Phase.Publish,
          Phase.Consume,
        ]);
        streamgateJetStream = await startStreamgateProcess({
          repoRoot: context.serverRoot,
          args: ["--engine", "jetstream", "--nats-url", nats.url],
        });
        relay = await startBareRelay();
        floor = contestant(
          new StreamgateDriver(new PubsubGrpcClient(relay.target, context.repoRoot), relay.pid, RELAY_NAME),
          [Phase.Latency],
        );
        floor.extraLatency = true;
        onJetStream = contestant(
          new StreamgateDriver(
            new PubsubGrpcClient(streamgateJetStream.target, context.repoRoot),
            streamgateJetStream.pid,
            JETSTREAM_ENGINE_NAME,
          ),
          [Phase.Publish, Phase.Consume],
        );
      }
      contestants.push(
        ...(own === undefined ? [] : [own]),
        anchor,
        rawAnchor,
        ...(official === undefined ? [] : [official]),
        ...(onJetStream === undefined ? [] : [onJetStream]),
        ...(floor === undefined ? [] : [floor]),
      );
      await measureAll(contestants, settings, context);
    } finally {
      for (const entry of contestants) await entry.driver.close().catch(() => undefined);
      await streamgate?.stop();
      await streamgateJetStream?.stop();
      await relay?.stop();
      await nats?.stop();
    }

    const mine = own?.samples ?? contestant(anchor.driver).samples;
    const rate = `${settings.latencyRatePerSecond.toLocaleString("en-US")} msg/s`;
    const backlog = settings.backlogMessages.toLocaleString("en-US");
    const atLeastAnchor: Target = { kind: "ratioAtLeast", ratio: 1 };
    const figures = [
      compare(
        `Publish, ${settings.messageBytes} B, batched`,
        "msg/s",
        true,
        mine.publishRate,
        anchorName,
        anchor.samples.publishRate,
        atLeastAnchor,
      ),
      compare(
        `Publish, ${settings.messageBytes} B, batched`,
        "msg/s",
        true,
        mine.publishRate,
        rawAnchorName,
        rawAnchor.samples.publishRate,
        atLeastAnchor,
      ),
      compare(
        `Consume with ack, backlog ${backlog}`,
        "msg/s",
        true,
        mine.consumeRate,
        anchorName,
        anchor.samples.consumeRate,
        atLeastAnchor,
      ),
      compare(`Latency p50 @ ${rate}`, "ms", false, mine.p50Ms, anchorName, anchor.samples.p50Ms, null),
      compare(`Latency p99 @ ${rate}`, "ms", false, mine.p99Ms, anchorName, anchor.samples.p99Ms, {
        kind: "valueBelow",
        value: 10,
      }),
    ];
    figures.push(
      compare(`Latency p50 @ ${rate}`, "ms", false, mine.p50Ms, rawAnchorName, rawAnchor.samples.p50Ms, null),
      compare(`Latency p99 @ ${rate}`, "ms", false, mine.p99Ms, rawAnchorName, rawAnchor.samples.p99Ms, null),
    );
    if (floor !== undefined) {
      // The floor: what the client, Node's HTTP/2 and the machine cost a round trip (no target).
      figures.push(
        compare(`Latency p50 @ ${rate}`, "ms", false, mine.p50Ms, RELAY_NAME, floor.samples.p50Ms, null),
        compare(`Latency p99 @ ${rate}`, "ms", false, mine.p99Ms, RELAY_NAME, floor.samples.p99Ms, null),
      );
      for (const extra of settings.latencyExtraRatesPerSecond) {
        const label = `${extra.toLocaleString("en-US")} msg/s`;
        const own = mine.extraLatency[extra] ?? { p50Ms: [], p99Ms: [] };
        const theirs = floor.samples.extraLatency[extra] ?? { p50Ms: [], p99Ms: [] };
        figures.push(compare(`Latency p99 @ ${label}`, "ms", false, own.p99Ms, RELAY_NAME, theirs.p99Ms, null));
      }
      notes.push(
        `${RELAY_NAME}: a bare node:http2 program in its own process (bench/pubsub/bare-relay.ts) that writes each published message to the open StreamingPull streams in the same turn (no storage, leases or flow control), driven by the same grpc-js client and driver as streamgate: the latency floor of this client, Node's HTTP/2 and this machine.`,
      );
    }
    for (const extra of settings.latencyExtraRatesPerSecond) {
      const label = `${extra.toLocaleString("en-US")} msg/s`;
      const own = mine.extraLatency[extra] ?? { p50Ms: [], p99Ms: [] };
      const theirs = anchor.samples.extraLatency[extra] ?? { p50Ms: [], p99Ms: [] };
      figures.push(
        compare(`Latency p50 @ ${label}`, "ms", false, own.p50Ms, anchorName, theirs.p50Ms, null),
        compare(`Latency p99 @ ${label}`, "ms", false, own.p99Ms, anchorName, theirs.p99Ms, null),
      );
    }
    if (official !== undefined) {
      const client = "via @google-cloud/pubsub defaults";
      const { publishRate, consumeRate } = official.samples;
      figures.push(
        compare(`Publish ${client}`, "msg/s", true, publishRate, anchorName, anchor.samples.publishRate, null),
        compare(`Consume with ack ${client}`, "msg/s", true, consumeRate, anchorName, anchor.samples.consumeRate, null),
      );
    }
    if (onJetStream !== undefined) {
      // Target: at most 1.5x raw JetStream's per-message cost, i.e. at least 0.67x its throughput.
      const overhead: Target = { kind: "ratioAtLeast", ratio: 0.67 };
      const { publishRate, consumeRate } = onJetStream.samples;
      figures.push(
        compare(
          `Publish, ${settings.messageBytes} B, batched, ${JETSTREAM_ENGINE_NAME}`,
          "msg/s",
          true,
          publishRate,
          anchorName,
          anchor.samples.publishRate,
          overhead,
        ),
        compare(
          `Consume with ack, backlog ${backlog}, ${JETSTREAM_ENGINE_NAME}`,
          "msg/s",
          true,
          consumeRate,
          anchorName,
          anchor.samples.consumeRate,
          overhead,
        ),
      );
      notes.push(
        `${JETSTREAM_ENGINE_NAME}: a second streamgate child process (\`serve --engine jetstream --nats-url\` the anchor's nats-server, R1 file streams), driven by the same raw grpc-js client; its target is ≥ 0.67× the anchor's throughput (≤ 1.5× raw JetStream's per-message cost).`,
      );
    }
    notes.push(...describeSetup(settings));
    for (const entry of contestants)
      for (const problem of entry.samples.problems) notes.push(`${entry.driver.name}: ${problem}`);

    const details: Record<string, JsonValue> = {};
    for (const entry of contestants) Object.assign(details, cpuDetails(entry.driver.name, entry.samples));
    for (const entry of contestants) details[`${entry.driver.name}: runs`] = entry.samples.runs;
    return {
      parameters: {
        ...settings,
        repetitions: context.repetitions,
        scale: context.scale,
        serverRoot: context.serverRoot === context.repoRoot ? "this checkout" : context.serverRoot,
      },
      figures,
      details,
      notes,
    };
  },
};
