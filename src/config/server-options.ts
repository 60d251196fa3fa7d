// Options of the streamgate server, their defaults, and resolveServerOptions().
import { Code, StreamgateError } from "../errors/index.js";
import { parseTrustedProxies } from "../http/trusted-proxies.js";
import { checkLimitsOptions, defaultLimitsOptions, type LimitsOptions } from "../limits/index.js";
import { checkOptionRanges } from "./option-table.js";

/** Engines a server can run on. */
export const EngineKind = {
  /** SQLite in the data dir; zero setup (default). */
  embedded: "embedded",
  /** NATS JetStream; several instances share it. */
  jetstream: "jetstream",
} as const;
export type EngineKind = (typeof EngineKind)[keyof typeof EngineKind];

/** Server options; the limits (streams per connection, connections, subscriptions, publish rate) are documented on {@link LimitsOptions}. */
/** The implementations that can serve binary gRPC; see `ServerOptions.grpcPath`. */
export const GrpcPath = {
  /** streamgate's own handler on node:http2 streams. */
  lean: "lean",
  /** connect-node (the gRPC protocol of @connectrpc/connect). */
  connect: "connect",
} as const;
export type GrpcPath = (typeof GrpcPath)[keyof typeof GrpcPath];

export interface ServerOptions extends LimitsOptions {
  /** Address to bind. Default "0.0.0.0", so containers and `docker run -p` work. */
  host: string;
  /** TCP port; 0 picks a free one. Default 8080 or $PORT (Cloud Run sets it). */
  port: number;
  /** Storage engine. Default "embedded". */
  engine: EngineKind;
  /** Directory of the embedded engine's SQLite file. Default "./data" or $STREAMGATE_DATA_DIR. */
  dataDir: string;
  /** fsync every commit: survives OS crashes too, at a throughput cost. Default false. */
  syncEveryCommit: boolean;
  /** NATS URL for the jetstream engine. Default "nats://127.0.0.1:4222". */
  natsUrl: string;
  /**
   * Replicas of every stream and KV bucket the jetstream engine creates: 1 on a single nats-server,
   * 3 (or 5) on a cluster, so a node's loss loses nothing acknowledged. Default 1.
   */
  jetstreamReplicas: number;
  /** Prefix of the jetstream engine's streams, consumers and buckets; instances sharing it share everything. Default "streamgate". */
  jetstreamNamespace: string;
  /**
   * How long an instance's hold on an ordered subscription lasts without renewal (renewed every
   * second), in ms: after an instance dies another delivers its ordered subscriptions this much
   * later. Default 5 000.
   */
  jetstreamOrderingLeaseMs: number;
  /** How long the jetstream engine's lease book keeps a delivery's record, in ms (stale ack ids are refused this long). Default 600 000 (Pub/Sub's longest ack deadline). */
  jetstreamDeliveryRecordTtlMs: number;
  /** How long the jetstream engine waits for its first connection to NATS, in ms. Default 5 000. */
  jetstreamConnectTimeoutMs: number;
  /** PEM certificate file; with tlsKeyPath enables TLS (ALPN h2, http/1.1). Default none. */
  tlsCertPath: string | null;
  /** PEM private key file. Default none. */
  tlsKeyPath: string | null;
  /**
   * PEM bundle of the CAs that sign client certificates: enables mTLS (requires tlsCertPath).
   * Clients without a certificate signed by one of them are refused at the handshake. Default none.
   */
  tlsClientCaPath: string | null;
  /**
   * With tlsClientCaPath: still accept clients without a valid certificate (requests then have no
   * client certificate, so auth decides). Default false: mTLS is enforced.
   */
  tlsClientCertOptional: boolean;
  /** Grace period for SIGTERM drain before streams are cut, in ms. Default 10 000. */
  drainMs: number;
  /** Largest accepted message (data + attributes), in bytes. Default 10 MB as in Pub/Sub. */
  maxMessageBytes: number;
  /** Largest accepted request body or gRPC message, in bytes. Default 16 MiB (above one max message plus framing). */
  maxRequestBytes: number;
  /** Interval of keepalive/heartbeat frames on idle streams, in ms. Default 15 000 (below the 30 s of many LBs). */
  heartbeatMs: number;
  /**
   * Bytes of events one live-stream client (SSE, WebSocket, gRPC Events) may have waiting, in the hub
   * queue or unsent in its socket, before it is dropped as a slow consumer and told where to resume.
   * Default 1 MiB: about a thousand 1 KiB events, enough to ride out a GC pause or a mobile network
   * hiccup, while a thousand stalled clients cost at most about 1 GiB. A single larger message still flows.
   */
  maxStreamBufferBytes: number;
  /** Largest WebSocket frame a client may send, in bytes; larger ones close with 1009. Default 1 MiB (publish bigger messages over REST or gRPC). */
  maxWebSocketPayloadBytes: number;
  /** Tunnel server rules file (rules and agent tokens); enables the tunnel server and its entries. Default none. */
  tunnelRulesPath: string | null;
  /** Port of the tunnel's HTTP entry (HTTP/1.1, h2c, WebSocket); 0 picks a free one. Default 8001 (the seed's). */
  tunnelHttpPort: number;
  /** Port of the tunnel's gRPC entry (HTTP/2); 0 picks a free one. Default 8002 (the seed's). */
  tunnelGrpcPort: number;
  /** Largest gRPC message through the tunnel, either way, in bytes. Default 4 MiB (gRPC's default receive limit). */
  tunnelMaxMessageBytes: number;
  /** Ask an agent session to rotate (make-before-break) after this long, in ms; 0 never. Default 55 min (Cloud Run cuts requests at 60). */
  tunnelRotateAfterMs: number;
  /** Heartbeat interval on agent control streams, in ms; 3 missed ones end a session. Default 10 000. */
  tunnelHeartbeatMs: number;
  /** Standby tunnel streams each agent keeps open ahead of requests. Default 8. */
  tunnelStandbyStreams: number;
  /**
   * Which code serves binary gRPC (`application/grpc`, `application/grpc+proto`) over HTTP/2: "lean" is
   * streamgate's own handler on node:http2 (src/transports/grpc/lean/, about 5x less server CPU per unary
   * call), "connect" is connect-node. Both call the same service implementations; gRPC-Web, Connect and
   * gRPC over HTTP/1.1 always go through connect-node. Default "lean": every gRPC integration suite
   * passes on it; "connect" stays as the fallback and the reference it is tested against.
   */
  grpcPath: GrpcPath;
  /** Log level for pino. Default "info". */
  logLevel: "trace" | "debug" | "info" | "warn" | "error" | "silent";
  /**
   * How log lines are written to stderr: "pretty" (one readable line each, local times, colours), "json" (one
   * JSON object each, for collectors), or "auto" (default): pretty when stderr is a terminal, JSON otherwise.
   */
  logFormat: "auto" | "json" | "pretty";
  /**
   * HS256 shared secret that verifies bearer JWTs (at least 32 bytes). Default none. Prefer the env
   * variable or authSecretFile: a flag shows in `ps`.
   */
  authSecret: string | null;
  /** File holding the HS256 secret (trailing whitespace trimmed); excludes authSecret. Default none. */
  authSecretFile: string | null;
  /**
   * With authSecretFile: when the file does not exist, create it (mode 0600) with a new random secret on start,
   * so a first start needs no secret handling; later starts read it. Default false: a missing file is an error.
   */
  authSecretGenerate: boolean;
  /** JWKS URL whose keys verify RS256/ES256/EdDSA tokens (cached, refetched on an unknown kid). Default none. */
  authJwksUrl: string | null;
  /** Required `iss` of tokens. Default none (not checked). */
  authIssuer: string | null;
  /** Accepted `aud` values, comma-separated; a token must name one. Default none (not checked). */
  authAudience: string | null;
  /**
   * Run without auth on a non-loopback host. Default false: without a secret or JWKS URL the server
   * serves only loopback addresses and refuses to start elsewhere, so a forgotten setting never exposes it.
   */
  insecure: boolean;
  /** Serve GET /metrics without a token. Default false: with auth on it needs a token with admin on everything. */
  metricsPublic: boolean;
  /**
   * Proxies (CIDR ranges or addresses) whose client address claims are believed: PROXY protocol headers (with
   * proxyProtocol) and `Forwarded` / `X-Forwarded-For` (the right-most hop outside these ranges is the client).
   * Default none: every peer is the client itself and its forwarding headers are ignored.
   */
  trustedProxies: string[];
  /**
   * PROXY protocol v1/v2 on the main port: a trusted peer must start every connection with a header (read before
   * TLS); a header from any other peer closes the connection. Default false.
   */
  proxyProtocol: boolean;
  /** PROXY protocol v1/v2 on the tunnel's HTTP and gRPC entries, as proxyProtocol. Default false. */
  tunnelProxyProtocol: boolean;
  /** A PROXY header must arrive whole within this many ms of accept, else the connection is closed. Default 5 000. */
  proxyProtocolTimeoutMs: number;
}

/** The documented defaults; see README "Options". */
export const defaultServerOptions: ServerOptions = {
  host: "0.0.0.0",
  port: 8080,
  engine: EngineKind.embedded,
  dataDir: "./data",
  syncEveryCommit: false,
  natsUrl: "nats://127.0.0.1:4222",
  jetstreamReplicas: 1,
  jetstreamNamespace: "streamgate",
  jetstreamOrderingLeaseMs: 5_000,
  jetstreamDeliveryRecordTtlMs: 600_000,
  jetstreamConnectTimeoutMs: 5_000,
  tlsCertPath: null,
  tlsKeyPath: null,
  tlsClientCaPath: null,
  tlsClientCertOptional: false,
  drainMs: 10_000,
  maxMessageBytes: 10_000_000,
  maxRequestBytes: 16 * 1024 * 1024,
  heartbeatMs: 15_000,
  maxStreamBufferBytes: 1024 * 1024,
  maxWebSocketPayloadBytes: 1024 * 1024,
  logLevel: "info",
  logFormat: "auto",
  grpcPath: "lean",
  tunnelRulesPath: null,
  tunnelHttpPort: 8001,
  tunnelGrpcPort: 8002,
  tunnelMaxMessageBytes: 4 * 1024 * 1024,
  tunnelRotateAfterMs: 55 * 60_000,
  tunnelHeartbeatMs: 10_000,
  tunnelStandbyStreams: 8,
  authSecret: null,
  authSecretFile: null,
  authSecretGenerate: false,
  authJwksUrl: null,
  authIssuer: null,
  authAudience: null,
  insecure: false,
  metricsPublic: false,
  trustedProxies: [],
  proxyProtocol: false,
  tunnelProxyProtocol: false,
  proxyProtocolTimeoutMs: 5_000,
  ...defaultLimitsOptions,
};

/** Fills defaults and rejects contradictions with a message that names the option. */
export function resolveServerOptions(partial: Partial<ServerOptions> = {}): ServerOptions {
  const options: ServerOptions = { ...defaultServerOptions };
  for (const [key, value] of Object.entries(partial)) {
    if (value !== undefined) (options as unknown as Record<string, unknown>)[key] = value;
  }
  const fail = (option: string, message: string): never => {
    throw new StreamgateError(Code.INVALID_ARGUMENT, `${option}: ${message}`, { reason: "INVALID_OPTION" });
  };
  for (const problem of checkOptionRanges(options))
    fail(problem.split(":")[0]!, problem.slice(problem.indexOf(":") + 2));
  if ((options.tlsCertPath === null) !== (options.tlsKeyPath === null)) {
    fail("tls", "--tls-cert and --tls-key must be given together");
  }
  if (options.tlsClientCaPath !== null && options.tlsCertPath === null) {
    fail("tlsClientCaPath", "--tls-client-ca needs --tls-cert and --tls-key (mTLS is part of TLS)");
  }
  if (options.tlsClientCertOptional && options.tlsClientCaPath === null) {
    fail("tlsClientCertOptional", "--tls-client-cert-optional needs --tls-client-ca");
  }
  if (options.maxRequestBytes < options.maxMessageBytes) {
    fail("maxRequestBytes", `must be at least maxMessageBytes (${options.maxMessageBytes})`);
  }
  if (options.dataDir.length === 0) fail("dataDir", "must not be empty");
  if (![1, 3, 5].includes(options.jetstreamReplicas)) {
    fail(
      "jetstreamReplicas",
      "--jetstream-replicas must be 1, 3 or 5 (a NATS cluster keeps a quorum with an odd count)",
    );
  }
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(options.jetstreamNamespace)) {
    fail("jetstreamNamespace", "--jetstream-namespace must be 1-32 characters of A-Z a-z 0-9 _ -");
  }
  if (options.tunnelRulesPath !== null && options.port !== 0) {
    for (const option of ["tunnelHttpPort", "tunnelGrpcPort"] as const) {
      if (options[option] === options.port) fail(option, `must differ from port (${options.port})`);
    }
    if (options.tunnelHttpPort !== 0 && options.tunnelHttpPort === options.tunnelGrpcPort) {
      fail("tunnelGrpcPort", "must differ from tunnelHttpPort");
    }
  }
  if (options.authSecret !== null && options.authSecretFile !== null) {
    fail("authSecret", "--auth-secret and --auth-secret-file exclude each other");
  }
  if (options.authSecretGenerate && options.authSecretFile === null) {
    fail("authSecretGenerate", "--auth-secret-generate needs --auth-secret-file (where to keep the secret)");
  }
  if (options.authJwksUrl !== null && !/^https?:\/\/[^/]/.test(options.authJwksUrl)) {
    fail("authJwksUrl", `must be an http(s) URL, got ${JSON.stringify(options.authJwksUrl)}`);
  }
  try {
    parseTrustedProxies(options.trustedProxies);
  } catch (error) {
    fail("trustedProxies", (error as Error).message);
  }
  if ((options.proxyProtocol || options.tunnelProxyProtocol) && options.trustedProxies.length === 0) {
    fail("proxyProtocol", "needs --trusted-proxies: PROXY headers are accepted only from trusted proxy ranges");
  }
  if (!Number.isFinite(options.proxyProtocolTimeoutMs) || options.proxyProtocolTimeoutMs < 10) {
    fail("proxyProtocolTimeoutMs", "must be >= 10");
  }
  for (const problem of checkLimitsOptions(options))
    fail(problem.split(":")[0]!, problem.slice(problem.indexOf(":") + 2));
  return options;
}
