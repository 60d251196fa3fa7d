// The "ordered" benchmark: consume-with-ack throughput of ordering keys (1 key, 100 keys) with the official client's defaults.
import { PubSub } from "@google-cloud/pubsub";
import { type NatsServer, startNatsServer } from "../../test/harness/nats-server.js";
import type { BenchContext, Benchmark } from "../lib/benchmark.js";
import { type BenchOutcome, type Figure, type JsonValue, makeFigure, type Target } from "../lib/report.js";
import { median, round } from "../lib/stats.js";
import { type StreamgateProcess, startStreamgateProcess } from "../lib/streamgate-process.js";
import { makePayload, uniqueName, waitUntil } from "../pubsub/driver.js";

/** Settings at scale 1. */
export interface OrderedSettings {
  /** Messages in the backlog each run consumes. */
  messages: number;
  messageBytes: number;
  /** How long one consume may take before it counts as capped. */
  measurementTimeoutMs: number;
}

const DEFAULT_SETTINGS: OrderedSettings = { messages: 10_000, messageBytes: 256, measurementTimeoutMs: 120_000 };

/** The workloads: one key, 100 keys, and the anchor: the same backlog without ordering. */
const CASES = [
  { name: "1 key", keys: 1, ordered: true },
  { name: "100 keys", keys: 100, ordered: true },
  { name: "no ordering", keys: 0, ordered: false },
] as const;

type CaseName = (typeof CASES)[number]["name"];

/** Issue 13's floor for one ordering key with the official client's default settings. */
const ONE_KEY_TARGET: Target = { kind: "valueAtLeast", value: 1_000 };

interface ConsumeSample {
  rate: number;
  messages: number;
  outOfOrder: number;
  capped: boolean;
}

/**
 * Publishes `settings.messages` messages (round-robin over `keys` ordering keys, or none) and then
 * consumes them with a default `@google-cloud/pubsub` subscriber (5 streams, 1000 outstanding, acks
 * batched up to 100 ms), acking each; the rate is messages over the time until the last was seen
 * and every ack flushed. Counts deliveries that arrive out of order for their key.
 */
async function consumeOnce(
  pubsub: PubSub,
  settings: OrderedSettings,
  keys: number,
  ordered: boolean,
): Promise<ConsumeSample> {
  const name = uniqueName("ordered");
  const [created] = await pubsub.createTopic(name);
  const topic = pubsub.topic(created.name, { messageOrdering: ordered });
  try {
    const [subscription] = await topic.createSubscription(name, {
      enableMessageOrdering: ordered,
      ackDeadlineSeconds: 60,
    });
    const payload = makePayload(settings.messageBytes);
    const publishes: Promise<string>[] = [];
    for (let index = 0; index < settings.messages; index++) {
      const data = Buffer.concat([Buffer.from(`${index}:`), payload]);
      publishes.push(topic.publishMessage(ordered ? { data, orderingKey: `key-${index % keys}` } : { data }));
    }
    await Promise.all(publishes);

    const seen = new Set<number>();
    const lastByKey = new Map<string, number>();
    let outOfOrder = 0;
    const start = performance.now();
    subscription.on("message", (message: { data: Buffer; orderingKey?: string; ack(): void }) => {
      const index = Number.parseInt(message.data.subarray(0, 12).toString("latin1"), 10);
      const key = message.orderingKey ?? "";
      if (ordered && index <= (lastByKey.get(key) ?? -1) && !seen.has(index)) outOfOrder++;
      lastByKey.set(key, index);
      seen.add(index);
      message.ack();
    });
    subscription.on("error", () => {
      // shows as messages missing (capped)
    });
    const complete = await waitUntil(() => seen.size >= settings.messages, settings.measurementTimeoutMs);
    await subscription.close(); // flushes the queued acks
    const elapsedMs = performance.now() - start;
    await subscription.delete().catch(() => undefined);
    return { rate: (seen.size * 1000) / elapsedMs, messages: seen.size, outOfOrder, capped: !complete };
  } finally {
    await topic.delete().catch(() => undefined);
  }
}

/** The "ordered" benchmark. */
export const orderedBenchmark: Benchmark = {
  name: "ordered",
  title: "Ordering keys: consume-with-ack throughput of 1 key and 100 keys with @google-cloud/pubsub defaults",
  maxDurationMs: 15 * 60_000,
  async run(context: BenchContext): Promise<BenchOutcome> {
    const settings: OrderedSettings = {
      ...DEFAULT_SETTINGS,
      messages: Math.max(1_000, Math.round((DEFAULT_SETTINGS.messages * context.scale) / 100) * 100),
    };
    process.env.METADATA_SERVER_DETECTION ??= "none";
    const engines: { label: string; args: string[] }[] = [{ label: "embedded", args: [] }];
    let nats: NatsServer | undefined;
    const servers: StreamgateProcess[] = [];
    const samples = new Map<string, ConsumeSample[]>();
    const notes: string[] = [];
    try {
      context.log("  starting nats-server -js and two streamgate servers (embedded, jetstream)");
      nats = await startNatsServer({ jetstream: true });
      engines.push({ label: "jetstream", args: ["--engine", "jetstream", "--nats-url", nats.url] });
      for (const engine of engines) {
        const server = await startStreamgateProcess({ repoRoot: context.serverRoot, args: engine.args });
        servers.push(server);
        const pubsub = new PubSub({ projectId: "bench", apiEndpoint: server.target, emulatorMode: true });
        try {
          for (let repetition = 0; repetition < context.repetitions; repetition++) {
            // Interleaved, so the anchor and the figures share the machine's moments of load.
            for (const workload of CASES) {
              const sample = await consumeOnce(pubsub, settings, workload.keys, workload.ordered);
              context.log(
                `  ${engine.label} ${workload.name} #${repetition + 1}: ${round(sample.rate)} msg/s` +
                  `${sample.capped ? " (capped)" : ""}${sample.outOfOrder > 0 ? `, ${sample.outOfOrder} out of order` : ""}`,
              );
              const key = `${engine.label}: ${workload.name}`;
              samples.set(key, [...(samples.get(key) ?? []), sample]);
            }
          }
        } finally {
          await pubsub.close();
        }
      }
    } finally {
      for (const server of servers) await server.stop();
      await nats?.stop();
    }

    const rates = (key: string) => (samples.get(key) ?? []).map((sample) => round(sample.rate));
    const figures: Figure[] = [];
    for (const engine of engines) {
      const anchorKey = `${engine.label}: no ordering`;
      const anchorName = `the same client and server without ordering keys (${engine.label})`;
      for (const name of ["1 key", "100 keys"] as CaseName[]) {
        const key = `${engine.label}: ${name}`;
        figures.push(
          makeFigure({
            name: `Ordered consume with ack, ${name}, ${engine.label} engine`,
            unit: "msg/s",
            higherIsBetter: true,
            samples: rates(key),
            anchorName,
            anchorSamples: rates(anchorKey),
            target: name === "1 key" ? ONE_KEY_TARGET : null,
            median,
          }),
        );
      }
    }
    const details: Record<string, JsonValue> = {};
    for (const [key, list] of samples) {
      details[`${key}: runs`] = list.map((sample) => ({
        rate: round(sample.rate),
        messages: sample.messages,
        outOfOrder: sample.outOfOrder,
        capped: sample.capped,
      }));
      const disorder = list.reduce((sum, sample) => sum + sample.outOfOrder, 0);
      if (disorder > 0) notes.push(`${key}: ${disorder} deliveries arrived out of order for their key.`);
      if (list.some((sample) => sample.capped)) notes.push(`${key}: a run hit the time limit (capped).`);
    }
    notes.push(
      `Each run publishes ${settings.messages.toLocaleString("en-US")} messages of ${settings.messageBytes} B with the official client (messageOrdering publisher for the ordered cases; keys round-robin), then times a default subscriber (5 streams, 1000 outstanding, acks batched up to 100 ms) from open until every message was seen and close() flushed the acks.`,
      "The anchor is the same backlog consumed the same way without ordering keys, measured interleaved with the ordered cases on the same server: the ratio is what ordering costs.",
      "Target (issue 13): at least 1,000 msg/s for one ordering key with the official client's default settings. Clients and servers share 2 cores with whatever else runs on the machine.",
    );
    return {
      parameters: { ...settings, repetitions: context.repetitions, scale: context.scale },
      figures,
      details,
      notes,
    };
  },
};
