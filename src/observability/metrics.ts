// Prometheus metrics (prom-client): counters the transports bump, and gauges read from the engine on scrape.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Engine } from "../engines/engine.js";
import { liveConnections, StreamTransport } from "./connection-registry.js";
import { PagedCounter, PagedHistogram } from "./paged-metrics.js";

/** Most subscriptions whose backlog is exported per scrape (bounds scrape cost and cardinality). */
export const MAX_SCRAPED_SUBSCRIPTIONS = 1000;

/** What the metrics read at scrape time. */
export interface MetricsSources {
  engine: Engine;
  /** Live-stream hub counters. */
  hubStats(): { topics: number; subscribers: number; droppedSlowConsumers: number };
  /** Open TCP connections of the listener. */
  tcpConnections(): number;
}

/** The server's metrics; one registry per server so tests can run several. */
export interface ServerMetrics {
  readonly registry: Registry;
  readonly published: Counter<"topic">;
  /** Recorded through a series per label set (paged-metrics.ts): a few additions per page, not prom-client's hashing. */
  readonly delivered: PagedCounter<"subscription" | "path">;
  /**
   * Seconds from publish to first delivery; `path` is pull, stream (StreamingPull), push, or a
   * live-stream transport (sse, websocket, grpc, chat) for messages sent at the live tail.
   */
  readonly deliveryLatency: PagedHistogram<"path">;
  /** Refused requests (no or bad token) and denied calls (no grant), by transport and reason. */
  readonly authFailures: Counter<"transport" | "reason">;
  /** Requests and connections refused by a limit (`limit`: publish, connections_per_ip, connections_per_principal, subscriptions_per_principal). */
  readonly rateLimited: Counter<"limit">;
  /**
   * Connections closed for their PROXY protocol header, per listener (main, tunnel_http, tunnel_grpc) and reason
   * (missing, malformed, too_large, truncated, timeout, untrusted, checksum). No metric carries a client address:
   * addresses are unbounded; they go to the logs.
   */
  readonly proxyProtocolRejected: Counter<"listener" | "reason">;
  /** Messages sent to live-stream clients (SSE, WebSocket, gRPC Events, chat), per topic and transport. */
  readonly streamSent: PagedCounter<"topic" | "transport">;
  /** Live-stream clients dropped for falling behind (slow consumers), per transport. */
  readonly slowClientsDropped: Counter<"transport">;
  /** Prometheus text exposition. */
  scrape(): Promise<string>;
  readonly contentType: string;
}

export function createServerMetrics(sources: MetricsSources): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "streamgate_" });
  const published = new Counter({
    name: "streamgate_messages_published_total",
    help: "Messages accepted by Publish, per topic",
    labelNames: ["topic"] as const,
    registers: [registry],
  });
  const delivered = new PagedCounter({
    name: "streamgate_messages_delivered_total",
    help: "Messages delivered to subscribers (Pull, StreamingPull, push), per subscription and path",
    labelNames: ["subscription", "path"] as const,
    registers: [registry],
  });
  const deliveryLatency = new PagedHistogram({
    name: "streamgate_publish_to_delivery_seconds",
    help: "Time from publish to a message's first delivery",
    labelNames: ["path"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const streamSent = new PagedCounter({
    name: "streamgate_stream_messages_sent_total",
    help: "Messages sent to live-stream clients (SSE, WebSocket, gRPC Events, chat), per topic and transport",
    labelNames: ["topic", "transport"] as const,
    registers: [registry],
  });
  const slowClientsDropped = new Counter({
    name: "streamgate_slow_clients_dropped_total",
    help: "Live-stream clients dropped for falling behind their buffer limit, per transport",
    labelNames: ["transport"] as const,
    registers: [registry],
  });
  const rateLimited = new Counter({
    name: "streamgate_rate_limited_total",
    help: "Requests and connections refused by a limit (--publish-rate, --max-connections-per-ip, per principal), per limit",
    labelNames: ["limit"] as const,
    registers: [registry],
  });
  const proxyProtocolRejected = new Counter({
    name: "streamgate_proxy_protocol_rejected_total",
    help: "Connections closed for their PROXY protocol header (--proxy-protocol), per listener and reason",
    labelNames: ["listener", "reason"] as const,
    registers: [registry],
  });
  const authFailures = new Counter({
    name: "streamgate_auth_failures_total",
    help: "Requests refused for a missing or invalid token, and calls denied for a missing grant, by transport and reason",
    labelNames: ["transport", "reason"] as const,
    registers: [registry],
  });
  new Gauge({
    name: "streamgate_connections",
    help: "Open connections by transport (tcp = every client connection of the listener)",
    labelNames: ["transport"] as const,
    registers: [registry],
    collect() {
      const counts = liveConnections.counts();
      for (const transport of Object.values(StreamTransport)) this.set({ transport }, counts[transport]);
      this.set({ transport: "tcp" }, sources.tcpConnections());
    },
  });
  new Gauge({
    name: "streamgate_stream_subscribers",
    help: "Live-stream subscribers (SSE, WebSocket, gRPC Events) attached to the hub",
    registers: [registry],
    collect() {
      this.set(sources.hubStats().subscribers);
    },
  });
  new Counter({
    name: "streamgate_slow_consumers_dropped_total",
    help: "Live-stream clients dropped for falling behind their buffer limit",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(sources.hubStats().droppedSlowConsumers);
    },
  });
  const backlog = new Gauge({
    name: "streamgate_subscription_backlog_messages",
    help: "Unacknowledged messages per subscription (Pub/Sub num_undelivered_messages)",
    labelNames: ["subscription"] as const,
    registers: [registry],
  });
  const oldest = new Gauge({
    name: "streamgate_subscription_oldest_unacked_age_seconds",
    help: "Age of the oldest unacknowledged message per subscription",
    labelNames: ["subscription"] as const,
    registers: [registry],
  });
  const deadLettered = new Gauge({
    name: "streamgate_subscription_dead_lettered_messages",
    help: "Messages forwarded to the dead-letter topic since the process started",
    labelNames: ["subscription"] as const,
    registers: [registry],
  });

  const collectSubscriptions = async () => {
    backlog.reset();
    oldest.reset();
    deadLettered.reset();
    let seen = 0;
    for (const project of await sources.engine.listProjects()) {
      let pageToken = "";
      do {
        const page = await sources.engine.listSubscriptions(project, { pageSize: 1000, pageToken });
        for (const subscription of page.items) {
          if (seen++ >= MAX_SCRAPED_SUBSCRIPTIONS) return;
          const stats = await sources.engine.subscriptionStats(subscription.name);
          backlog.set({ subscription: subscription.name }, stats.backlog);
          oldest.set({ subscription: subscription.name }, stats.oldestUnackedAgeMs / 1000);
          deadLettered.set({ subscription: subscription.name }, stats.deadLettered);
        }
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
    }
  };

  return {
    registry,
    published,
    delivered,
    deliveryLatency,
    authFailures,
    rateLimited,
    proxyProtocolRejected,
    streamSent,
    slowClientsDropped,
    contentType: registry.contentType,
    async scrape() {
      await collectSubscriptions();
      return registry.metrics();
    },
  };
}

/** Metrics of the tunnel server (requests per rule, group, agent, gRPC method and status). */
export interface TunnelMetrics {
  readonly requests: Counter<"rule" | "group" | "agent" | "grpc_method" | "status">;
  readonly inFlight: Gauge<"group">;
  readonly bytes: Counter<"group" | "direction">;
  readonly duration: Histogram<"rule" | "group">;
  readonly cancels: Counter<"group">;
  readonly deadlineMisses: Counter<"group">;
}

/**
 * Registers the tunnel metrics on `registry`. Labels stay bounded: `agent` is the agent's client_id,
 * `grpc_method` is only set for gRPC (the caller caps distinct values), `status` is a gRPC code name
 * or an HTTP status.
 */
export function createTunnelMetrics(
  registry: Registry,
  sources: { agentsByGroup(): Map<string, number> },
): TunnelMetrics {
  new Gauge({
    name: "streamgate_tunnel_agents",
    help: "Connected tunnel agent sessions per group",
    labelNames: ["group"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [group, count] of sources.agentsByGroup()) this.set({ group }, count);
    },
  });
  return {
    requests: new Counter({
      name: "streamgate_tunnel_requests_total",
      help: "Requests through the tunnel entries, by rule, group, agent, gRPC method and status",
      labelNames: ["rule", "group", "agent", "grpc_method", "status"] as const,
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: "streamgate_tunnel_in_flight",
      help: "Tunnel requests in flight (waiting for or using a tunnel stream), per group",
      labelNames: ["group"] as const,
      registers: [registry],
    }),
    bytes: new Counter({
      name: "streamgate_tunnel_bytes_total",
      help: "Body bytes through the tunnel; direction in = client to backend, out = backend to client",
      labelNames: ["group", "direction"] as const,
      registers: [registry],
    }),
    duration: new Histogram({
      name: "streamgate_tunnel_request_duration_seconds",
      help: "Time from a request's arrival at an entry to the end of its response",
      labelNames: ["rule", "group"] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
    cancels: new Counter({
      name: "streamgate_tunnel_cancels_total",
      help: "Tunnel requests the client cancelled before the response ended",
      labelNames: ["group"] as const,
      registers: [registry],
    }),
    deadlineMisses: new Counter({
      name: "streamgate_tunnel_deadline_exceeded_total",
      help: "Tunnel requests that ran out of their deadline",
      labelNames: ["group"] as const,
      registers: [registry],
    }),
  };
}
