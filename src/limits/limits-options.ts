// Options of the limits component: each limit, its default and why; 0 turns a limit off.

export interface LimitsOptions {
  /**
   * HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: streams one connection may have open at once; more are
   * refused with REFUSED_STREAM (gRPC clients retry them or see UNAVAILABLE). Default 1000: ten
   * times the 100 clients expect to multiplex, and as many as Cloud Run sends one instance at its
   * highest concurrency over a shared connection; without a bound one connection could open
   * streams until memory runs out.
   */
  maxStreamsPerConnection: number;
  /**
   * Open TCP connections from one client IP (IPv6: one /64); more are refused at accept (HTTP/1.1 gets 429, h2c a
   * GOAWAY, TLS a close). Default 10 000: a proxy in front (nginx, an ingress, a load balancer) makes
   * every client share its address, so the default must hold one instance's fan-out; it still keeps
   * one address from taking every file descriptor. 0 = no limit.
   */
  maxConnectionsPerIp: number;
  /**
   * Long-lived streams one principal may have open: SSE and long-poll responses, WebSocket
   * connections and streaming RPCs (Events, ChatStream, StreamingPull, …). More answer 429 /
   * RESOURCE_EXHAUSTED. Default 1000. 0 = no limit.
   */
  maxConnectionsPerPrincipal: number;
  /**
   * Live subscriptions one principal may hold across all its connections (SSE, each WebSocket or
   * Events/Connect subscribe, Events/Subscribe, ChatStream, StreamingPull). Default 1000. 0 = no limit.
   */
  maxSubscriptionsPerPrincipal: number;
  /**
   * Messages per second one principal may publish, summed over every transport (token bucket).
   * Default 10 000: far above an interactive client, low enough that one principal cannot take the
   * whole store's write rate from the others. 0 = no limit.
   */
  publishRate: number;
  /** Messages one principal may publish at once after being idle (bucket size). Default 20 000 (2 s at the default rate). */
  publishBurst: number;
}

/** The documented defaults; see README "Limits". */
export const defaultLimitsOptions: LimitsOptions = {
  maxStreamsPerConnection: 1000,
  maxConnectionsPerIp: 10_000,
  maxConnectionsPerPrincipal: 1000,
  maxSubscriptionsPerPrincipal: 1000,
  publishRate: 10_000,
  publishBurst: 20_000,
};

/** Which limit refused a request; the `limit` label of `streamgate_rate_limited_total`. */
export const LimitName = {
  /** Publish rate per principal. */
  publish: "publish",
  /** Connections per client IP. */
  connectionsPerIp: "connections_per_ip",
  /** Long-lived streams per principal. */
  connectionsPerPrincipal: "connections_per_principal",
  /** Live subscriptions per principal. */
  subscriptionsPerPrincipal: "subscriptions_per_principal",
} as const;
export type LimitName = (typeof LimitName)[keyof typeof LimitName];

/** Problems with the limit options, as `option: message` strings (empty when valid). */
export function checkLimitsOptions(options: LimitsOptions): string[] {
  const problems: string[] = [];
  const isCount = (value: number) => Number.isInteger(value) && value >= 0;
  if (!Number.isInteger(options.maxStreamsPerConnection) || options.maxStreamsPerConnection < 1) {
    problems.push("maxStreamsPerConnection: must be an integer >= 1");
  }
  for (const option of ["maxConnectionsPerIp", "maxConnectionsPerPrincipal", "maxSubscriptionsPerPrincipal"] as const) {
    if (!isCount(options[option])) problems.push(`${option}: must be an integer >= 0 (0 = no limit)`);
  }
  if (!Number.isFinite(options.publishRate) || options.publishRate < 0) {
    problems.push("publishRate: must be >= 0 (0 = no limit)");
  }
  if (options.publishRate > 0 && !(Number.isInteger(options.publishBurst) && options.publishBurst >= 1)) {
    problems.push("publishBurst: must be an integer >= 1 when publishRate is set");
  }
  return problems;
}
