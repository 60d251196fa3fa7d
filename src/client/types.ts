// Public types of the streamgate client library: messages, options and the client itself.

/** A message of a topic's log as the client yields it (the documented JSON form, decoded). */
export interface StreamMessage {
  /** Per-topic position, starting at 1; the cursor the client resumes after. */
  offset: number;
  messageId: string;
  publishTime: Date;
  attributes: Record<string, string>;
  /** Empty when the message has none. */
  orderingKey: string;
  data: Uint8Array;
}

/** Retention removed messages at the cursor: offsets `fromOffset`..`firstAvailable - 1` (`lost` of them) are gone. */
export interface StreamGap {
  fromOffset: number;
  firstAvailable: number;
  lost: number;
}

/** How a subscription reaches the server. */
export const StreamTransport = {
  /** Server-Sent Events over fetch (resumes with Last-Event-ID). The default: works through most proxies. */
  sse: "sse",
  /** One WebSocket per subscription on /v1/ws (resumes with `from`). */
  websocket: "websocket",
  /** Repeated long polls of GET …/events?wait=… (resumes with `from`), for networks that break streams. */
  longpoll: "longpoll",
} as const;
export type StreamTransport = (typeof StreamTransport)[keyof typeof StreamTransport];

/** Reconnect backoff: delay = min(maxDelayMs, initialDelayMs × 2^attempt), then up to `jitter` of it taken off at random. */
export interface ReconnectOptions {
  /** First retry delay. Default 250 ms. */
  initialDelayMs?: number;
  /** Cap of the delay. Default 30 000 ms (30 s). */
  maxDelayMs?: number;
  /** Fraction (0–1) of each delay that is random, so clients cut together do not return together. Default 0.5. */
  jitter?: number;
}

/** Options of {@link createStreamClient}. */
export interface StreamClientOptions {
  /** Server base URL, e.g. `http://localhost:8080`. */
  baseUrl: string;
  /** Bearer token: `Authorization` header, or `access_token` query parameter where headers cannot be set (browser WebSocket). */
  token?: string;
  /** Project of short topic ids. Default `"default"`. */
  project?: string;
  /** Default `"sse"`. */
  transport?: StreamTransport;
  reconnect?: ReconnectOptions;
  /** A stream silent this long (no event, no heartbeat) is treated as dead and reconnected. Default 45 000 ms (3 heartbeats). */
  idleTimeoutMs?: number;
  /** Seconds each long poll waits for messages. Default 25 (below common 30 s proxy idle timeouts). */
  longPollWaitSeconds?: number;
  /** Publish batching: most messages per request. Default 100. */
  maxBatchMessages?: number;
  /** Publish batching: longest a message waits for companions. Default 10 ms. */
  maxBatchDelayMs?: number;
  /** Attempts per publish request on 429/502/503/504/network errors. Default 5. */
  maxPublishAttempts?: number;
  /** fetch to use; default `globalThis.fetch`. */
  fetch?: typeof fetch;
}

/** Where a subscription starts: `earliest`, `latest`, after an offset (the last one seen), or at a time. */
export type StreamFrom = "earliest" | "latest" | number | Date;

/** Options of {@link StreamClient.subscribe}. */
export interface SubscribeOptions {
  /** Default `"latest"`. A number is a cursor: the first message yielded is `from + 1`. */
  from?: StreamFrom;
  /** Pub/Sub filter on attributes, e.g. `attributes.kind = "created"`. */
  filter?: string;
  /** Ends the iteration (it returns, it does not throw). */
  signal?: AbortSignal;
  /** Called when retention removed messages at the cursor; the stream continues at `firstAvailable`. */
  onGap?: (gap: StreamGap) => void;
  /**
   * Called each time a connection is established and streaming (the first one and every reconnect): SSE once the
   * server answered with its event stream, WebSocket once the socket opened, long poll after the first poll answered.
   * For a connection indicator; messages published from then on arrive on this connection.
   */
  onOpen?: () => void;
  /** Called before each reconnect, with the reason and the delay; for logs and tests. */
  onReconnect?: (info: { attempt: number; delayMs: number; reason: unknown }) => void;
}

/** A message to publish; a string `data` is sent as UTF-8. */
export interface PublishMessage {
  data: Uint8Array | string;
  attributes?: Record<string, string>;
  orderingKey?: string;
}

/** What the server answered for one published message. */
export interface PublishResult {
  messageId: string;
  /** Present when the server returns offsets (streamgate does; Google's API does not). */
  offset?: number;
}

export interface StreamClient {
  /**
   * Yields the topic's messages from `from`, reconnecting with backoff and resuming after the last
   * offset yielded: never a duplicate, never a silent skip. Throws StreamClientError for fatal errors
   * (unknown topic, bad filter or position, 401/403).
   */
  subscribe(topic: string, options?: SubscribeOptions): AsyncIterable<StreamMessage>;
  /** Publishes through batched REST `:publish` calls, retried on 429/503/network errors. */
  publish(topic: string, message: PublishMessage): Promise<PublishResult>;
  publish(topic: string, messages: readonly PublishMessage[]): Promise<PublishResult[]>;
  /** Flushes pending publishes and ends every subscription. */
  close(): Promise<void>;
}
