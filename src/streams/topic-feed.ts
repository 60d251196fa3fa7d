// The one shared reader of a topic's live tail: watches the topic, reads each new page once, fans it out.
import type { StoredMessage, TopicName } from "../broker/types.js";
import type { Engine } from "../engines/engine.js";
import { StreamgateError } from "../errors/index.js";

/** What a feed needs from a subscriber at the live tail. */
export interface LiveSubscriber {
  /** Takes a page read once for everyone; must not await (fan-out is synchronous). */
  offerLive(page: readonly StoredMessage[]): void;
  fail(error: StreamgateError): void;
}

/** Largest page the shared reader asks for, in bytes (one page is shared, not per client). */
const READ_MAX_BYTES = 4 * 1024 * 1024;

/**
 * One per topic with subscribers. `cursor` is the next offset the shared reader will read; it
 * advances in the same synchronous step that hands the page to every live subscriber, so a
 * subscriber that joins when its own next offset is >= `cursor` misses nothing and (comparing
 * offsets) receives nothing twice.
 */
export class TopicFeed {
  cursor = 0;
  /** Subscribers at the tail. */
  readonly live = new Set<LiveSubscriber>();
  /** Subscribers of any state (catching up or live); the feed closes at zero. */
  members = 0;
  private target = 0;
  private reading = false;
  /** True once the last member left; a closed feed never reads again. */
  closed = false;
  private unwatch: () => void = () => undefined;

  private constructor(
    readonly topic: TopicName,
    private readonly engine: Engine,
    private readonly batchMaxMessages: number,
  ) {}

  /** Opens the feed at the topic's current end. @throws NOT_FOUND for an unknown topic. */
  static async open(engine: Engine, topic: TopicName, batchMaxMessages: number): Promise<TopicFeed> {
    await engine.getTopic(topic);
    const feed = new TopicFeed(topic, engine, batchMaxMessages);
    // Watch first, then read the end: a publish in between is either counted in the end or notified.
    feed.unwatch = engine.watchTopic(topic, (nextOffset) => feed.onAppend(nextOffset));
    try {
      const stats = await engine.topicStats(topic);
      feed.cursor = Math.max(feed.cursor, stats.nextOffset);
      feed.target = Math.max(feed.target, stats.nextOffset);
    } catch (error) {
      feed.close();
      throw error;
    }
    feed.pump();
    return feed;
  }

  close(): void {
    this.closed = true;
    this.unwatch();
    this.live.clear();
  }

  private onAppend(nextOffset: number): void {
    if (nextOffset > this.target) this.target = nextOffset;
    this.pump();
  }

  private pump(): void {
    if (this.reading || this.closed || this.cursor >= this.target) return;
    this.reading = true;
    this.readTail()
      .catch((error: unknown) => {
        const failure = StreamgateError.from(error);
        for (const subscriber of [...this.live]) subscriber.fail(failure);
      })
      .finally(() => {
        this.reading = false;
        if (!this.closed && this.cursor < this.target) this.pump();
      });
  }

  private async readTail(): Promise<void> {
    while (!this.closed && this.cursor < this.target) {
      const page = await this.engine.readTopic(this.topic, this.cursor, {
        maxMessages: this.batchMaxMessages,
        maxBytes: READ_MAX_BYTES,
      });
      if (this.closed) return;
      if (page.length === 0) {
        // Retention removed everything up to the end; subscribers see the hole as a gap on the next message.
        const stats = await this.engine.topicStats(this.topic);
        this.cursor = Math.max(this.cursor, stats.firstOffset);
        // Nothing readable below the target: stop here rather than spin; the next publish wakes the reader.
        this.target = Math.min(this.target, this.cursor);
        return;
      }
      this.cursor = page[page.length - 1]!.offset + 1;
      for (const subscriber of this.live) subscriber.offerLive(page);
    }
  }
}
