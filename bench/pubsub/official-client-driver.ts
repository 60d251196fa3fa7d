// streamgate driven by the official @google-cloud/pubsub client with its defaults: what an application sees.
import { PubSub } from "@google-cloud/pubsub";
import {
  type ConsumeRun,
  type LatencyRun,
  makePayload,
  type PreparedConsume,
  type PublishRun,
  type PubsubDriver,
  type PubsubSettings,
  uniqueName,
  waitUntil,
} from "./driver.js";

const PROJECT_ID = "bench";

/**
 * streamgate via `@google-cloud/pubsub` (publisher batching 100 messages / 1 MB / 10 ms; subscriber
 * with its defaults: 5 streams, 1000 outstanding, acks batched for up to 100 ms). Publish and
 * consume only: its 10 ms batching delay would dominate a latency figure.
 */
export class OfficialClientDriver implements PubsubDriver {
  readonly name: string;
  readonly serverPid: number;
  readonly #pubsub: PubSub;

  /**
   * @param target `host:port` of the server (plaintext, as for `PUBSUB_EMULATOR_HOST`).
   * @param serverPid The server's process id.
   */
  constructor(target: string, serverPid: number, name = "streamgate via @google-cloud/pubsub") {
    this.name = name;
    this.serverPid = serverPid;
    // Loopback only: skip google-auth's GCE metadata probe (it times out and prints a warning).
    process.env.METADATA_SERVER_DETECTION ??= "none";
    this.#pubsub = new PubSub({ projectId: PROJECT_ID, apiEndpoint: target, emulatorMode: true });
  }

  /** Publishes `count` messages keeping `window` unresolved publishMessage() calls, the client batching them. */
  async #publishWindowed(
    topicName: string,
    settings: PubsubSettings,
    count: number,
    deadline: number,
  ): Promise<number> {
    const topic = this.#pubsub.topic(topicName);
    const data = makePayload(settings.messageBytes);
    let started = 0;
    let acked = 0;
    const worker = async (): Promise<void> => {
      while (started < count && performance.now() < deadline) {
        started++;
        await topic.publishMessage({ data });
        acked++;
      }
    };
    // As many messages in flight as the raw client's batches (100 × 10 requests).
    const window = settings.batchMaxMessages * settings.publishRequestsInFlight;
    await Promise.all(Array.from({ length: Math.min(window, count) }, worker));
    return acked;
  }

  async publish(settings: PubsubSettings): Promise<PublishRun> {
    const [topic] = await this.#pubsub.createTopic(uniqueName("official-pub"));
    try {
      const start = performance.now();
      const deadline = start + settings.measurementTimeoutMs;
      const messages = await this.#publishWindowed(topic.name, settings, settings.publishMessages, deadline);
      const elapsedMs = performance.now() - start;
      return { messages, elapsedMs, capped: messages < settings.publishMessages };
    } finally {
      await topic.delete().catch(() => undefined);
    }
  }

  async prepareConsume(settings: PubsubSettings): Promise<PreparedConsume> {
    const name = uniqueName("official-con");
    const [topic] = await this.#pubsub.createTopic(name);
    const cleanup = async (): Promise<void> => {
      await this.#pubsub
        .subscription(name)
        .delete()
        .catch(() => undefined);
      await topic.delete().catch(() => undefined);
    };
    try {
      await topic.createSubscription(name, { ackDeadlineSeconds: 60 });
      const deadline = performance.now() + settings.measurementTimeoutMs;
      const backlog = await this.#publishWindowed(topic.name, settings, settings.backlogMessages, deadline);
      const run = async (): Promise<ConsumeRun> => {
        const start = performance.now();
        const subscription = this.#pubsub.subscription(name);
        const seen = new Set<string>();
        let duplicates = 0;
        subscription.on("message", (message: { id: string; ack(): void }) => {
          if (seen.has(message.id)) duplicates++;
          else seen.add(message.id);
          message.ack();
        });
        subscription.on("error", () => {
          // shows as messages missing
        });
        const complete = await waitUntil(() => seen.size >= backlog, settings.measurementTimeoutMs);
        await subscription.close(); // flushes the queued acks
        const elapsedMs = performance.now() - start;
        return { messages: seen.size, duplicates, elapsedMs, capped: !complete || backlog < settings.backlogMessages };
      };
      return { backlog, run, cleanup };
    } catch (error) {
      await cleanup();
      throw error;
    }
  }

  async latency(): Promise<LatencyRun> {
    throw new Error("OfficialClientDriver does not take part in the latency phase");
  }

  async close(): Promise<void> {
    await this.#pubsub.close();
  }
}
