// createStreamClient: subscriptions that reconnect with backoff and resume after the last offset yielded, and batched publishing.
import { backoffDelayMs, resolveReconnectOptions, sleep } from "./backoff.js";
import { longPollSource } from "./long-poll-source.js";
import { createPublisher } from "./publisher.js";
import { childController, pinLatest, type Source, type SourceContext } from "./source.js";
import { sseSource } from "./sse-source.js";
import { StreamClientError } from "./stream-client-error.js";
import type {
  PublishMessage,
  PublishResult,
  StreamClient,
  StreamClientOptions,
  StreamFrom,
  StreamMessage,
  StreamTransport,
  SubscribeOptions,
} from "./types.js";
import { websocketSource } from "./websocket-source.js";

const sources: Record<StreamTransport, Source> = {
  sse: sseSource,
  websocket: websocketSource,
  longpoll: longPollSource,
};

/** Creates a client for one server. Nothing connects until `subscribe()` is iterated or `publish()` is called. */
export function createStreamClient(options: StreamClientOptions): StreamClient {
  const baseUrl = options.baseUrl.replace(/\/+$/, "");
  const transport = options.transport ?? "sse";
  const source = sources[transport];
  if (source === undefined)
    throw new RangeError(`transport must be sse, websocket or longpoll, got ${String(transport)}`);
  const backoff = resolveReconnectOptions(options.reconnect);
  const project = options.project ?? "default";
  const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  const closed = new AbortController();
  const publisher = createPublisher({
    baseUrl,
    token: options.token,
    fetch: fetchImpl,
    maxBatchMessages: options.maxBatchMessages ?? 100,
    maxBatchDelayMs: options.maxBatchDelayMs ?? 10,
    maxAttempts: options.maxPublishAttempts ?? 5,
    backoff,
  });

  const topicName = (topic: string): string => {
    if (/^projects\/[^/]+\/topics\/[^/]+$/.test(topic)) return topic;
    if (/^[^/]+$/.test(topic)) return `projects/${project}/topics/${topic}`;
    throw new StreamClientError(
      "INVALID_ARGUMENT",
      `invalid topic ${JSON.stringify(topic)} (expected ID or projects/P/topics/ID)`,
    );
  };

  async function* subscribe(topic: string, subscribeOptions: SubscribeOptions = {}): AsyncGenerator<StreamMessage> {
    const context: SourceContext = {
      baseUrl,
      token: options.token,
      fetch: fetchImpl,
      topic: topicName(topic),
      filter: subscribeOptions.filter ?? "",
      idleTimeoutMs: options.idleTimeoutMs ?? 45_000,
      longPollWaitSeconds: options.longPollWaitSeconds ?? 25,
    };
    const stop = childController(closed.signal);
    const userSignal = subscribeOptions.signal;
    const abort = () => stop.controller.abort();
    if (userSignal?.aborted) abort();
    userSignal?.addEventListener("abort", abort, { once: true });
    const signal = stop.controller.signal;
    let position = positionText(subscribeOptions.from ?? "latest");
    /** Highest offset handled (yielded, or skipped by a gap/cursor); anything at or below is a duplicate. */
    let handled = /^\d+$/.test(position) ? Number(position) : 0;
    let attempt = 0;
    try {
      while (!signal.aborted) {
        let reason: unknown;
        try {
          // `latest` is pinned to an offset first: a reconnect before the first message must not skip what came between.
          if (position === "latest" && transport !== "longpoll") {
            handled = await pinLatest(context, signal);
            position = String(handled);
          }
          for await (const event of source(context, position, signal)) {
            // Progress resets the backoff; a bare open does not (a server that accepts and drops must not be hammered).
            if (event.kind !== "open") attempt = 0;
            if (event.kind === "message") {
              if (event.message.offset <= handled) continue;
              handled = event.message.offset;
              position = String(handled);
              yield event.message;
            } else if (event.kind === "open") {
              subscribeOptions.onOpen?.();
            } else if (event.kind === "gap") {
              handled = Math.max(handled, event.gap.firstAvailable - 1);
              position = String(handled);
              subscribeOptions.onGap?.(event.gap);
            } else if (Number.isSafeInteger(event.offset) && event.offset >= handled) {
              handled = event.offset;
              position = String(handled);
            }
          }
          reason = new StreamClientError("UNAVAILABLE", "the server ended the stream");
        } catch (error) {
          if (signal.aborted) return;
          const failure = StreamClientError.from(error);
          if (!failure.retryable) throw failure;
          reason = failure;
        }
        if (signal.aborted) return;
        const delayMs = backoffDelayMs(backoff, attempt);
        subscribeOptions.onReconnect?.({ attempt: ++attempt, delayMs, reason });
        await sleep(delayMs, signal);
      }
    } finally {
      abort();
      stop.dispose();
      userSignal?.removeEventListener("abort", abort);
    }
  }

  function publish(topic: string, message: PublishMessage): Promise<PublishResult>;
  function publish(topic: string, messages: readonly PublishMessage[]): Promise<PublishResult[]>;
  async function publish(
    topic: string,
    input: PublishMessage | readonly PublishMessage[],
  ): Promise<PublishResult | PublishResult[]> {
    if (closed.signal.aborted) throw new StreamClientError("FAILED_PRECONDITION", "the client is closed");
    const name = topicName(topic);
    if (Array.isArray(input)) return input.length === 0 ? [] : publisher.publish(name, input);
    const [result] = await publisher.publish(name, [input as PublishMessage]);
    return result!;
  }

  return {
    subscribe,
    publish,
    async close() {
      if (closed.signal.aborted) return;
      closed.abort();
      await publisher.close();
    },
  };
}

/** The wire form of a position: `earliest`, `latest`, a decimal offset cursor or an RFC 3339 time. */
function positionText(from: StreamFrom): string {
  if (from instanceof Date) return from.toISOString();
  if (typeof from === "number") {
    if (!Number.isSafeInteger(from) || from < 0)
      throw new RangeError(`from must be a non-negative integer offset, got ${from}`);
    return String(from);
  }
  if (from === "earliest" || from === "latest") return from;
  throw new RangeError(`from must be "earliest", "latest", an offset or a Date, got ${JSON.stringify(from)}`);
}
