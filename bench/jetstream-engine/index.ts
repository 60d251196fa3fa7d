// The "jetstream-engine" benchmark: publish and consume-with-ack through `serve --engine jetstream` next to raw JetStream on the same nats-server.
import { type NatsServer, startNatsServer } from "../../test/harness/nats-server.js";
import type { BenchContext, Benchmark } from "../lib/benchmark.js";
import { natsServerVersion } from "../lib/environment.js";
import { processCpuMs } from "../lib/process-cpu.js";
import { type BenchOutcome, type JsonValue, makeFigure, type Target } from "../lib/report.js";
import { median, round } from "../lib/stats.js";
import { type StreamgateProcess, startStreamgateProcess, streamgateBinary } from "../lib/streamgate-process.js";
import type { PreparedConsume, PublishRun, PubsubDriver, PubsubSettings } from "../pubsub/driver.js";
import { DEFAULT_PUBSUB_SETTINGS, scaleSettings } from "../pubsub/index.js";
import { JetStreamDriver } from "../pubsub/jetstream-driver.js";
import { contestant, cpuDetails, measureAll, Phase } from "../pubsub/measure.js";
import { PubsubGrpcClient } from "../pubsub/pubsub-grpc-client.js";
import { StreamgateDriver } from "../pubsub/streamgate-driver.js";

const ENGINE_NAME = "streamgate --engine jetstream";

/**
 * A driver that also counts the CPU another process (nats-server) spends during its publish and
 * consume runs: streamgate on JetStream costs nats-server work too, which the ratio to the anchor hides.
 */
class PeerCpuDriver implements PubsubDriver {
  readonly peerCpuUsPerMessage: Record<"publish" | "consume", number[]> = { publish: [], consume: [] };

  constructor(
    private readonly inner: PubsubDriver,
    private readonly peerPid: number,
  ) {}

  get name(): string {
    return this.inner.name;
  }

  get serverPid(): number {
    return this.inner.serverPid;
  }

  private async counted<T extends { messages: number }>(
    phase: "publish" | "consume",
    section: () => Promise<T>,
  ): Promise<T> {
    const before = processCpuMs(this.peerPid);
    const result = await section();
    const after = processCpuMs(this.peerPid);
    if (before !== null && after !== null && result.messages > 0) {
      this.peerCpuUsPerMessage[phase].push(((after - before) * 1000) / result.messages);
    }
    return result;
  }

  publish(settings: PubsubSettings): Promise<PublishRun> {
    return this.counted("publish", () => this.inner.publish(settings));
  }

  async prepareConsume(settings: PubsubSettings): Promise<PreparedConsume> {
    const prepared = await this.inner.prepareConsume(settings);
    return { ...prepared, run: () => this.counted("consume", () => prepared.run()) };
  }

  latency(settings: PubsubSettings) {
    return this.inner.latency(settings);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** The "jetstream-engine" benchmark (issue 14's target: each ≥ 0.67× the anchor). */
export const jetstreamEngineBenchmark: Benchmark = {
  name: "jetstream-engine",
  title: "JetStream engine: publish and consume-with-ack through streamgate vs raw JetStream on the same nats-server",
  maxDurationMs: 6 * 60_000,
  async run(context: BenchContext): Promise<BenchOutcome> {
    const settings = scaleSettings(DEFAULT_PUBSUB_SETTINGS, context.scale);
    const version = natsServerVersion()?.replace(/^nats-server:\s*v?/, "") ?? "?";
    const anchorName = `JetStream ${version} @nats-io client`;
    const rawAnchorName = `JetStream ${version} raw publish`;
    let nats: NatsServer | undefined;
    let server: StreamgateProcess | undefined;
    const drivers: PubsubDriver[] = [];
    try {
      context.log("  starting nats-server -js and streamgate --engine jetstream (child processes)");
      nats = await startNatsServer({ jetstream: true });
      const jetStreamDriver = await JetStreamDriver.connect(nats.url, nats.pid, anchorName);
      drivers.push(jetStreamDriver);
      const anchor = contestant(jetStreamDriver, [Phase.Publish, Phase.Consume]);
      const rawAnchor = contestant(jetStreamDriver.withPublishMode("raw", rawAnchorName), [Phase.Publish]);
      if (context.anchorOnly || streamgateBinary(context.serverRoot) === null) {
        throw new Error("jetstream-engine needs bin/streamgate.mjs (and measures nothing with --anchor-only)");
      }
      const nodeArgs =
        context.cpuProfileDir === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", context.cpuProfileDir];
      server = await startStreamgateProcess({
        repoRoot: context.serverRoot,
        args: ["--engine", "jetstream", "--nats-url", nats.url],
        nodeArgs,
      });
      const engineDriver = new PeerCpuDriver(
        new StreamgateDriver(new PubsubGrpcClient(server.target, context.repoRoot), server.pid, ENGINE_NAME),
        nats.pid,
      );
      drivers.push(engineDriver);
      const engine = contestant(engineDriver, [Phase.Publish, Phase.Consume]);
      await measureAll([engine, anchor, rawAnchor], settings, context);

      const overhead: Target = { kind: "ratioAtLeast", ratio: 0.67 };
      const backlog = settings.backlogMessages.toLocaleString("en-US");
      const figure = (name: string, own: number[], anchorLabel: string, theirs: number[], target: Target | null) =>
        makeFigure({
          name,
          unit: "msg/s",
          higherIsBetter: true,
          samples: own.map((value) => round(value)),
          anchorName: anchorLabel,
          anchorSamples: theirs.map((value) => round(value)),
          target,
          median,
        });
      const figures = [
        figure(
          `Publish, ${settings.messageBytes} B, batched, ${ENGINE_NAME}`,
          engine.samples.publishRate,
          anchorName,
          anchor.samples.publishRate,
          overhead,
        ),
        figure(
          `Publish, ${settings.messageBytes} B, batched, ${ENGINE_NAME}`,
          engine.samples.publishRate,
          rawAnchorName,
          rawAnchor.samples.publishRate,
          null,
        ),
        figure(
          `Consume with ack, backlog ${backlog}, ${ENGINE_NAME}`,
          engine.samples.consumeRate,
          anchorName,
          anchor.samples.consumeRate,
          overhead,
        ),
      ];
      const details: Record<string, JsonValue> = {
        ...cpuDetails(ENGINE_NAME, engine.samples),
        ...cpuDetails(anchorName, anchor.samples),
        ...cpuDetails(rawAnchorName, rawAnchor.samples),
      };
      for (const phase of ["publish", "consume"] as const) {
        const samples = engineDriver.peerCpuUsPerMessage[phase];
        if (samples.length > 0) details[`${ENGINE_NAME}: nats-server CPU µs/msg, ${phase}`] = round(median(samples), 1);
      }
      details[`${ENGINE_NAME}: runs`] = engine.samples.runs;
      details[`${anchorName}: runs`] = anchor.samples.runs;
      return {
        parameters: { ...settings, repetitions: context.repetitions, scale: context.scale },
        figures,
        details,
        notes: [
          "One nats-server -js (file storage) and one `serve --engine jetstream --nats-url` child process; clients in the bench process (the pubsub bench's drivers: raw grpc-js for streamgate, @nats-io for the anchor).",
          "Target (issue 14): each ≥ 0.67× the @nats-io client anchor. The raw-publish row shows the server's capacity, for information.",
          "Server CPU µs/msg (details) is the streamgate process alone; nats-server's share during the streamgate runs is listed beside it. Clients and servers share 2 loaded cores: read the CPU per message before the rates.",
        ],
      };
    } finally {
      for (const driver of drivers) await driver.close().catch(() => undefined);
      await server?.stop();
      await nats?.stop();
    }
  },
};
