// The dashboard's history: samples every topic's and subscription's stats on a timer into bounded rings (15 min by default).
import type { Page, PageRequest } from "../../broker/types.js";
import type { Engine } from "../../engines/engine.js";
import { createSampleRing, type SampleRing } from "./sample-ring.js";

/** One topic sample: where the log's end was at that moment. */
export interface TopicSample {
  atMs: number;
  nextOffset: number;
}

/** One subscription sample. */
export interface SubscriptionSample {
  atMs: number;
  backlog: number;
  oldestUnackedAgeMs: number;
}

export interface StatsHistoryOptions {
  engine: Engine;
  /** Time between two samples. Default 10 000 ms (with 90 samples: the last 15 minutes). */
  intervalMs?: number;
  /** Samples kept per topic or subscription. Default 90. */
  capacity?: number;
  /**
   * Topics plus subscriptions sampled at most, over all projects; resources past it get no history, so memory is
   * bounded by maxSeries × capacity samples. Default 5 000.
   */
  maxSeries?: number;
}

export interface StatsHistory {
  readonly intervalMs: number;
  readonly capacity: number;
  /** Samples of `topic` (full name), oldest first; empty when it has none. */
  topic(name: string): TopicSample[];
  /** Samples of `subscription` (full name), oldest first. */
  subscription(name: string): SubscriptionSample[];
  /** Topic and subscription series held now (at most maxSeries). */
  seriesCount(): number;
  /** Takes one sample of everything now (the timer calls it; tests may too). Never rejects. */
  sampleNow(): Promise<void>;
  /** Starts the timer (a first sample at once). */
  start(): void;
  /** Stops the timer and waits for a sample in progress. */
  close(): Promise<void>;
}

export const DEFAULT_SAMPLE_INTERVAL_MS = 10_000;
export const DEFAULT_SAMPLE_CAPACITY = 90;
const DEFAULT_MAX_SERIES = 5_000;

/**
 * Creates the history. It reads the engine's existing counters (topicStats, subscriptionStats), so sampling costs
 * one stats call per resource per interval; a resource that no longer exists loses its series at the next sample.
 */
export function createStatsHistory(options: StatsHistoryOptions): StatsHistory {
  const { engine } = options;
  const intervalMs = options.intervalMs ?? DEFAULT_SAMPLE_INTERVAL_MS;
  const capacity = options.capacity ?? DEFAULT_SAMPLE_CAPACITY;
  const maxSeries = options.maxSeries ?? DEFAULT_MAX_SERIES;
  if (!Number.isFinite(intervalMs) || intervalMs < 10) {
    throw new RangeError(`dashboard sample interval must be >= 10 ms, got ${intervalMs}`);
  }
  const topics = new Map<string, SampleRing<TopicSample>>();
  const subscriptions = new Map<string, SampleRing<SubscriptionSample>>();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let closed = false;

  const series = <T>(map: Map<string, SampleRing<T>>, name: string): SampleRing<T> | undefined => {
    let ring = map.get(name);
    if (ring === undefined && topics.size + subscriptions.size < maxSeries) {
      ring = createSampleRing<T>(capacity);
      map.set(name, ring);
    }
    return ring;
  };

  const sampleOnce = async () => {
    const seenTopics = new Set<string>();
    const seenSubscriptions = new Set<string>();
    for (const project of await engine.listProjects()) {
      if (closed) return;
      const [topicList, subscriptionList] = await Promise.all([
        listAll((page) => engine.listTopics(project, page)),
        listAll((page) => engine.listSubscriptions(project, page)),
      ]);
      await Promise.all([
        ...topicList.map(async ({ name }) => {
          const stats = await engine.topicStats(name).catch(() => null);
          if (stats === null) return;
          seenTopics.add(name);
          series(topics, name)?.push({ atMs: Date.now(), nextOffset: stats.nextOffset });
        }),
        ...subscriptionList.map(async ({ name }) => {
          const stats = await engine.subscriptionStats(name).catch(() => null);
          if (stats === null) return;
          seenSubscriptions.add(name);
          series(subscriptions, name)?.push({
            atMs: Date.now(),
            backlog: stats.backlog,
            oldestUnackedAgeMs: stats.oldestUnackedAgeMs,
          });
        }),
      ]);
    }
    for (const name of topics.keys()) if (!seenTopics.has(name)) topics.delete(name);
    for (const name of subscriptions.keys()) if (!seenSubscriptions.has(name)) subscriptions.delete(name);
  };

  const sampleNow = (): Promise<void> => {
    // One sample at a time: a slow engine skips ticks rather than piling them up.
    running ??= sampleOnce()
      .catch(() => undefined)
      .finally(() => {
        running = undefined;
      });
    return running;
  };

  const tick = () => {
    void sampleNow().then(() => {
      if (!closed) {
        timer = setTimeout(tick, intervalMs);
        timer.unref();
      }
    });
  };

  return {
    intervalMs,
    capacity,
    topic: (name) => topics.get(name)?.values() ?? [],
    subscription: (name) => subscriptions.get(name)?.values() ?? [],
    seriesCount: () => topics.size + subscriptions.size,
    sampleNow,
    start() {
      if (closed || timer !== undefined || running !== undefined) return;
      tick();
    },
    async close() {
      closed = true;
      clearTimeout(timer);
      await running;
      topics.clear();
      subscriptions.clear();
    },
  };
}

/** At most this many topics / subscriptions of one project are sampled or listed; the dashboard is not a listing API. */
const MAX_ITEMS_PER_PROJECT = 1_000;

/** Every item of a paged listing, up to MAX_ITEMS_PER_PROJECT. */
export async function listAll<T>(list: (page: PageRequest) => Promise<Page<T>>): Promise<T[]> {
  const items: T[] = [];
  let pageToken = "";
  do {
    const page = await list({ pageSize: 1000, pageToken });
    items.push(...page.items);
    pageToken = page.nextPageToken;
  } while (pageToken !== "" && items.length < MAX_ITEMS_PER_PROJECT);
  return items.slice(0, MAX_ITEMS_PER_PROJECT);
}
