// The pubsub bench's system under test: streamgate over google.pubsub.v1 gRPC with a raw grpc-js client.
import { randomUUID } from "node:crypto";
import type { ClientDuplexStream } from "@grpc/grpc-js";
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
import type {
  PubsubGrpcClient,
  PubsubMessageInput,
  ReceivedMessage,
  StreamingPullRequest,
  StreamingPullResponse,
} from "./pubsub-grpc-client.js";

const PROJECT = "projects/bench";
const ACK_DEADLINE_SECONDS = 60;

/**
 * Sends ack ids in batched Subscriber.Acknowledge calls, as the official client does: a batch goes
 * out when it is full or when its first id has waited `maxDelayMs`.
 */
class AckBatcher {
  readonly #client: PubsubGrpcClient;
  readonly #subscription: string;
  readonly #maxMessages: number;
  readonly #maxDelayMs: number;
  #pending: string[] = [];
  #timer: NodeJS.Timeout | undefined;
  readonly #inFlight = new Set<Promise<void>>();
  /** Acknowledge calls that failed. */
  failures = 0;

  constructor(client: PubsubGrpcClient, subscription: string, maxMessages: number, maxDelayMs: number) {
    this.#client = client;
    this.#subscription = subscription;
    this.#maxMessages = maxMessages;
    this.#maxDelayMs = maxDelayMs;
  }

  add(ackId: string): void {
    this.#pending.push(ackId);
    if (this.#pending.length >= this.#maxMessages) this.flush();
    else this.#timer ??= setTimeout(() => this.flush(), this.#maxDelayMs);
  }

  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending.length === 0) return;
    const ackIds = this.#pending;
    this.#pending = [];
    const call = this.#client.acknowledge(this.#subscription, ackIds).catch(() => {
      this.failures++;
    });
    this.#inFlight.add(call);
    void call.finally(() => this.#inFlight.delete(call));
  }

  /** Flushes and waits for every Acknowledge call to be answered. */
  async drain(): Promise<void> {
    this.flush();
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
  }
}

/** An open StreamingPull that hands each received message to `onMessage` and acks it through an {@link AckBatcher}. */
function openStreamingPull(
  client: PubsubGrpcClient,
  subscription: string,
  settings: PubsubSettings,
  acker: AckBatcher,
  onMessage: (message: ReceivedMessage) => void,
): ClientDuplexStream<StreamingPullRequest, StreamingPullResponse> {
  const call = client.streamingPull();
  call.on("data", (response: StreamingPullResponse) => {
    for (const received of response.receivedMessages ?? []) {
      onMessage(received);
      acker.add(received.ackId);
    }
  });
  call.on("error", () => {
    // CANCELLED when we end it; a real failure shows as messages missing.
  });
  call.write({
    subscription,
    streamAckDeadlineSeconds: ACK_DEADLINE_SECONDS,
    clientId: randomUUID(),
    maxOutstandingMessages: settings.maxOutstandingMessages,
    maxOutstandingBytes: 100 * 1024 * 1024,
  });
  return call;
}

/** streamgate side of the pubsub bench: one topic (and subscription) per repetition. */
export class StreamgateDriver implements PubsubDriver {
  readonly name: string;
  readonly serverPid: number;
  readonly #client: PubsubGrpcClient;

  /**
   * @param client A raw Pub/Sub client connected to the server.
   * @param serverPid The server's process id.
   */
  constructor(client: PubsubGrpcClient, serverPid: number, name = "streamgate") {
    this.name = name;
    this.serverPid = serverPid;
    this.#client = client;
  }

  async #createTopic(prefix: string): Promise<string> {
    const topic = `${PROJECT}/topics/${uniqueName(prefix)}`;
    await this.#client.createTopic(topic);
    return topic;
  }

  async #createSubscription(topic: string): Promise<string> {
    const subscription = topic.replace("/topics/", "/subscriptions/");
    await this.#client.createSubscription(subscription, topic, ACK_DEADLINE_SECONDS);
    return subscription;
  }

  /** Batch of up to batchMaxMessages messages or batchMaxBytes, the official client's limits. */
  #batchOf(settings: PubsubSettings, payload: Buffer): PubsubMessageInput[] {
    const byBytes = Math.max(1, Math.floor(settings.batchMaxBytes / payload.length));
    const size = Math.min(settings.batchMaxMessages, byBytes);
    return Array.from({ length: size }, () => ({ data: payload }));
  }

  /** Publishes `count` messages in batches, `requestsInFlight` Publish calls at once. */
  async #publishBatched(
    topic: string,
    settings: PubsubSettings,
    payload: Buffer,
    count: number,
    deadline: number,
  ): Promise<number> {
    const batch = this.#batchOf(settings, payload);
    let remaining = count;
    let acked = 0;
    const worker = async (): Promise<void> => {
      while (remaining > 0 && performance.now() < deadline) {
        const size = Math.min(batch.length, remaining);
        remaining -= size;
        const ids = await this.#client.publish(topic, size === batch.length ? batch : batch.slice(0, size));
        acked += ids.length;
      }
    };
    await Promise.all(Array.from({ length: settings.publishRequestsInFlight }, worker));
    return acked;
  }

  async publish(settings: PubsubSettings): Promise<PublishRun> {
    const topic = await this.#createTopic("pub");
    const payload = makePayload(settings.messageBytes);
    try {
      await this.#client.publish(topic, [{ data: payload }]);
      const start = performance.now();
      const deadline = start + settings.measurementTimeoutMs;
      const messages = await this.#publishBatched(topic, settings, payload, settings.publishMessages, deadline);
      const elapsedMs = performance.now() - start;
      return { messages, elapsedMs, capped: messages < settings.publishMessages };
    } finally {
      await this.#client.deleteTopic(topic).catch(() => undefined);
    }
  }

  async prepareConsume(settings: PubsubSettings): Promise<PreparedConsume> {
    const topic = await this.#createTopic("con");
    const subscription = topic.replace("/topics/", "/subscriptions/");
    const cleanup = async (): Promise<void> => {
      await this.#client.deleteSubscription(subscription).catch(() => undefined);
      await this.#client.deleteTopic(topic).catch(() => undefined);
    };
    try {
      await this.#createSubscription(topic);
      const payload = makePayload(settings.messageBytes);
      const deadline = performance.now() + settings.measurementTimeoutMs;
      const backlog = await this.#publishBatched(topic, settings, payload, settings.backlogMessages, deadline);
      const run = async (): Promise<ConsumeRun> => {
        const start = performance.now();
        const seen = new Set<string>();
        let duplicates = 0;
        const acker = new AckBatcher(
          this.#client,
          subscription,
          settings.ackBatchMaxMessages,
          settings.ackBatchMaxDelayMs,
        );
        const call = openStreamingPull(this.#client, subscription, settings, acker, (received) => {
          if (seen.has(received.message.messageId)) duplicates++;
          else seen.add(received.message.messageId);
        });
        const complete = await waitUntil(() => seen.size >= backlog, settings.measurementTimeoutMs);
        await acker.drain();
        const elapsedMs = performance.now() - start;
        call.cancel();
        return {
          messages: seen.size,
          duplicates,
          elapsedMs,
          capped: !complete || backlog < settings.backlogMessages || acker.failures > 0,
        };
      };
      return { backlog, run, cleanup };
    } catch (error) {
      await cleanup();
      throw error;
    }
  }

  async latency(settings: PubsubSettings): Promise<LatencyRun> {
    const topic = await this.#createTopic("lat");
    const base = makePayload(settings.messageBytes);
    const recorder = new LatencyRecorder(
      Math.ceil((settings.latencyRatePerSecond * settings.latencyDurationMs) / 1000) + 10_000,
    );
    try {
      const subscription = await this.#createSubscription(topic);
      let received = 0;
      let measureFrom = Number.POSITIVE_INFINITY;
      const acker = new AckBatcher(
        this.#client,
        subscription,
        settings.ackBatchMaxMessages,
        settings.ackBatchMaxDelayMs,
      );
      const call = openStreamingPull(this.#client, subscription, settings, acker, (message) => {
        received++;
        const latency = latencyOf(message.message.data);
        if (performance.now() - latency >= measureFrom) recorder.record(latency);
      });
      let failures = 0;
      const start = performance.now();
      measureFrom = start + settings.latencyWarmupMs;
      const sent = await sendAtFixedRate(
        settings.latencyRatePerSecond,
        settings.latencyDurationMs,
        (count, dueAt) => {
          // What is due now goes out at once, in batches of at most batchMaxMessages.
          for (let offset = 0; offset < count; offset += settings.batchMaxMessages) {
            const size = Math.min(settings.batchMaxMessages, count - offset);
            const messages = Array.from({ length: size }, (_, i) => ({
              data: stampedPayload(base, dueAt(offset + i)),
            }));
            this.#client.publish(topic, messages).catch(() => {
              failures += size;
            });
          }
        },
        settings.latencyPublishIntervalMs,
      );
      const sendMs = performance.now() - start;
      await waitUntil(() => received >= sent - failures, 5_000);
      await acker.drain();
      call.cancel();
      return {
        ...recorder.summarize(),
        sent,
        received,
        missing: Math.max(0, sent - received),
        achievedRatePerSecond: (sent * 1000) / sendMs,
      };
    } finally {
      await this.#client.deleteSubscription(topic.replace("/topics/", "/subscriptions/")).catch(() => undefined);
      await this.#client.deleteTopic(topic).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    this.#client.close();
  }
}
