// GET /v1/dashboard/overview: one JSON snapshot of a project's topics, subscriptions and live connections.
import type { Engine } from "../../engines/engine.js";
import type { StreamTransport } from "../../observability/index.js";
import { listAll, type StatsHistory } from "./stats-history.js";
import type { TunnelRuleOverview } from "./tunnel-rules-summary.js";

/** Window over which the publish rate is measured. */
const RATE_WINDOW_MS = 60_000;
/**
 * At most this many topics and as many subscriptions get their history in an overview (in name order): with 90
 * samples each, the overview the page polls every 2 s stays in the tens of kilobytes.
 */
const MAX_CHARTED = 24;
/** Retention the engines apply when a topic sets none (Pub/Sub's 7 days). */
const DEFAULT_TOPIC_RETENTION_MS = 7 * 24 * 3600 * 1000;

export interface TopicOverview {
  name: string;
  messages: number;
  bytes: number;
  firstOffset: number;
  nextOffset: number;
  /** Messages per second over up to the last minute of samples; null until two samples exist. */
  publishRatePerSecond: number | null;
  retentionMs: number;
  retentionIsDefault: boolean;
  retentionBytes: number | null;
}

export interface SubscriptionOverview {
  name: string;
  topic: string;
  backlog: number;
  oldestUnackedAgeMs: number;
  deadLettered: number;
  outstanding: number;
  deliveryType: "pull" | "push";
  deadLetterTopic: string | null;
}

export interface DashboardOverview {
  generatedAtMs: number;
  engine: Engine["kind"];
  projects: string[];
  /** The project shown; null when the server has none yet. */
  project: string | null;
  topics: TopicOverview[];
  subscriptions: SubscriptionOverview[];
  /** Live streaming connections by transport, plus open HTTP (TCP) connections. */
  connections: Record<StreamTransport | "http", number>;
  streams: { feeds: number; subscribers: number; droppedSlowConsumers: number };
  /** Tunnel agents and request counts; null when the server runs no tunnel. */
  tunnel: TunnelOverview | null;
  /** Samples of the project's topics and subscriptions over the last `windowMs`; null without a history. */
  history: HistoryOverview | null;
}

/** The server's recent samples (see createStatsHistory), oldest first, for the dashboard's charts. */
export interface HistoryOverview {
  /** Time between two samples. */
  intervalMs: number;
  /** intervalMs × samples kept: how far back a full series reaches. */
  windowMs: number;
  /** Publish rate between each sample and the one before it (the first sample gives none). */
  topics: { name: string; points: { atMs: number; publishRatePerSecond: number }[] }[];
  subscriptions: { name: string; points: { atMs: number; backlog: number; oldestUnackedAgeMs: number }[] }[];
  /** True when the project has more topics or subscriptions than are charted (the first MAX_CHARTED by name). */
  truncated: boolean;
}

/** One connected agent session (the fields of `GET /v1/tunnel/agents`). */
export interface TunnelAgentOverview {
  client_id: string;
  group: string;
  session: string;
  healthy: boolean;
  draining: boolean;
  /** Ejected for a while after repeated UNAVAILABLE answers. */
  ejected: boolean;
  /** Tunnel streams of this session carrying a request now. */
  in_flight: number;
  standby: number;
  upstreams: readonly { name: string; address: string; serving: boolean; detail: string }[];
  /** RFC 3339. */
  connected_since: string;
}

/** The tunnel part of the overview: connected agent sessions and what is in flight. */
export interface TunnelOverview {
  agents: readonly TunnelAgentOverview[];
  /** Requests in flight through the entries, and those waiting for a free tunnel stream. */
  stats: { inFlight: number; pending: number; sessions: number; standby: number; streams: number };
  /** Per agent group (sorted by name): sessions, healthy sessions and tunnel streams in flight. */
  groups: { group: string; agents: number; healthy: number; inFlight: number }[];
  /** The server rules in force, in file order: what routes to each group (or straight to an upstream). */
  rules: TunnelRuleOverview[];
}

export interface OverviewSources {
  engine: Engine;
  streamStats(): { topics: number; subscribers: number; droppedSlowConsumers: number };
  connections(): Record<StreamTransport | "http", number>;
  /** The tunnel's agents, stats and rules, or null without a tunnel. Default: none. */
  tunnel?(): Omit<TunnelOverview, "groups"> | null;
  /** The sampled history behind the charts. Default: none (the overview's `history` is null). */
  history?: StatsHistory;
}

/**
 * Builds overviews. The publish rate comes from nextOffset samples taken when an overview is built
 * (the dashboard polls every 2 s), so an idle server does no work and no topic is watched.
 */
export function createOverviewBuilder(
  sources: OverviewSources,
): (project: string | null) => Promise<DashboardOverview> {
  const { engine } = sources;
  const samples = new Map<string, Array<{ atMs: number; nextOffset: number }>>();

  const publishRate = (topic: string, atMs: number, nextOffset: number): number | null => {
    const series = samples.get(topic) ?? [];
    series.push({ atMs, nextOffset });
    while (series.length > 2 && series[1] !== undefined && atMs - series[1].atMs >= RATE_WINDOW_MS) series.shift();
    samples.set(topic, series);
    const oldest = series[0];
    if (oldest === undefined || series.length < 2 || atMs - oldest.atMs < 500) return null;
    return (nextOffset - oldest.nextOffset) / ((atMs - oldest.atMs) / 1000);
  };

  return async (requested) => {
    const projects = (await engine.listProjects()).sort();
    const project = requested !== null && requested !== "" ? requested : (projects[0] ?? null);
    const generatedAtMs = Date.now();
    const overview: DashboardOverview = {
      generatedAtMs,
      engine: engine.kind,
      projects,
      project,
      topics: [],
      subscriptions: [],
      connections: sources.connections(),
      streams: (({ topics, subscribers, droppedSlowConsumers }) => ({
        feeds: topics,
        subscribers,
        droppedSlowConsumers,
      }))(sources.streamStats()),
      tunnel: withGroups(sources.tunnel?.() ?? null),
      history: null,
    };
    if (project === null) return overview;
    const [topics, subscriptions] = await Promise.all([
      listAll((page) => engine.listTopics(project, page)),
      listAll((page) => engine.listSubscriptions(project, page)),
    ]);
    overview.topics = await Promise.all(
      topics.map(async (topic): Promise<TopicOverview> => {
        const stats = await engine.topicStats(topic.name);
        return {
          name: topic.name,
          messages: stats.messages,
          bytes: stats.bytes,
          firstOffset: stats.firstOffset,
          nextOffset: stats.nextOffset,
          publishRatePerSecond: publishRate(topic.name, generatedAtMs, stats.nextOffset),
          retentionMs: topic.messageRetentionDurationMs ?? DEFAULT_TOPIC_RETENTION_MS,
          retentionIsDefault: topic.messageRetentionDurationMs === null,
          retentionBytes: topic.retentionBytes,
        };
      }),
    );
    overview.subscriptions = await Promise.all(
      subscriptions.map(async (subscription): Promise<SubscriptionOverview> => {
        const stats = await engine.subscriptionStats(subscription.name);
        return {
          name: subscription.name,
          topic: subscription.topic,
          ...stats,
          deliveryType: subscription.pushConfig === null ? "pull" : "push",
          deadLetterTopic: subscription.deadLetterPolicy?.deadLetterTopic ?? null,
        };
      }),
    );
    if (sources.history !== undefined) overview.history = historyOf(sources.history, overview);
    return overview;
  };
}

function historyOf(history: StatsHistory, overview: DashboardOverview): HistoryOverview {
  const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);
  const topics = [...overview.topics].sort(byName).slice(0, MAX_CHARTED);
  const subscriptions = [...overview.subscriptions].sort(byName).slice(0, MAX_CHARTED);
  return {
    intervalMs: history.intervalMs,
    windowMs: history.intervalMs * history.capacity,
    topics: topics.map(({ name }) => {
      const samples = history.topic(name);
      const points = samples.slice(1).map((sample, index) => {
        const previous = samples[index]!;
        const seconds = Math.max(0.001, (sample.atMs - previous.atMs) / 1000);
        return {
          atMs: sample.atMs,
          publishRatePerSecond: round3(Math.max(0, sample.nextOffset - previous.nextOffset) / seconds),
        };
      });
      return { name, points };
    }),
    subscriptions: subscriptions.map(({ name }) => ({ name, points: history.subscription(name) })),
    truncated: overview.topics.length > topics.length || overview.subscriptions.length > subscriptions.length,
  };
}

/** Three decimals are plenty for a chart and keep the JSON short. */
const round3 = (value: number) => Math.round(value * 1000) / 1000;

function withGroups(tunnel: Omit<TunnelOverview, "groups"> | null): TunnelOverview | null {
  if (tunnel === null) return null;
  const groups = new Map<string, TunnelOverview["groups"][number]>();
  for (const agent of tunnel.agents) {
    const group = groups.get(agent.group) ?? { group: agent.group, agents: 0, healthy: 0, inFlight: 0 };
    group.agents += 1;
    if (agent.healthy && !agent.draining && !agent.ejected) group.healthy += 1;
    group.inFlight += agent.in_flight;
    groups.set(agent.group, group);
  }
  return { ...tunnel, groups: [...groups.values()].sort((a, b) => a.group.localeCompare(b.group)) };
}
