// Batched publishing: messages of a topic collect for up to maxBatchDelayMs or maxBatchMessages, one REST :publish per batch.
import { backoffDelayMs, type ResolvedReconnectOptions, sleep } from "./backoff.js";
import { bytesToBase64 } from "./message-codec.js";
import { authHeaders } from "./source.js";
import { StreamClientError } from "./stream-client-error.js";
import type { PublishMessage, PublishResult } from "./types.js";

export interface PublisherOptions {
  baseUrl: string;
  token: string | undefined;
  fetch: typeof fetch;
  maxBatchMessages: number;
  maxBatchDelayMs: number;
  maxAttempts: number;
  backoff: ResolvedReconnectOptions;
}

interface Pending {
  wire: { data: string; attributes?: Record<string, string>; orderingKey?: string };
  resolve(result: PublishResult): void;
  reject(error: unknown): void;
}

interface TopicBatch {
  pending: Pending[];
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Requests of a topic go one at a time, so messages keep the order they were published in, across retries. */
  chain: Promise<void>;
}

/** HTTP statuses worth a retry: rate limited, or the server (or a proxy) briefly unable to answer. */
const RETRY_HTTP = new Set([429, 502, 503, 504]);
const encoder = new TextEncoder();

export function createPublisher(options: PublisherOptions) {
  const batches = new Map<string, TopicBatch>();

  function batchOf(topic: string): TopicBatch {
    let batch = batches.get(topic);
    if (batch === undefined) {
      batch = { pending: [], timer: undefined, chain: Promise.resolve() };
      batches.set(topic, batch);
    }
    return batch;
  }

  function flush(topic: string): void {
    const batch = batchOf(topic);
    clearTimeout(batch.timer);
    batch.timer = undefined;
    while (batch.pending.length > 0) {
      const items = batch.pending.splice(0, options.maxBatchMessages);
      batch.chain = batch.chain.then(() => send(topic, items));
    }
  }

  async function send(topic: string, items: Pending[]): Promise<void> {
    try {
      const results = await request(topic, items);
      for (const [index, item] of items.entries()) item.resolve(results[index]!);
    } catch (error) {
      for (const item of items) item.reject(error);
    }
  }

  async function request(topic: string, items: Pending[]): Promise<PublishResult[]> {
    const [, project, , id] = topic.split("/");
    const url = `${options.baseUrl}/v1/projects/${encodeURIComponent(project!)}/topics/${encodeURIComponent(id!)}:publish`;
    const body = JSON.stringify({ messages: items.map((item) => item.wire) });
    for (let attempt = 1; ; attempt++) {
      let failure = new StreamClientError("UNAVAILABLE", "publish: no answer");
      let response: Response | undefined;
      try {
        response = await options.fetch(url, {
          method: "POST",
          headers: authHeaders(options.token, { "content-type": "application/json" }),
          body,
        });
      } catch (error) {
        // Retried: if the request did reach the server the batch is stored twice (at-least-once, as in Pub/Sub clients).
        failure = StreamClientError.from(error);
      }
      if (response !== undefined) {
        if (response.ok) return readResults(response, items.length);
        failure = await StreamClientError.fromResponse(response, "publish");
        if (!RETRY_HTTP.has(response.status)) throw failure;
      }
      if (attempt >= options.maxAttempts) throw failure;
      await sleep(backoffDelayMs(options.backoff, attempt - 1));
    }
  }

  return {
    publish(topic: string, messages: readonly PublishMessage[]): Promise<PublishResult[]> {
      const batch = batchOf(topic);
      const promises = messages.map(
        (message) =>
          new Promise<PublishResult>((resolve, reject) => {
            batch.pending.push({ wire: toWire(message), resolve, reject });
          }),
      );
      if (batch.pending.length >= options.maxBatchMessages) flush(topic);
      else batch.timer ??= setTimeout(() => flush(topic), options.maxBatchDelayMs);
      return Promise.all(promises);
    },
    /** Sends everything pending and waits for every request to finish. */
    async close(): Promise<void> {
      for (const topic of batches.keys()) flush(topic);
      await Promise.all([...batches.values()].map((batch) => batch.chain));
    },
  };
}

async function readResults(response: Response, count: number): Promise<PublishResult[]> {
  const answer = (await response.json()) as { messageIds?: string[]; offsets?: string[] };
  const ids = answer.messageIds ?? [];
  if (ids.length !== count)
    throw new StreamClientError("INTERNAL", `publish: sent ${count} messages, got ${ids.length} ids`);
  return ids.map((messageId, index) => {
    const offset = answer.offsets?.[index];
    return offset === undefined ? { messageId } : { messageId, offset: Number(offset) };
  });
}

function toWire(message: PublishMessage): Pending["wire"] {
  const data = typeof message.data === "string" ? encoder.encode(message.data) : message.data;
  const wire: Pending["wire"] = { data: bytesToBase64(data) };
  if (message.attributes !== undefined && Object.keys(message.attributes).length > 0)
    wire.attributes = message.attributes;
  if (message.orderingKey) wire.orderingKey = message.orderingKey;
  return wire;
}
