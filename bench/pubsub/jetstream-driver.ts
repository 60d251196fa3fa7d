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
import { connect, createInbox, type NatsConnection, type Subscription } from "@nats-io/transport-node";
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

/**
 * How messages are published to JetStream:
 * - `client`: `jetstream(nc).publish()` of the official client, one awaited PubAck per message;
 * - `raw`: core `nc.publish()` with a per-message reply subject under one wildcard subscription that
 *   counts PubAcks, as Go's `PublishAsync` does; no per-message promise or timer.
 */
export type JetStreamPublishMode = "client" | "raw";

/**
 * Publishes to JetStream with core publishes whose reply subjects `<inbox>.<n>` share one wildcard
 * subscription that counts PubAcks (as Go's `PublishAsync`): no promise or timer per message.
 */
class RawPublisher {
  sent = 0;
  acked = 0;
  /** PubAcks carrying an error, or no-responder statuses. */
  failed = 0;
  readonly #nc: NatsConnection;
  readonly #subject: string;
  readonly #prefix = createInbox();
  readonly #subscription: Subscription;

  /** @param onAck Called after each PubAck or failure is counted. */
  constructor(nc: NatsConnection, subject: string, onAck?: () => void) {
    this.#nc = nc;
    this.#subject = subject;
    this.#subscription = nc.subscribe(`${this.#prefix}.*`, {
      callback: (error, message) => {
        // A PubAck is {"stream":…,"seq":…}; a failure is {"error":…} or an empty status message.
        if (error !== null || message.data.length < 3 || message.data[2] === 0x65) this.failed++;
        else this.acked++;
        onAck?.();
      },
    });
  }

  /** Messages sent and not yet answered. */
  get pending(): number {
    return this.sent - this.acked - this.failed;
  }

  publish(payload: Uint8Array): void {
    this.#nc.publish(this.#subject, payload, { reply: `${this.#prefix}.${this.sent}` });
    this.sent++;
  }

  close(): void {
    this.#subscription.unsubscribe();
  }
}

/** JetStream side of the pubsub bench: one stream (one subject, file storage) per repetition. */
export class JetStreamDriver implements PubsubDriver {
  readonly name: string;
  readonly serverPid: number;
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #publishMode: JetStreamPublishMode;
  readonly #ownsConnection: boolean;

  private constructor(
    name: string,
    serverPid: number,
    nc: NatsConnection,
    jsm: JetStreamManager,
    publishMode: JetStreamPublishMode,
    ownsConnection: boolean,
  ) {
    this.name = name;
    this.serverPid = serverPid;
    this.#nc = nc;
    this.#jsm = jsm;
    this.#js = jetstream(nc);
    this.#publishMode = publishMode;
    this.#ownsConnection = ownsConnection;
  }

  /** A driver on the same connection that publishes in `mode` (closing it leaves the connection open). */
  withPublishMode(mode: JetStreamPublishMode, name: string): JetStreamDriver {
    return new JetStreamDriver(name, this.serverPid, this.#nc, this.#jsm, mode, false);
  }

  /** Connects to the server at `url`. */
  static async connect(url: string, serverPid: number, name = "NATS JetStream"): Promise<JetStreamDriver> {
    const nc = await connect({ servers: url, name: "streamgate-bench" });
    return new JetStreamDriver(name, serverPid, nc, await jetstreamManager(nc), "client", true);
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

  /** Publishes `count` messages raw (see {@link RawPublisher}), keeping `window` without a PubAck; resolves to the PubAcks. */
  async #publishRaw(
    subject: string,
    payload: Uint8Array,
    count: number,
    window: number,
    deadline: number,
  ): Promise<number> {
    return new Promise((resolve) => {
      const pump = (): void => {
        while (publisher.sent < count && publisher.pending < window) publisher.publish(payload);
      };
      const finish = (): void => {
        clearInterval(watchdog);
        publisher.close();
        resolve(publisher.acked);
      };
      const publisher = new RawPublisher(this.#nc, subject, () => {
        if (publisher.acked + publisher.failed >= count) finish();
        else pump();
      });
      const watchdog = setInterval(() => {
        if (performance.now() > deadline) finish();
      }, 100);
      pump();
    });
  }

  async publish(settings: PubsubSettings): Promise<PublishRun> {
    const { stream, subject } = await this.#createStream("pub");
    const payload = makePayload(settings.messageBytes);
    try {
      await this.#js.publish(subject, payload); // warm the reply subscription up
      const start = performance.now();
      const deadline = start + settings.measurementTimeoutMs;
      const publish = this.#publishMode === "raw" ? this.#publishRaw.bind(this) : this.#publishWindowed.bind(this);
      const messages = await publish(
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
      const raw = this.#publishMode === "raw" ? new RawPublisher(this.#nc, subject) : undefined;
      const start = performance.now();
      measureFrom = start + settings.latencyWarmupMs;
      const sent = await sendAtFixedRate(
        settings.latencyRatePerSecond,
        settings.latencyDurationMs,
        (count, dueAt) => {
          for (let i = 0; i < count; i++) {
            if (raw !== undefined) raw.publish(stampedPayload(base, dueAt(i)));
            else {
              this.#js.publish(subject, stampedPayload(base, dueAt(i))).catch(() => {
                failures++;
              });
            }
          }
        },
        settings.latencyPublishIntervalMs,
      );
      const sendMs = performance.now() - start;
      await waitUntil(() => received >= sent - failures - (raw?.failed ?? 0), 5_000);
      raw?.close();
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
    if (this.#ownsConnection) await this.#nc.close();
  }
}
