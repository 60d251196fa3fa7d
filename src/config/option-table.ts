// The one table of server options: flag, env var, config key, type, range, unit, description. The serve flags,
// env parsing, config files, `serve --help`, docs/options.md and the range checks are all generated from it.
import type { ServerOptions } from "./server-options.js";

/** How an option's text is read. */
/** `list`: comma-separated text on flags and env vars, a YAML list (or the same text) in a config file. */
export type OptionType = "integer" | "string" | "boolean" | "choice" | "list";

/** One server option. Its config-file key is its {@link ServerOptions} key; its default is in `defaultServerOptions`. */
export interface OptionDefinition {
  /** The flag without dashes, e.g. `data-dir`. */
  readonly flag: string;
  /** The environment variable, e.g. `STREAMGATE_DATA_DIR`. */
  readonly env: string;
  readonly type: OptionType;
  /** Allowed values of a `choice`. */
  readonly choices?: readonly string[];
  /** Smallest allowed integer. */
  readonly min?: number;
  /** Largest allowed integer. */
  readonly max?: number;
  /** Unit of an integer (`ms`, `bytes`, …), shown in help and docs. */
  readonly unit?: string;
  /** Placeholder shown in usage, e.g. `PATH`. */
  readonly valueName?: string;
  /** One line: what it does. */
  readonly description: string;
  /** How a `null` default reads (`none`, `not checked`). */
  readonly unset?: string;
  /** Section of the config file and docs. */
  readonly section: OptionSection;
  /** A secret: never written out by `config init`, and the flag shows in `ps`. */
  readonly secret?: boolean;
}

/** Sections of `config init` and docs/options.md, in order. */
export const optionSections = {
  listener: "Listener and TLS",
  storage: "Storage",
  streams: "Messages and streams",
  limits: "Limits",
  tunnel: "Tunnel",
  auth: "Authentication",
  logs: "Logs and internals",
} as const;
export type OptionSection = keyof typeof optionSections;

const port = { type: "integer", min: 0, max: 65535, valueName: "PORT" } as const;

/**
 * Every server option. Adding one: a field (with TSDoc and its default) in `ServerOptions` / `defaultServerOptions`,
 * and one entry here; the flag, env var, config key, help, docs and range check follow.
 */
export const serverOptionTable = {
  host: {
    flag: "host",
    env: "STREAMGATE_HOST",
    type: "string",
    valueName: "HOST",
    description: "Address to bind (0.0.0.0: every interface; without auth only a loopback address is allowed)",
    section: "listener",
  },
  port: {
    ...port,
    flag: "port",
    env: "PORT",
    description: "TCP port of the main listener; 0 picks a free one",
    section: "listener",
  },
  tlsCertPath: {
    flag: "tls-cert",
    env: "STREAMGATE_TLS_CERT",
    type: "string",
    valueName: "PATH",
    description: "PEM certificate; with --tls-key serves TLS (ALPN h2, http/1.1)",
    unset: "none",
    section: "listener",
  },
  tlsKeyPath: {
    flag: "tls-key",
    env: "STREAMGATE_TLS_KEY",
    type: "string",
    valueName: "PATH",
    description: "PEM private key of --tls-cert",
    unset: "none",
    section: "listener",
  },
  tlsClientCaPath: {
    flag: "tls-client-ca",
    env: "STREAMGATE_TLS_CLIENT_CA",
    type: "string",
    valueName: "PATH",
    description: "PEM CA bundle for client certificates: enables mTLS (needs --tls-cert)",
    unset: "none",
    section: "listener",
  },
  tlsClientCertOptional: {
    flag: "tls-client-cert-optional",
    env: "STREAMGATE_TLS_CLIENT_CERT_OPTIONAL",
    type: "boolean",
    description: "With --tls-client-ca, also accept clients without a certificate",
    section: "listener",
  },
  drainMs: {
    flag: "drain-ms",
    env: "STREAMGATE_DRAIN_MS",
    type: "integer",
    min: 0,
    unit: "ms",
    valueName: "MS",
    description: "Grace period on SIGTERM/SIGINT before streams are cut",
    section: "listener",
  },
  engine: {
    flag: "engine",
    env: "STREAMGATE_ENGINE",
    type: "choice",
    choices: ["embedded", "jetstream"],
    description: "Storage engine: SQLite in --data-dir, or NATS JetStream at --nats-url",
    section: "storage",
  },
  dataDir: {
    flag: "data-dir",
    env: "STREAMGATE_DATA_DIR",
    type: "string",
    valueName: "DIR",
    description: "Directory of the embedded engine's SQLite file",
    section: "storage",
  },
  syncEveryCommit: {
    flag: "sync",
    env: "STREAMGATE_SYNC",
    type: "boolean",
    description: "fsync every commit: survives OS crashes too, slower",
    section: "storage",
  },
  natsUrl: {
    flag: "nats-url",
    env: "STREAMGATE_NATS_URL",
    type: "string",
    valueName: "URL",
    description: "NATS server of the jetstream engine",
    section: "storage",
  },
  jetstreamReplicas: {
    flag: "jetstream-replicas",
    env: "STREAMGATE_JETSTREAM_REPLICAS",
    type: "integer",
    min: 1,
    max: 5,
    valueName: "N",
    description: "Replicas of the streams and buckets the jetstream engine creates: 1, or 3 / 5 on a NATS cluster",
    section: "storage",
  },
  jetstreamNamespace: {
    flag: "jetstream-namespace",
    env: "STREAMGATE_JETSTREAM_NAMESPACE",
    type: "string",
    valueName: "NAME",
    description: "Prefix of the jetstream engine's streams, consumers and buckets; instances sharing it share topics",
    section: "storage",
  },
  jetstreamOrderingLeaseMs: {
    flag: "jetstream-ordering-lease-ms",
    env: "STREAMGATE_JETSTREAM_ORDERING_LEASE_MS",
    type: "integer",
    min: 3000,
    unit: "ms",
    valueName: "MS",
    description: "How long an instance's hold on an ordered subscription lasts unrenewed (another takes over after it)",
    section: "storage",
  },
  jetstreamDeliveryRecordTtlMs: {
    flag: "jetstream-delivery-record-ttl-ms",
    env: "STREAMGATE_JETSTREAM_DELIVERY_RECORD_TTL_MS",
    type: "integer",
    min: 1000,
    unit: "ms",
    valueName: "MS",
    description:
      "How long the jetstream engine's lease book remembers a delivery (stale ack ids are refused this long)",
    section: "storage",
  },
  jetstreamConnectTimeoutMs: {
    flag: "jetstream-connect-timeout-ms",
    env: "STREAMGATE_JETSTREAM_CONNECT_TIMEOUT_MS",
    type: "integer",
    min: 1,
    unit: "ms",
    valueName: "MS",
    description: "How long the jetstream engine waits for its first connection to NATS at start",
    section: "storage",
  },
  maxMessageBytes: {
    flag: "max-message-bytes",
    env: "STREAMGATE_MAX_MESSAGE_BYTES",
    type: "integer",
    min: 1,
    unit: "bytes",
    valueName: "BYTES",
    description: "Largest accepted message (data + attributes), as Pub/Sub",
    section: "streams",
  },
  maxRequestBytes: {
    flag: "max-request-bytes",
    env: "STREAMGATE_MAX_REQUEST_BYTES",
    type: "integer",
    min: 1,
    unit: "bytes",
    valueName: "BYTES",
    description: "Largest accepted request body or gRPC message (at least --max-message-bytes)",
    section: "streams",
  },
  heartbeatMs: {
    flag: "heartbeat-ms",
    env: "STREAMGATE_HEARTBEAT_MS",
    type: "integer",
    min: 100,
    unit: "ms",
    valueName: "MS",
    description: "Heartbeat interval on idle streams and HTTP/2 connections",
    section: "streams",
  },
  maxStreamBufferBytes: {
    flag: "max-stream-buffer-bytes",
    env: "STREAMGATE_MAX_STREAM_BUFFER_BYTES",
    type: "integer",
    min: 1024,
    unit: "bytes",
    valueName: "BYTES",
    description: "Per-connection send buffer of live streams; a client further behind is dropped and resumes",
    section: "streams",
  },
  maxWebSocketPayloadBytes: {
    flag: "max-ws-payload-bytes",
    env: "STREAMGATE_MAX_WS_PAYLOAD_BYTES",
    type: "integer",
    min: 1024,
    unit: "bytes",
    valueName: "BYTES",
    description: "Largest WebSocket frame accepted (bigger closes with 1009)",
    section: "streams",
  },
  grpcPath: {
    flag: "grpc-path",
    env: "STREAMGATE_GRPC_PATH",
    type: "choice",
    choices: ["lean", "connect"],
    description: "What serves binary gRPC over HTTP/2: streamgate's own handler (lean) or connect-node",
    section: "streams",
  },
  maxStreamsPerConnection: {
    flag: "max-streams-per-connection",
    env: "STREAMGATE_MAX_STREAMS_PER_CONNECTION",
    type: "integer",
    min: 1,
    unit: "streams",
    valueName: "COUNT",
    description: "HTTP/2 streams one connection may have open (SETTINGS_MAX_CONCURRENT_STREAMS)",
    section: "limits",
  },
  maxConnectionsPerIp: {
    flag: "max-connections-per-ip",
    env: "STREAMGATE_MAX_CONNECTIONS_PER_IP",
    type: "integer",
    min: 0,
    unit: "connections",
    valueName: "COUNT",
    description: "TCP connections from one client IP; more are refused (0 = no limit)",
    section: "limits",
  },
  maxConnectionsPerPrincipal: {
    flag: "max-connections-per-principal",
    env: "STREAMGATE_MAX_CONNECTIONS_PER_PRINCIPAL",
    type: "integer",
    min: 0,
    unit: "streams",
    valueName: "COUNT",
    description: "Long-lived streams (SSE, WebSocket, streaming RPCs) of one principal (0 = no limit)",
    section: "limits",
  },
  maxSubscriptionsPerPrincipal: {
    flag: "max-subscriptions-per-principal",
    env: "STREAMGATE_MAX_SUBSCRIPTIONS_PER_PRINCIPAL",
    type: "integer",
    min: 0,
    unit: "subscriptions",
    valueName: "COUNT",
    description: "Live subscriptions of one principal across its connections (0 = no limit)",
    section: "limits",
  },
  publishRate: {
    flag: "publish-rate",
    env: "STREAMGATE_PUBLISH_RATE",
    type: "integer",
    min: 0,
    unit: "messages/s",
    valueName: "MESSAGES",
    description: "Messages per second one principal may publish, all transports (0 = no limit)",
    section: "limits",
  },
  publishBurst: {
    flag: "publish-burst",
    env: "STREAMGATE_PUBLISH_BURST",
    type: "integer",
    min: 1,
    unit: "messages",
    valueName: "MESSAGES",
    description: "Messages one principal may publish at once after being idle",
    section: "limits",
  },
  tunnelRulesPath: {
    flag: "tunnel-rules",
    env: "STREAMGATE_TUNNEL_RULES",
    type: "string",
    valueName: "FILE",
    description: "Tunnel server rules file (rules, agent tokens); enables the tunnel and its entries",
    unset: "none",
    section: "tunnel",
  },
  tunnelHttpPort: {
    ...port,
    flag: "tunnel-http-port",
    env: "STREAMGATE_TUNNEL_HTTP_PORT",
    description: "Port of the tunnel's HTTP entry (HTTP/1.1, h2c, WebSocket)",
    section: "tunnel",
  },
  tunnelGrpcPort: {
    ...port,
    flag: "tunnel-grpc-port",
    env: "STREAMGATE_TUNNEL_GRPC_PORT",
    description: "Port of the tunnel's gRPC entry (HTTP/2)",
    section: "tunnel",
  },
  tunnelMaxMessageBytes: {
    flag: "tunnel-max-message-bytes",
    env: "STREAMGATE_TUNNEL_MAX_MESSAGE_BYTES",
    type: "integer",
    min: 1024,
    unit: "bytes",
    valueName: "BYTES",
    description: "Largest gRPC message through the tunnel, either way",
    section: "tunnel",
  },
  tunnelRotateAfterMs: {
    flag: "tunnel-rotate-after-ms",
    env: "STREAMGATE_TUNNEL_ROTATE_AFTER_MS",
    type: "integer",
    min: 0,
    unit: "ms",
    valueName: "MS",
    description: "Rotate agent sessions (make-before-break) after this long; 0 never",
    section: "tunnel",
  },
  tunnelHeartbeatMs: {
    flag: "tunnel-heartbeat-ms",
    env: "STREAMGATE_TUNNEL_HEARTBEAT_MS",
    type: "integer",
    min: 100,
    unit: "ms",
    valueName: "MS",
    description: "Heartbeat interval of agent control streams; 3 missed end a session",
    section: "tunnel",
  },
  tunnelStandbyStreams: {
    flag: "tunnel-standby-streams",
    env: "STREAMGATE_TUNNEL_STANDBY_STREAMS",
    type: "integer",
    min: 1,
    unit: "streams",
    valueName: "COUNT",
    description: "Standby tunnel streams each agent keeps open ahead of requests",
    section: "tunnel",
  },
  authSecret: {
    flag: "auth-secret",
    env: "STREAMGATE_AUTH_SECRET",
    type: "string",
    valueName: "SECRET",
    description: "HS256 secret (>= 32 bytes) that verifies bearer JWTs; prefer the env var or --auth-secret-file",
    unset: "none",
    section: "auth",
    secret: true,
  },
  authSecretFile: {
    flag: "auth-secret-file",
    env: "STREAMGATE_AUTH_SECRET_FILE",
    type: "string",
    valueName: "PATH",
    description: "File holding the HS256 secret",
    unset: "none",
    section: "auth",
  },
  authSecretGenerate: {
    flag: "auth-secret-generate",
    env: "STREAMGATE_AUTH_SECRET_GENERATE",
    type: "boolean",
    description: "With --auth-secret-file: create that file with a new random secret (mode 0600) if it does not exist",
    section: "auth",
  },
  authJwksUrl: {
    flag: "auth-jwks-url",
    env: "STREAMGATE_AUTH_JWKS_URL",
    type: "string",
    valueName: "URL",
    description: "JWKS whose keys verify RS/PS/ES/EdDSA tokens (cached, refetched on an unknown kid)",
    unset: "none",
    section: "auth",
  },
  authIssuer: {
    flag: "auth-issuer",
    env: "STREAMGATE_AUTH_ISSUER",
    type: "string",
    valueName: "ISS",
    description: "Required token issuer (iss)",
    unset: "not checked",
    section: "auth",
  },
  authAudience: {
    flag: "auth-audience",
    env: "STREAMGATE_AUTH_AUDIENCE",
    type: "string",
    valueName: "AUD[,AUD]",
    description: "Accepted token audiences (aud), comma-separated",
    unset: "not checked",
    section: "auth",
  },
  insecure: {
    flag: "insecure",
    env: "STREAMGATE_INSECURE",
    type: "boolean",
    description: "Serve a non-loopback host without auth (otherwise refused)",
    section: "auth",
  },
  metricsPublic: {
    flag: "metrics-public",
    env: "STREAMGATE_METRICS_PUBLIC",
    type: "boolean",
    description: "Serve /metrics without a token when auth is on",
    section: "auth",
  },
  trustedProxies: {
    flag: "trusted-proxies",
    env: "STREAMGATE_TRUSTED_PROXIES",
    type: "list",
    valueName: "CIDR[,CIDR]",
    description:
      "Proxies (CIDR ranges or addresses) whose PROXY headers and Forwarded / X-Forwarded-For are believed; the right-most hop outside them is the client (see docs/deployment.md, Behind proxies)",
    section: "listener",
  },
  proxyProtocol: {
    flag: "proxy-protocol",
    env: "STREAMGATE_PROXY_PROTOCOL",
    type: "boolean",
    description:
      "PROXY protocol v1/v2 on the main port: a trusted proxy must send a header (read before TLS); needs --trusted-proxies",
    section: "listener",
  },
  tunnelProxyProtocol: {
    flag: "tunnel-proxy-protocol",
    env: "STREAMGATE_TUNNEL_PROXY_PROTOCOL",
    type: "boolean",
    description: "PROXY protocol v1/v2 on the tunnel's HTTP and gRPC entries; needs --trusted-proxies",
    section: "tunnel",
  },
  proxyProtocolTimeoutMs: {
    flag: "proxy-protocol-timeout-ms",
    env: "STREAMGATE_PROXY_PROTOCOL_TIMEOUT_MS",
    type: "integer",
    min: 10,
    unit: "ms",
    valueName: "MS",
    description: "A PROXY header must arrive whole within this long, else the connection is closed",
    section: "listener",
  },
  logLevel: {
    flag: "log-level",
    env: "STREAMGATE_LOG_LEVEL",
    type: "choice",
    choices: ["trace", "debug", "info", "warn", "error", "silent"],
    description: "Log level",
    section: "logs",
  },
  logFormat: {
    flag: "log-format",
    env: "STREAMGATE_LOG_FORMAT",
    type: "choice",
    choices: ["auto", "json", "pretty"],
    description: "Log lines on stderr: pretty on a terminal and JSON otherwise (auto), or always one of them",
    section: "logs",
  },
} as const satisfies Record<keyof ServerOptions, OptionDefinition>;

/** Every option key, in table order. */
export const optionKeys = Object.keys(serverOptionTable) as (keyof ServerOptions)[];

/** The definition of `key`. */
export function optionDefinition(key: keyof ServerOptions): OptionDefinition {
  return serverOptionTable[key];
}

/** Environment variables the server reads, by option. */
export const envNames = Object.fromEntries(optionKeys.map((key) => [key, serverOptionTable[key].env])) as {
  readonly [K in keyof ServerOptions]: string;
};

/** `0..65535`, `>= 1024`, `embedded, jetstream`, or "" when any value of the type goes. */
export function formatRange(definition: OptionDefinition): string {
  if (definition.choices !== undefined) return definition.choices.join(", ");
  if (definition.min !== undefined && definition.max !== undefined) return `${definition.min}..${definition.max}`;
  if (definition.min !== undefined) return `>= ${definition.min}`;
  return "";
}

/** Problems with the per-option ranges and choices of the table, as `key: message`; empty when all hold. */
export function checkOptionRanges(options: ServerOptions): string[] {
  const problems: string[] = [];
  for (const key of optionKeys) {
    const definition: OptionDefinition = serverOptionTable[key];
    const value = options[key] as unknown;
    if (value === null) continue;
    if (definition.type === "integer") {
      const { min, max } = definition;
      const inRange =
        typeof value === "number" &&
        Number.isSafeInteger(value) &&
        (min === undefined || value >= min) &&
        (max === undefined || value <= max);
      if (!inRange) problems.push(`${key}: must be an integer ${formatRange(definition)}, got ${String(value)}`);
    } else if (definition.type === "choice") {
      if (!definition.choices?.includes(String(value))) {
        problems.push(`${key}: must be one of ${formatRange(definition)}, got ${String(value)}`);
      }
    } else if (definition.type === "list") {
      if (!Array.isArray(value) || value.some((item) => typeof item !== "string")) {
        problems.push(`${key}: must be a list of strings, got ${JSON.stringify(value)}`);
      }
    } else if (typeof value !== definition.type) {
      problems.push(`${key}: must be a ${definition.type}, got ${JSON.stringify(value)}`);
    }
  }
  return problems;
}
