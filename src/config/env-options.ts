// Reads server options from environment variables (flags override them).
import type { ServerOptions } from "./server-options.js";

/** Environment variables the server reads, by option; documented in the README. */
export const envNames = {
  port: "PORT",
  host: "STREAMGATE_HOST",
  engine: "STREAMGATE_ENGINE",
  dataDir: "STREAMGATE_DATA_DIR",
  syncEveryCommit: "STREAMGATE_SYNC",
  natsUrl: "STREAMGATE_NATS_URL",
  tlsCertPath: "STREAMGATE_TLS_CERT",
  tlsKeyPath: "STREAMGATE_TLS_KEY",
  tlsClientCaPath: "STREAMGATE_TLS_CLIENT_CA",
  tlsClientCertOptional: "STREAMGATE_TLS_CLIENT_CERT_OPTIONAL",
  drainMs: "STREAMGATE_DRAIN_MS",
  maxMessageBytes: "STREAMGATE_MAX_MESSAGE_BYTES",
  maxRequestBytes: "STREAMGATE_MAX_REQUEST_BYTES",
  heartbeatMs: "STREAMGATE_HEARTBEAT_MS",
  maxStreamBufferBytes: "STREAMGATE_MAX_STREAM_BUFFER_BYTES",
  maxWebSocketPayloadBytes: "STREAMGATE_MAX_WS_PAYLOAD_BYTES",
  logLevel: "STREAMGATE_LOG_LEVEL",
  grpcPath: "STREAMGATE_GRPC_PATH",
  tunnelRulesPath: "STREAMGATE_TUNNEL_RULES",
  tunnelHttpPort: "STREAMGATE_TUNNEL_HTTP_PORT",
  tunnelGrpcPort: "STREAMGATE_TUNNEL_GRPC_PORT",
  tunnelMaxMessageBytes: "STREAMGATE_TUNNEL_MAX_MESSAGE_BYTES",
  tunnelRotateAfterMs: "STREAMGATE_TUNNEL_ROTATE_AFTER_MS",
  tunnelHeartbeatMs: "STREAMGATE_TUNNEL_HEARTBEAT_MS",
  tunnelStandbyStreams: "STREAMGATE_TUNNEL_STANDBY_STREAMS",
  authSecret: "STREAMGATE_AUTH_SECRET",
  authSecretFile: "STREAMGATE_AUTH_SECRET_FILE",
  authJwksUrl: "STREAMGATE_AUTH_JWKS_URL",
  authIssuer: "STREAMGATE_AUTH_ISSUER",
  authAudience: "STREAMGATE_AUTH_AUDIENCE",
  insecure: "STREAMGATE_INSECURE",
  metricsPublic: "STREAMGATE_METRICS_PUBLIC",
  maxStreamsPerConnection: "STREAMGATE_MAX_STREAMS_PER_CONNECTION",
  maxConnectionsPerIp: "STREAMGATE_MAX_CONNECTIONS_PER_IP",
  maxConnectionsPerPrincipal: "STREAMGATE_MAX_CONNECTIONS_PER_PRINCIPAL",
  maxSubscriptionsPerPrincipal: "STREAMGATE_MAX_SUBSCRIPTIONS_PER_PRINCIPAL",
  publishRate: "STREAMGATE_PUBLISH_RATE",
  publishBurst: "STREAMGATE_PUBLISH_BURST",
  trustedProxies: "STREAMGATE_TRUSTED_PROXIES",
  proxyProtocol: "STREAMGATE_PROXY_PROTOCOL",
  tunnelProxyProtocol: "STREAMGATE_TUNNEL_PROXY_PROTOCOL",
  proxyProtocolTimeoutMs: "STREAMGATE_PROXY_PROTOCOL_TIMEOUT_MS",
} as const satisfies Record<keyof ServerOptions, string>;

const numeric = new Set<keyof ServerOptions>([
  "port",
  "drainMs",
  "maxMessageBytes",
  "maxRequestBytes",
  "heartbeatMs",
  "maxStreamBufferBytes",
  "maxWebSocketPayloadBytes",
  "tunnelHttpPort",
  "tunnelGrpcPort",
  "tunnelMaxMessageBytes",
  "tunnelRotateAfterMs",
  "tunnelHeartbeatMs",
  "tunnelStandbyStreams",
  "maxStreamsPerConnection",
  "maxConnectionsPerIp",
  "maxConnectionsPerPrincipal",
  "maxSubscriptionsPerPrincipal",
  "publishRate",
  "publishBurst",
  "proxyProtocolTimeoutMs",
]);

/** Options present in `env`; unset variables are left out so defaults apply. */
export function serverOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<ServerOptions> {
  const options: Record<string, unknown> = {};
  for (const [option, name] of Object.entries(envNames) as [keyof ServerOptions, string][]) {
    const raw = env[name];
    if (raw === undefined || raw === "") continue;
    if (numeric.has(option)) options[option] = Number(raw);
    else if (
      option === "syncEveryCommit" ||
      option === "tlsClientCertOptional" ||
      option === "insecure" ||
      option === "metricsPublic" ||
      option === "proxyProtocol" ||
      option === "tunnelProxyProtocol"
    )
      options[option] = raw === "1" || raw.toLowerCase() === "true";
    else if (option === "trustedProxies")
      options[option] = raw
        .split(",")
        .map((range) => range.trim())
        .filter((range) => range !== "");
    else options[option] = raw;
  }
  return options as Partial<ServerOptions>;
}
