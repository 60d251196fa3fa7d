// The shapes of parsed tunnel rules (server and agent files) and of the request facts they match on.

/**
 * What the rules look at in a request. The server fills it from the incoming request; the agent from
 * the tunnel's `RequestHead`.
 */
export interface RequestFacts {
  /** `:authority`, or `Host` for HTTP/1.1, as received (may carry a port; any case). */
  authority: string;
  /** Request path as received, with the query string, e.g. `/api/items?x=1` or `/pkg.Service/Method`. */
  path: string;
  /** HTTP method, e.g. `POST`. */
  method: string;
  /** Request headers, names in lower case (as `node:http` and `node:http2` give them). */
  headers: Record<string, string | string[] | undefined>;
  /** Service and method of a gRPC call (see {@link grpcFromPath}), or null for plain HTTP. */
  grpc: { service: string; method: string } | null;
}

/** A compiled `*` wildcard: `*` stands for any run of characters (also dots and none at all). */
export interface Pattern {
  /** The pattern as written in the file, e.g. `*.example.com`. */
  readonly text: string;
  /** True when `value` matches (case-insensitive for hosts and header values as documented). */
  test(value: string): boolean;
}

/** One `hosts` entry: a host wildcard plus an optional exact port. */
export interface HostPattern {
  /** The entry as written, e.g. `*.example.com` or `api.example.com:8443`. */
  readonly text: string;
  /** Host part, matched case-insensitively against the request's host without port. */
  readonly host: Pattern;
  /** Port the request's authority must carry, or null to ignore the port. */
  readonly port: number | null;
}

/** One `headers` entry: the header must be present with a value matching `value`. */
export interface HeaderCondition {
  /** Header name in lower case. */
  readonly name: string;
  /** Value pattern; exact unless it contains `*`; case-sensitive. A multi-valued header matches if any value does. */
  readonly value: Pattern;
}

/** The conditions of a rule or route; all given ones must hold; an empty match matches every request. */
export interface RuleMatch {
  /** The authority must match one of these, or null for any host. */
  readonly hosts: readonly HostPattern[] | null;
  /** The path must start with this string, or null for any path. */
  readonly pathPrefix: string | null;
  /** gRPC service pattern (e.g. `pkg.Orders`, `pkg.*`); a non-gRPC request never matches. Null: any. */
  readonly service: Pattern | null;
  /** gRPC method name, exact and case-sensitive; a non-gRPC request never matches. Null: any. */
  readonly method: string | null;
  /** Header conditions, all of which must hold. */
  readonly headers: readonly HeaderCondition[];
}

/** Upstream pick strategies of an agent (and of a server rule's direct upstream). */
export const PickStrategy = {
  /** Each request goes to the next address in turn. */
  ROUND_ROBIN: "round_robin",
  /** Each request goes to the address with the fewest requests in flight (ties: the next in turn). The default. */
  LEAST_OUTSTANDING: "least_outstanding",
} as const;
export type PickStrategy = (typeof PickStrategy)[keyof typeof PickStrategy];

/** Protocols an upstream speaks. */
export const UpstreamProtocol = {
  /** gRPC over HTTP/2 (cleartext `h2c://` or `https://`); can be probed with `grpc.health.v1`. */
  GRPC: "grpc",
  /** HTTP/1.1 (`http://`, `https://`) or HTTP/2 (`h2c://`, `https://`); WebSocket upgrades included. */
  HTTP: "http",
} as const;
export type UpstreamProtocol = (typeof UpstreamProtocol)[keyof typeof UpstreamProtocol];

/** `grpc.health.v1.Health/Check` probes of a gRPC upstream's addresses. */
export interface HealthCheckSpec {
  /** Service name sent in the probe; "" asks about the whole server. Default "". */
  service: string;
  /** Time between probes of one address. Default 5000 ms. */
  intervalMs: number;
  /** Deadline of one probe. Default 1000 ms. */
  timeoutMs: number;
}

/** A set of backend addresses requests are spread across. */
export interface UpstreamSpec {
  /** Name routes refer to (a server rule's inline upstream defaults to the rule's name). */
  name: string;
  protocol: UpstreamProtocol;
  /**
   * Origins, normalized to `scheme://host[:port]`: `http://` (HTTP/1.1), `h2c://` (HTTP/2 cleartext,
   * prior knowledge) or `https://` (TLS, ALPN). For `protocol: grpc` an `http://` address is rewritten to
   * `h2c://`, since gRPC always needs HTTP/2.
   */
  addresses: string[];
  /** Default `least_outstanding`. */
  pick: PickStrategy;
  /** Probes (gRPC only), or null for none: every address counts as healthy until a request fails. */
  healthCheck: HealthCheckSpec | null;
}

/** Where a server rule sends the request. */
export type ServerRuleTarget = { kind: "group"; group: string } | { kind: "upstream"; upstream: UpstreamSpec };

/** One entry of a server rules file's `rules:` list. */
export interface ServerRule {
  /** Unique name (used in metrics, logs and the dry run). */
  name: string;
  /** 1-based line of the rule in its file. */
  line: number;
  match: RuleMatch;
  target: ServerRuleTarget;
  /** When non-null the request must carry `authorization: Bearer <one of these>`. */
  bearerTokens: string[] | null;
  /** Longest a request may take: its deadline is the shorter of this and the client's `grpc-timeout`. Null: no limit. */
  timeoutMs: number | null;
}

/** An `agents:` entry: a token and the groups an agent presenting it may join. */
export interface AgentTokenGrant {
  /** Name for logs and metrics (never the token). */
  name: string;
  /** The secret (after `${ENV}` expansion or read from `tokenFile`). */
  token: string;
  /** Groups this token may join: exact names, `*` (any) or wildcards such as `prefix-*`. */
  groups: string[];
}

/** A parsed server rules file. */
export interface ServerRules {
  /** The file name used in messages. */
  source: string;
  /** In file order; the first matching rule wins. */
  rules: ServerRule[];
  agents: AgentTokenGrant[];
  /** Line-numbered problems that do not stop the rules from loading (e.g. a group no token may join). */
  warnings: string[];
}

/** One entry of an agent rules file's `routes:` list. */
export interface AgentRoute {
  /** The route's `name`, or `routes[i]` when it has none. */
  name: string;
  /** 1-based line of the route in its file. */
  line: number;
  match: RuleMatch;
  /** Name of an upstream of the same file. */
  upstream: string;
}

/** A parsed agent rules file. */
export interface AgentRules {
  source: string;
  upstreams: UpstreamSpec[];
  /** In file order; the first matching route wins. */
  routes: AgentRoute[];
  warnings: string[];
}

/** Options of {@link parseServerRules} and {@link parseAgentRules}. */
export interface ParseRulesOptions {
  /** Variables for `${NAME}` expansion. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Directory relative `tokenFile` paths are resolved against. Default: the directory of `source`. */
  baseDir?: string;
  /**
   * Resolve secrets (`${NAME}` and `tokenFile`). Default true. When false (dry runs on a machine
   * without the secrets) tokens keep their placeholder text and are not checked.
   */
  resolveSecrets?: boolean;
}

/** What a dry run reports about one rule that was tried and did not match. */
export interface RuleMiss {
  rule: string;
  line: number;
  /** The first condition that failed, e.g. `path "/x" does not start with "/api/"`. */
  reason: string;
}

/** The target of an explained match, without secrets. */
export type ExplainedTarget = { kind: "group"; group: string } | { kind: "upstream"; upstream: UpstreamSpec };

/** Result of {@link explainMatch}: the rule that matched (or null) and why every earlier rule did not. */
export interface MatchExplanation {
  match: {
    rule: string;
    line: number;
    target: ExplainedTarget;
    /** True when the rule requires a bearer token (server rules only). */
    requiresBearerToken: boolean;
  } | null;
  misses: RuleMiss[];
}
