// Background upkeep of the embedded engine: retention, purging deleted topics, expirations.
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import type { EmbeddedContext } from "./embedded-context.js";
import type { SnapshotCatalog } from "./snapshot-catalog.js";
import type { SubscriptionCatalog } from "./subscription-catalog.js";
import type { TopicCatalog, TopicState } from "./topic-catalog.js";

/**
 * Messages deleted per transaction. Bounded so one sweep step holds the event loop (and the
 * SQLite write lock) for milliseconds, not seconds, however far behind retention is.
 */
const TRIM_CHUNK = 5000;

/** Runs the sweep on an unref'd interval; one sweep at a time; `stop()` waits for the running one. */
export class MaintenanceSweeper {
  private interval: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly context: EmbeddedContext,
    private readonly topics: TopicCatalog,
    private readonly subscriptions: SubscriptionCatalog,
    private readonly snapshots: SnapshotCatalog,
  ) {}

  start(): void {
    this.interval = setInterval(() => void this.run(), this.context.options.retentionCheckIntervalMs);
    this.interval.unref();
  }

  /** Runs one sweep now, or joins the one in progress. */
  run(): Promise<void> {
    this.running ??= this.sweep().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.interval !== null) clearInterval(this.interval);
    this.interval = null;
    await this.running;
  }

  private async sweep(): Promise<void> {
    try {
      for (const topic of this.topics.all()) await this.trimTopic(topic);
      await this.purgeDeletedTopics();
      if (this.stopped) return;
      this.trimSubscriptions();
      this.expireSubscriptions();
      this.snapshots.expire();
      this.subscriptions.persistActivity();
    } catch (error) {
      // A failed sweep (disk full, closed during a step) is retried at the next interval.
      if (!this.stopped) process.emitWarning(`streamgate: embedded engine maintenance failed: ${String(error)}`);
    }
  }

  /** Deletes messages past the topic's age retention or beyond its size cap, a chunk at a time. */
  private async trimTopic(topic: TopicState): Promise<void> {
    const { messages, options } = this.context;
    while (!this.stopped && !topic.deleted && topic.firstOffset < topic.nextOffset) {
      const retentionMs = topic.config.messageRetentionDurationMs ?? options.defaultRetentionMs;
      let cutoff = messages.offsetAtTime(topic, this.context.now() - retentionMs);
      if (topic.config.retentionBytes !== null) {
        cutoff = Math.max(cutoff, messages.sizeCutoff(topic, topic.config.retentionBytes, TRIM_CHUNK));
      }
      cutoff = Math.min(cutoff, topic.firstOffset + TRIM_CHUNK);
      if (cutoff <= topic.firstOffset) return;
      this.topics.trim(topic, cutoff);
      await yieldToEventLoop();
    }
  }

  private async purgeDeletedTopics(): Promise<void> {
    const { catalog, messages } = this.context;
    for (const topicId of catalog.purgeList()) {
      while (!this.stopped) {
        const deleted = messages.transaction(() => messages.purgeChunk(topicId, TRIM_CHUNK));
        if (deleted < TRIM_CHUNK) {
          catalog.purgeDone(topicId);
          break;
        }
        await yieldToEventLoop();
      }
    }
  }

  /** Drops unacked messages older than each subscription's retention, and persists floors moved by filters. */
  private trimSubscriptions(): void {
    const now = this.context.now();
    for (const { topic, config, dispatcher } of this.subscriptions.all()) {
      if (topic === null || config.detached) continue;
      dispatcher.dropBefore(this.context.messages.offsetAtTime(topic, now - config.messageRetentionDurationMs));
      dispatcher.persistCurrentFloor();
    }
  }

  /** Deletes subscriptions idle past their expiration policy's ttl. */
  private expireSubscriptions(): void {
    const now = this.context.now();
    for (const { config, dispatcher } of this.subscriptions.all()) {
      if (config.expirationTtlMs === null || dispatcher.hasConsumers) continue;
      if (now - dispatcher.lastActiveMs >= config.expirationTtlMs) this.subscriptions.delete(config.name);
    }
  }
}
