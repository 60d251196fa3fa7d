// watchTopic on the JetStream engine: one NATS watch per topic stream, shared by its listeners, and publish notifications.
import type { JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { type Naming, watchStream } from "./topic-log.js";

interface Watcher {
  listeners: Set<(nextOffset: number) => void>;
  stop: () => void;
}

/**
 * Topic listeners by stream tag. A stream is watched (core NATS subscription plus its state) while
 * it has a listener; publishes through this instance notify at once, without waiting for the watch.
 */
export class TopicWatchers {
  private readonly watchers = new Map<string, Watcher>();
  /** The highest next offset announced per tag: listeners only ever hear it grow. */
  private readonly lastNotified = new Map<string, number>();

  constructor(
    private readonly connection: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly naming: Naming,
  ) {}

  /** Adds a listener of the stream `tag`; the returned function removes it (the last one stops the watch). */
  watch(tag: string, listener: (nextOffset: number) => void): () => void {
    let watcher = this.watchers.get(tag);
    if (watcher === undefined) {
      const stop = watchStream(this.connection, this.jsm, this.naming, tag, (next) => this.notify(tag, next));
      watcher = { listeners: new Set(), stop };
      this.watchers.set(tag, watcher);
    }
    const entry = watcher;
    entry.listeners.add(listener);
    return () => {
      entry.listeners.delete(listener);
      if (entry.listeners.size === 0 && this.watchers.get(tag) === entry) {
        entry.stop();
        this.watchers.delete(tag);
      }
    };
  }

  /** Tells the stream's listeners its next offset, when it is higher than any told before. */
  notify(tag: string, nextOffset: number): void {
    if ((this.lastNotified.get(tag) ?? 0) >= nextOffset) return;
    this.lastNotified.set(tag, nextOffset);
    for (const listener of [...(this.watchers.get(tag)?.listeners ?? [])]) {
      try {
        listener(nextOffset);
      } catch (error) {
        process.emitWarning(`streamgate: a watchTopic listener threw: ${String(error)}`);
      }
    }
  }

  /** Stops every watch (the engine closes). */
  stopAll(): void {
    for (const watcher of this.watchers.values()) watcher.stop();
    this.watchers.clear();
  }
}
