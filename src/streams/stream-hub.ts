// createStreamHub(): live log subscriptions with one shared reader per topic, bounded per-subscriber queues and heartbeats.
import { compileFilter } from "../broker/filter.js";
import type { StreamPosition, TopicName } from "../broker/types.js";
import type { Engine } from "../engines/engine.js";
import { errors } from "../errors/index.js";
import { HubSubscription, type SubscriptionContext } from "./hub-subscription.js";
import { TopicFeed } from "./topic-feed.js";
import type { FeedEvent, FeedSubscribeOptions, FeedSubscription, StreamHub } from "./types.js";

export interface StreamHubOptions {
  engine: Engine;
  /** Idle time after which a subscriber gets a heartbeat event, in ms. Default 15 000 (below 30 s LB idle timeouts). */
  heartbeatMs?: number;
  /**
   * Bytes of events one subscriber may have queued behind the live tail before it is dropped as a
   * slow consumer. Default 1 MiB: about a thousand 1 KiB events, enough to ride out a GC pause or a
   * mobile network hiccup, while a thousand stalled clients cost at most about 1 GiB.
   */
  maxBufferBytes?: number;
  /** Largest page read from the log (shared tail and catch-up). Default 500. */
  batchMaxMessages?: number;
}

export const defaultStreamHubOptions = {
  heartbeatMs: 15_000,
  maxBufferBytes: 1024 * 1024,
  batchMaxMessages: 500,
} as const;

/** Creates the hub; see {@link StreamHub}. */
export function createStreamHub(options: StreamHubOptions): StreamHub {
  const { engine } = options;
  const heartbeatMs = options.heartbeatMs ?? defaultStreamHubOptions.heartbeatMs;
  const maxBufferBytes = options.maxBufferBytes ?? defaultStreamHubOptions.maxBufferBytes;
  const batchMaxMessages = options.batchMaxMessages ?? defaultStreamHubOptions.batchMaxMessages;
  if (!(maxBufferBytes >= 1)) throw errors.invalidArgument("maxBufferBytes", "must be >= 1");
  if (!(batchMaxMessages >= 1)) throw errors.invalidArgument("batchMaxMessages", "must be >= 1");

  const feeds = new Map<TopicName, Promise<TopicFeed>>();
  const subscriptions = new Set<HubSubscription>();
  let droppedSlowConsumers = 0;
  let closed = false;

  // One timer for all subscribers; a heartbeat comes between heartbeatMs and 1.25 × heartbeatMs of silence.
  const heartbeatTimer = setInterval(
    () => {
      const now = Date.now();
      for (const subscription of subscriptions) if (subscription.idleFor(heartbeatMs, now)) subscription.heartbeat();
    },
    Math.max(10, Math.floor(heartbeatMs / 4)),
  );
  heartbeatTimer.unref();

  // Which map entry a feed came from, so a release never removes a newer feed of the same topic.
  const origins = new WeakMap<TopicFeed, Promise<TopicFeed>>();

  const acquireFeed = async (topic: TopicName): Promise<TopicFeed> => {
    for (;;) {
      let opening = feeds.get(topic);
      if (opening === undefined) {
        const created = TopicFeed.open(engine, topic, batchMaxMessages);
        opening = created;
        feeds.set(topic, created);
        created.catch(() => {
          if (feeds.get(topic) === created) feeds.delete(topic);
        });
      }
      const feed = await opening;
      // The last member may have left (and closed it) while this caller waited for it to open.
      if (feed.closed) {
        if (feeds.get(topic) === opening) feeds.delete(topic);
        continue;
      }
      origins.set(feed, opening);
      feed.members++;
      return feed;
    }
  };

  const releaseFeed = (feed: TopicFeed) => {
    feed.members--;
    if (feed.members > 0) return;
    feed.close();
    if (feeds.get(feed.topic) === origins.get(feed)) feeds.delete(feed.topic);
  };

  /** First offset to deliver, plus a gap event when the position is older than retention. */
  const resolveStart = async (
    feed: TopicFeed,
    from: StreamPosition,
  ): Promise<{ start: number; first: FeedEvent[] }> => {
    const stats = await engine.topicStats(feed.topic);
    let start: number;
    switch (from.kind) {
      case "earliest":
        return { start: stats.firstOffset, first: [] };
      case "latest":
        return { start: stats.nextOffset, first: [] };
      case "after":
        if (!Number.isSafeInteger(from.offset) || from.offset < 0) {
          throw errors.invalidArgument("from", `offset must be a non-negative integer, got ${from.offset}`);
        }
        if (from.offset >= stats.nextOffset) {
          throw errors.invalidArgument(
            "from",
            `offset ${from.offset} is beyond the end of ${feed.topic} (last offset ${stats.nextOffset - 1})`,
          );
        }
        start = from.offset + 1;
        break;
      case "time":
        if (!Number.isFinite(from.timeMs)) throw errors.invalidArgument("from", "time must be a finite number of ms");
        start = await engine.offsetAtTime(feed.topic, from.timeMs);
        break;
      default:
        throw errors.invalidArgument("from", `unknown position ${JSON.stringify(from)}`);
    }
    if (start >= stats.firstOffset) return { start, first: [] };
    const gap: FeedEvent = {
      kind: "gap",
      fromOffset: start,
      firstAvailable: stats.firstOffset,
      lost: stats.firstOffset - start,
    };
    return { start: stats.firstOffset, first: [gap] };
  };

  // One context for every subscription (not an object and two closures per idle stream).
  const subscriptionContext: SubscriptionContext = {
    engine,
    maxBufferBytes,
    batchMaxMessages,
    onDetach: (detached) => {
      subscriptions.delete(detached);
      releaseFeed(detached.feed);
    },
    onSlowConsumer: () => {
      droppedSlowConsumers++;
    },
  };

  return {
    async subscribe(subscribeOptions: FeedSubscribeOptions): Promise<FeedSubscription> {
      if (closed) throw errors.unavailable("HUB_CLOSED", "the server is shutting down; reconnect");
      const { topic, from, signal } = subscribeOptions;
      const filter = compileFilter(subscribeOptions.filter);
      signal.throwIfAborted();
      const feed = await acquireFeed(topic);
      let subscription: HubSubscription;
      try {
        const { start, first } = await resolveStart(feed, from);
        subscription = new HubSubscription(subscriptionContext, feed, filter, start, first);
      } catch (error) {
        releaseFeed(feed);
        throw error;
      }
      subscriptions.add(subscription);
      if (signal.aborted) subscription.end();
      else signal.addEventListener("abort", () => subscription.end(), { once: true });
      void subscription.catchUp();
      return subscription;
    },
    stats: () => ({ topics: feeds.size, subscribers: subscriptions.size, droppedSlowConsumers }),
    async close() {
      closed = true;
      clearInterval(heartbeatTimer);
      for (const subscription of [...subscriptions]) subscription.end();
      for (const opening of feeds.values())
        void opening.then(
          (feed) => feed.close(),
          () => undefined,
        );
      feeds.clear();
    },
  };
}
