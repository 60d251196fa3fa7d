// The pubsub bench's anchor: the same workloads on NATS JetStream (file storage) with the official @nats-io client.
import {
  AckPolicy,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  StorageType,
} from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { LatencyRecorder } from "../lib/stats.js";
import {
  type ConsumeRun,
  type LatencyRun,
  latencyOf,
  makePayload,
  type PreparedConsume,
  type PublishRun,
  type PubsubDriver,
  type PubsubSettings,
  sendAtFixedRate,
  stampedPayload,
  uniqueName,
  waitUntil,
} from "./driver.js";

/** JetStream side of the pubsub bench: one stream (one subject, file storage) per repetition. */
export class JetStreamDriver implements PubsubDriver {
  readonly name: string;
  readonly serverPid: number;
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;

  private constructor(name: string, serverPid: number, nc: NatsConnection, jsm: JetStreamManager) {
    this.name = name;
    this.serverPid = serverPid;
    this.#nc = nc;
    this.#jsm = jsm;
    this.#js = jetstream(nc);
  }

  /** Connects to the server at `url`. */
  static async connect(url: string, serverPid: number, name = "NATS JetStream"): Promise<JetStreamDriver> {
    const nc = await connect({ servers: url, name: "streamgate-bench" });
    return new JetStreamDriver(name, serverPid, nc, await jetstreamManager(nc));
  }

  /** Creates a file-storage stream with one subject; returns its name and subject. */
  async #createStream(prefix: string): Promise<{ stream: string; subject: string }> {
    const stream = uniqueName(prefix).replaceAll("-", "_").toUpperCase();
    const subject = `bench.${stream}`;
    await this.#jsm.streams.add({ name: stream, subjects: [subject], storage: StorageType.File });
    return { stream, subject };
  }

  /** Publishes `count` messages keeping `window` publishes awaiting their ack. */
  async #publishWindowed(
    subject: string,
    payload: Uint8Array,
    count: number,
    window: number,
    deadline: number,
  ): Promise<number> {
    let started = 0;
    let acked = 0;
    const worker = async (): Promise<void> => {
      while (started < count && performance.now() < deadline) {
        started++;
        await this.#js.publish(subject, payload);
        acked++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(window, count) }, worker));
    return acked;
  }

  async publish(settings: PubsubSettings): Promise<PublishRun> {
    const { stream, subject } = await this.#createStream("pub");
    const payload = makePayload(settings.messageBytes);
    try {
      await this.#js.publish(subject, payload); // warm the reply subscription up
      const start = performance.now();
      const deadline = start + settings.measurementTimeoutMs;
      const messages = await this.#publishWindowed(
        subject,
        payload,
        settings.publishMessages,
        settings.jetstreamPublishWindow,
        deadline,
      );
      const elapsedMs = performance.now() - start;
      return { messages, elapsedMs, capped: messages < settings.publishMessages };
    } finally {
      await this.#jsm.streams.delete(stream);
    }
  }

  async #createConsumer(stream: string, settings: PubsubSettings): Promise<string> {
    const durable = "bench";
    await this.#jsm.consumers.add(stream, {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      max_ack_pending: settings.maxOutstandingMessages,
      ack_wait: 60_000_000_000, // 60 s in nanoseconds, like the Pub/Sub subscription's ack deadline
    });
    return durable;
  }

  async prepareConsume(settings: PubsubSettings): Promise<PreparedConsume> {
    const { stream, subject } = await this.#createStream("con");
    const cleanup = async (): Promise<void> => {
      await this.#jsm.streams.delete(stream).catch(() => undefined);
    };
    try {
      const durable = await this.#createConsumer(stream, settings);
      const payload = makePayload(settings.messageBytes);
      const deadline = performance.now() + settings.measurementTimeoutMs;
      const backlog = await this.#publishWindowed(
        subject,
        payload,
        settings.backlogMessages,
        settings.jetstreamPublishWindow,
        deadline,
      );
      const run = async (): Promise<ConsumeRun> => {
        const start = performance.now();
        const consumer = await this.#js.consumers.get(stream, durable);
        let received = 0;
        let duplicates = 0;
        const messages = await consumer.consume({
          max_messages: settings.maxOutstandingMessages,
          callback: (message) => {
            if (message.redelivered) duplicates++;
            else received++;
            message.ack();
          },
        });
        const complete = await waitUntil(() => received >= backlog, settings.measurementTimeoutMs);
        await this.#nc.flush(); // every ack above has reached the server once the PONG is back
        const elapsedMs = performance.now() - start;
        await messages.close();
        return { messages: received, duplicates, elapsedMs, capped: !complete || backlog < settings.backlogMessages };
      };
      return { backlog, run, cleanup };
    } catch (error) {
      await cleanup();
      throw error;
    }
  }

  async latency(settings: PubsubSettings): Promise<LatencyRun> {
    const { stream, subject } = await this.#createStream("lat");
    const base = makePayload(settings.messageBytes);
    const recorder = new LatencyRecorder(
      Math.ceil((settings.latencyRatePerSecond * settings.latencyDurationMs) / 1000) + 10_000,
    );
    try {
      const durable = await this.#createConsumer(stream, settings);
      const consumer = await this.#js.consumers.get(stream, durable);
      let received = 0;
      let measureFrom = Number.POSITIVE_INFINITY;
      const messages = await consumer.consume({
        max_messages: settings.maxOutstandingMessages,
        callback: (message) => {
          received++;
          const latency = latencyOf(message.data);
          if (performance.now() - latency >= measureFrom) recorder.record(latency);
          message.ack();
        },
      });
      let failures = 0;
      const start = performance.now();
      measureFrom = start + settings.latencyWarmupMs;
      const sent = await sendAtFixedRate(settings.latencyRatePerSecond, settings.latencyDurationMs, (count) => {
        for (let i = 0; i < count; i++) {
          this.#js.publish(subject, stampedPayload(base)).catch(() => {
            failures++;
          });
        }
      });
      const sendMs = performance.now() - start;
      await waitUntil(() => received >= sent - failures, 5_000);
      await messages.close();
      return {
        ...recorder.summarize(),
        sent,
        received,
        missing: Math.max(0, sent - received),
        achievedRatePerSecond: (sent * 1000) / sendMs,
      };
    } finally {
      await this.#jsm.streams.delete(stream);
    }
  }

  async close(): Promise<void> {
    await this.#nc.close();
  }
}
