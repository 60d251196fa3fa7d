// The tunnel server: agent endpoint (on the main port), public entries, rules reload, registry, drain.
import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import type { Registry } from "prom-client";
import { Code, StreamgateError } from "../../errors/index.js";
import {
  type AnyRequest,
  type AnyResponse,
  type Listener,
  type ListenerOptions,
  type ProxyHeaderRejection,
  refuse,
  type TrustedProxies,
} from "../../http/index.js";
import type { Logger } from "../../observability/index.js";
import { createTunnelMetrics, type TunnelMetrics } from "../../observability/metrics.js";
import { findAgentGrant, groupAllowed, parseServerRules, type ServerRules, watchRulesFile } from "../rules/index.js";
import { createUpstreamForwarder, DEFAULT_MAX_MESSAGE_BYTES, type UpstreamForwarder } from "../upstream/index.js";
import { type ControlHandle, handleAgentCall } from "./agent-endpoint.js";
import { AgentRegistry, defaultEjectionOptions, type EjectionOptions } from "./agent-registry.js";
import type { AgentSession } from "./agent-session.js";
import type { DirectForwarder, ProxyContext } from "./proxy-request.js";
import { type AgentInfo, handleTunnelAdmin } from "./tunnel-admin.js";
import { createGrpcEntry, createHttpEntry } from "./tunnel-entries.js";
import type { TunnelStream } from "./tunnel-stream.js";

export interface TunnelServerOptions {
  /** The server rules file (rules and agent tokens); reloaded on change. */
  rulesPath: string;
  /** Address the entries bind. */
  host: string;
  /** HTTP entry port (HTTP/1.1, h2c, WebSocket); 0 picks a free one. Default 8001. */
  httpPort: number;
  /** gRPC entry port (HTTP/2); 0 picks a free one. Default 8002. */
  grpcPort: number;
  /** Certificate for the entries (same as the main port's), or null for cleartext. */
  tls: ListenerOptions["tls"];
  /** HTTP/2 streams one entry client connection may have open at once. Default 10 000. */
  maxStreamsPerConnection?: number;
  /** Largest gRPC message either way, in bytes. Default 4 MiB (gRPC's default). */
  maxMessageBytes?: number;
  /** Ask an agent session to rotate after this long, in ms; 0 never. Default 55 min (Cloud Run cuts requests at 60). */
  rotateAfterMs?: number;
  /** Control-stream heartbeat interval, in ms; 3 missed ones end a session. Default 10 000. */
  heartbeatIntervalMs?: number;
  /** Standby streams each agent keeps open ahead of requests. Default 8. */
  standbyStreams?: number;
  /** Longest a request waits for a free tunnel stream before UNAVAILABLE, in ms. Default 2 000. */
  standbyWaitMs?: number;
  /** HTTP/2 PING interval on the entries' idle connections, in ms. Default 15 000. */
  pingIntervalMs?: number;
  /** Stream limit of agents that announce none. Default 10 000. */
  defaultAgentMaxStreams?: number;
  ejection?: EjectionOptions;
  logger: Logger;
  /** Where to register the tunnel metrics; none when null. */
  metricsRegistry: Registry | null;
  /**
   * Forwarder for rules that target a direct upstream (no agent). Default: the agent's upstream forwarders
   * (gRPC, HTTP/1.1, HTTP/2, WebSocket; health probes as configured). Null: such requests get UNIMPLEMENTED.
   */
  direct?: DirectForwarder | null;
  /** Checks that the current request may use the admin endpoints; returns the refusal, or null. Default: all allowed. */
  authorizeAdmin?: () => StreamgateError | null;
  /** Proxies in front of the entries whose PROXY / forwarding headers are believed. Default: none. */
  trustedProxies?: TrustedProxies;
  /** PROXY protocol on both entries (needs trustedProxies); `onRejected` gets the entry ("tunnel_http", "tunnel_grpc"). Default: off. */
  proxyProtocol?: { timeoutMs: number; onRejected?: (entry: string, reason: ProxyHeaderRejection) => void };
}

/** Counts of everything the tunnel server holds; all return to 0 when idle (see `stats()`). */
export interface TunnelStats {
  /** Registered agent sessions. */
  sessions: number;
  /** Standby streams ready for requests. */
  standby: number;
  /** Open agent Stream calls (standby or busy). */
  streams: number;
  /** Requests being served by the entries. */
  inFlight: number;
  /** Requests waiting for a free tunnel stream. */
  pending: number;
}

export interface TunnelServer {
  /** Binds both entries. */
  listen(): Promise<{ http: EntryAddress; grpc: EntryAddress }>;
  /** The entries' bound addresses once listening, else null. */
  addresses(): { http: EntryAddress; grpc: EntryAddress } | null;
  /** Serves one `/streamgate.tunnel.v1.Tunnel/*` call of the main port (HTTP/2 only). */
  handleAgentCall(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void;
  /** Answers `/v1/tunnel/*` admin requests on the main port; false when `path` is not one. */
  handleAdmin(request: AnyRequest, response: AnyResponse, path: string): Promise<boolean>;
  /** The rules in force. */
  rules(): ServerRules;
  /** Connected agent sessions, for the dashboard and `/v1/tunnel/agents`. */
  agents(): AgentInfo[];
  stats(): TunnelStats;
  /** Open client connections of the entries. */
  connections(): number;
  /** Drain: entries stop accepting, agents are told, in-flight requests get up to `graceMs`. */
  drain(graceMs: number): Promise<void>;
  close(): Promise<void>;
}

export interface EntryAddress {
  host: string;
  port: number;
  url: string;
}

export function createTunnelServer(options: TunnelServerOptions): TunnelServer {
  const { logger } = options;
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? 10_000;
  const registry = new AgentRegistry(options.ejection ?? defaultEjectionOptions);
  const streams = new Set<TunnelStream>();
  const controls = new Map<AgentSession, ControlHandle>();
  const inFlight = new Set<AbortController>();
  const pending = { count: 0 };
  let draining = false;
  let closed = false;
  let bound: { http: EntryAddress; grpc: EntryAddress } | null = null;

  // Direct upstream targets reuse the agent's forwarders; their health probes follow the rules in force.
  const upstreams: UpstreamForwarder | null =
    options.direct === undefined ? createUpstreamForwarder({ maxMessageBytes }) : null;
  const directUpstreams = (rules: ServerRules) =>
    rules.rules.flatMap((rule) => (rule.target.kind === "upstream" ? [rule.target.upstream] : []));
  const watcher = watchRulesFile(options.rulesPath, parseServerRules, {
    onChange(rules) {
      logger.info({ rules: rules.rules.length, agents: rules.agents.length }, "tunnel rules reloaded");
      upstreams?.setUpstreams(directUpstreams(rules));
      revokeSessions(rules);
    },
    onError(error) {
      logger.error({ err: error }, "tunnel rules file has errors; keeping the previous rules");
    },
  });
  for (const warning of watcher.current().warnings) logger.warn(`tunnel rules: ${warning}`);
  const rules = () => watcher.current();
  upstreams?.setUpstreams(directUpstreams(watcher.current()));

  const metrics: TunnelMetrics | null =
    options.metricsRegistry === null
      ? null
      : createTunnelMetrics(options.metricsRegistry, {
          agentsByGroup: () => new Map(registry.groupNames().map((group) => [group, registry.members(group).length])),
        });

  const proxy: ProxyContext = {
    rules,
    registry,
    metrics,
    maxMessageBytes,
    standbyWaitMs: options.standbyWaitMs ?? 2_000,
    direct:
      upstreams === null
        ? (options.direct ?? null)
        : (upstream, exchange, sink) => upstreams.forward(exchange, upstream, sink),
    inFlight,
    pending,
  };
  const entryOptions = {
    host: options.host,
    tls: options.tls,
    pingIntervalMs: options.pingIntervalMs ?? 15_000,
    maxStreamsPerConnection: options.maxStreamsPerConnection ?? 10_000,
    draining: () => draining || closed,
    ...(options.trustedProxies === undefined ? {} : { trustedProxies: options.trustedProxies }),
  };
  const entryProxyProtocol = (entry: string): Pick<ListenerOptions, "proxyProtocol"> => {
    const proxyProtocol = options.proxyProtocol;
    if (proxyProtocol === undefined) return {};
    return {
      proxyProtocol: {
        timeoutMs: proxyProtocol.timeoutMs,
        onRejected: (reason) => proxyProtocol.onRejected?.(entry, reason),
      },
    };
  };
  const httpEntry = createHttpEntry(proxy, {
    ...entryOptions,
    port: options.httpPort,
    logger: logger.child({ entry: "http" }),
    ...entryProxyProtocol("tunnel_http"),
  });
  const grpcEntry = createGrpcEntry(proxy, {
    ...entryOptions,
    port: options.grpcPort,
    logger: logger.child({ entry: "grpc" }),
    ...entryProxyProtocol("tunnel_grpc"),
  });
  const entries: Listener[] = [httpEntry, grpcEntry];

  const agentContext = {
    options: {
      heartbeatIntervalMs,
      standbyStreams: options.standbyStreams ?? 8,
      rotateAfterMs: options.rotateAfterMs ?? 55 * 60_000,
      maxFrameBytes: maxMessageBytes + 64 * 1024,
      defaultMaxStreams: options.defaultAgentMaxStreams ?? 10_000,
      firstFrameTimeoutMs: 10_000,
    },
    rules,
    registry,
    logger,
    draining: () => draining || closed,
    streams,
    controls,
    sessionsChanged: () => undefined,
  };

  const agents = (): AgentInfo[] =>
    registry.all().map((session) => ({
      client_id: session.clientId,
      group: session.group,
      session: session.id,
      version: session.agentVersion,
      healthy: session.healthy,
      draining: session.draining,
      ejected: registry.isEjected(session),
      in_flight: session.inFlight,
      standby: session.standbyCount,
      reuse_streams: session.reuseStreams,
      streams_attached: session.attached,
      upstreams: session.upstreams.map((upstream) => ({
        name: upstream.name,
        address: upstream.address,
        serving: upstream.serving,
        detail: upstream.detail,
      })),
      connected_since: new Date(session.connectedAtMs).toISOString(),
    }));

  const shutdownAll = (error: StreamgateError | null) => {
    for (const control of [...controls.values()]) control.close(error);
    for (const stream of [...streams]) stream.destroy();
    for (const request of [...inFlight]) request.abort();
  };

  return {
    async listen() {
      const scheme = options.tls === null ? "http" : "https";
      const [http, grpc] = await Promise.all([httpEntry.listen(), grpcEntry.listen()]);
      const url = (address: { host: string; port: number }) => {
        const host = address.host === "0.0.0.0" || address.host === "::" ? "127.0.0.1" : address.host;
        return `${scheme}://${host.includes(":") ? `[${host}]` : host}:${address.port}`;
      };
      logger.info({ httpPort: http.port, grpcPort: grpc.port }, "tunnel entries listening");
      bound = { http: { ...http, url: url(http) }, grpc: { ...grpc, url: url(grpc) } };
      return bound;
    },
    addresses: () => bound,
    handleAgentCall(stream, headers) {
      if (closed) {
        refuse(
          { stream, headers },
          new StreamgateError(Code.UNAVAILABLE, "the tunnel server is shutting down; the agent reconnects elsewhere", {
            reason: "TUNNEL_CLOSING",
          }),
        );
        return;
      }
      handleAgentCall(stream, headers, agentContext);
    },
    handleAdmin: (request, response, path) =>
      handleTunnelAdmin(request, response, path, {
        rules,
        agents,
        stats: () => stats(),
        authorize: options.authorizeAdmin ?? (() => null),
      }),
    rules,
    agents,
    stats,
    connections: () => entries.reduce((sum, entry) => sum + entry.connections(), 0),
    async drain(graceMs) {
      if (draining || closed) return;
      draining = true;
      for (const entry of entries) entry.stopAccepting();
      for (const control of [...controls.values()]) control.drain("the server is shutting down");
      const deadline = Date.now() + graceMs;
      while (Date.now() < deadline && (inFlight.size > 0 || controls.size > 0)) {
        for (const entry of entries) entry.closeIdle();
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      await this.close();
    },
    async close() {
      if (closed) return;
      closed = true;
      watcher.close();
      upstreams?.close();
      shutdownAll(
        new StreamgateError(Code.UNAVAILABLE, "the tunnel server is shutting down", {
          reason: "TUNNEL_SERVER_DRAINING",
        }),
      );
      for (const entry of entries) entry.destroy();
    },
  };

  /** Ends the sessions whose token the new rules no longer know, or no longer allow into their group. */
  function revokeSessions(next: ServerRules): void {
    for (const [session, control] of [...controls]) {
      const grant = findAgentGrant(next, session.token);
      if (grant !== null && groupAllowed(grant, session.group)) continue;
      logger.warn(
        { agent: session.clientId, group: session.group },
        "tunnel rules changed: agent token no longer allowed",
      );
      control.close(
        grant === null
          ? new StreamgateError(Code.UNAUTHENTICATED, "the agent token was removed from the tunnel rules", {
              reason: "TUNNEL_BAD_TOKEN",
            })
          : new StreamgateError(Code.PERMISSION_DENIED, `the agent token may no longer join group ${session.group}`, {
              reason: "TUNNEL_GROUP_DENIED",
            }),
      );
    }
  }

  function stats(): TunnelStats {
    let standby = 0;
    for (const session of registry.all()) standby += session.standbyCount;
    return { sessions: registry.size, standby, streams: streams.size, inFlight: inFlight.size, pending: pending.count };
  }
}
