// Contract of the live-stream hub: log-semantics subscriptions shared by SSE, WebSocket, gRPC Events and long poll.
import type { StoredMessage, StreamPosition, TopicName } from "../broker/types.js";

/** What a live subscriber receives, in order. */
export type FeedEvent =
  /** One message of the topic's log. */
  | { kind: "message"; message: StoredMessage }
  /**
   * The requested position is older than retention: `lost` messages (offsets `fromOffset`..`firstAvailable - 1`)
   * are gone; the stream continues at `firstAvailable`. Always sent before the first message after a hole.
   */
  | { kind: "gap"; fromOffset: number; firstAvailable: number; lost: number }
  /** Nothing happened for the heartbeat interval; transports turn this into a comment/ping/keepalive frame. */
  | { kind: "heartbeat" };

/** Options of one live subscription. */
export interface FeedSubscribeOptions {
  topic: TopicName;
  /** Where to start; `after` resumes after the last offset a client saw (SSE Last-Event-ID). */
  from: StreamPosition;
  /** Pub/Sub filter syntax on attributes; empty = everything. */
  filter: string;
  /** Ends the subscription; the iterator finishes. */
  signal: AbortSignal;
}

/**
 * A live subscription: an async iterator of events. It throws StreamgateError RESOURCE_EXHAUSTED
 * (reason SLOW_CONSUMER) when the consumer falls more than the per-connection byte limit behind;
 * NOT_FOUND when the topic does not exist; INVALID_ARGUMENT for a bad filter or position.
 */
export interface FeedSubscription extends AsyncIterable<FeedEvent> {
  /**
   * Where a client resumes (`after` this offset): the last message or gap it took; before any, the offset the
   * subscription started after (`latest`, `earliest` and times are pinned when it opens).
   */
  readonly lastOffset: number;
  /**
   * Settles once history catch-up is done: the subscription has queued everything below the live
   * tail at the time it joined (or it ended). Engines with asynchronous reads (jetstream) fill the
   * queue after `subscribe` returns; a caller answering "what is there now" waits for this first.
   */
  readonly caughtUp: Promise<void>;
  /**
   * The iterator's events a page at a time: waits until at least one is queued, then returns every event queued
   * now, in order (the same events `next()` would yield one by one; use one or the other). Resolves null at the
   * end; rejects with the subscription's failure after its queued events.
   */
  nextBatch(): Promise<readonly FeedEvent[] | null>;
}

/** The hub: one shared log reader per topic, fanning out to every live subscriber of that topic. */
export interface StreamHub {
  subscribe(options: FeedSubscribeOptions): Promise<FeedSubscription>;
  /** Counters for metrics and the dashboard. */
  stats(): { topics: number; subscribers: number; droppedSlowConsumers: number };
  close(): Promise<void>;
}
