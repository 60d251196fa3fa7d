// `streamgate serve`: run the server with options from flags over env over defaults; drain on SIGTERM/SIGINT.
import { type EngineKind, resolveServerOptions, type ServerOptions, serverOptionsFromEnv } from "../config/index.js";
import { Code, StreamgateError } from "../errors/index.js";
import { parseInteger, UsageError } from "./args.js";
import { type CommandArgs, defineCommand } from "./command.js";

const engines: readonly string[] = ["embedded", "jetstream"];
const logLevels: readonly string[] = ["trace", "debug", "info", "warn", "error", "silent"];

const serveSpec = {
  path: "serve",
  summary: "Run the streamgate server on one port.",
  details:
    "Flags override environment variables, which override defaults. SIGTERM or SIGINT drains\n" +
    "(stop accepting, tell streams to reconnect, wait up to --drain-ms) and exits 0; a second signal exits at once.",
  positionals: [],
  options: {
    port: {
      type: "string",
      valueName: "PORT",
      description: "TCP port; 0 picks a free one",
      defaultText: "$PORT, else 8080",
    },
    host: {
      type: "string",
      valueName: "HOST",
      description: "Address to bind",
      defaultText: "$STREAMGATE_HOST, else 0.0.0.0",
    },
    engine: {
      type: "string",
      valueName: "embedded|jetstream",
      description: "Storage engine",
      defaultText: "$STREAMGATE_ENGINE, else embedded",
    },
    "data-dir": {
      type: "string",
      valueName: "DIR",
      description: "Directory of the embedded engine's SQLite file",
      defaultText: "$STREAMGATE_DATA_DIR, else ./data",
    },
    sync: {
      type: "boolean",
      description: "fsync every commit: survives OS crashes too, slower (env STREAMGATE_SYNC=1)",
    },
    "nats-url": {
      type: "string",
      valueName: "URL",
      description: "NATS server of the jetstream engine",
      defaultText: "$STREAMGATE_NATS_URL, else nats://127.0.0.1:4222",
    },
    "tls-cert": {
      type: "string",
      valueName: "PATH",
      description: "PEM certificate; with --tls-key serves TLS (h2, http/1.1)",
    },
    "tls-key": { type: "string", valueName: "PATH", description: "PEM private key of --tls-cert" },
    "tls-client-ca": {
      type: "string",
      valueName: "PATH",
      description: "PEM CA bundle for client certificates: enables mTLS (needs --tls-cert)",
    },
    "tls-client-cert-optional": {
      type: "boolean",
      description:
        "With --tls-client-ca, also accept clients without a certificate (env STREAMGATE_TLS_CLIENT_CERT_OPTIONAL=1)",
    },
    "drain-ms": {
      type: "string",
      valueName: "MS",
      description: "Grace period on SIGTERM/SIGINT before streams are cut",
      defaultText: "$STREAMGATE_DRAIN_MS, else 10000",
    },
    "max-message-bytes": {
      type: "string",
      valueName: "BYTES",
      description: "Largest accepted message (data + attributes)",
      defaultText: "$STREAMGATE_MAX_MESSAGE_BYTES, else 10000000",
    },
    "max-request-bytes": {
      type: "string",
      valueName: "BYTES",
      description: "Largest accepted request body or gRPC message",
      defaultText: "$STREAMGATE_MAX_REQUEST_BYTES, else 16777216",
    },
    "heartbeat-ms": {
      type: "string",
      valueName: "MS",
      description: "Heartbeat interval on idle streams",
      defaultText: "$STREAMGATE_HEARTBEAT_MS, else 15000",
    },
    "max-stream-buffer-bytes": {
      type: "string",
      valueName: "BYTES",
      description: "Per-connection send buffer of live streams; a client further behind is dropped",
      defaultText: "$STREAMGATE_MAX_STREAM_BUFFER_BYTES, else 1048576",
    },
    "max-ws-payload-bytes": {
      type: "string",
      valueName: "BYTES",
      description: "Largest WebSocket frame accepted (bigger closes with 1009)",
      defaultText: "$STREAMGATE_MAX_WS_PAYLOAD_BYTES, else 1048576",
    },
    "max-streams-per-connection": {
      type: "string",
      valueName: "COUNT",
      description: "HTTP/2 streams one connection may have open (SETTINGS_MAX_CONCURRENT_STREAMS)",
      defaultText: "$STREAMGATE_MAX_STREAMS_PER_CONNECTION, else 1000",
    },
    "max-connections-per-ip": {
      type: "string",
      valueName: "COUNT",
      description: "TCP connections from one client IP; more are refused (0 = no limit)",
      defaultText: "$STREAMGATE_MAX_CONNECTIONS_PER_IP, else 10000",
    },
    "max-connections-per-principal": {
      type: "string",
      valueName: "COUNT",
      description: "Long-lived streams (SSE, WebSocket, streaming RPCs) of one principal (0 = no limit)",
      defaultText: "$STREAMGATE_MAX_CONNECTIONS_PER_PRINCIPAL, else 1000",
    },
    "max-subscriptions-per-principal": {
      type: "string",
      valueName: "COUNT",
      description: "Live subscriptions of one principal across its connections (0 = no limit)",
      defaultText: "$STREAMGATE_MAX_SUBSCRIPTIONS_PER_PRINCIPAL, else 1000",
    },
    "publish-rate": {
      type: "string",
      valueName: "MESSAGES",
      description: "Messages per second one principal may publish, all transports (0 = no limit)",
      defaultText: "$STREAMGATE_PUBLISH_RATE, else 10000",
    },
    "publish-burst": {
      type: "string",
      valueName: "MESSAGES",
      description: "Messages one principal may publish at once after being idle",
      defaultText: "$STREAMGATE_PUBLISH_BURST, else 20000",
    },
    "tunnel-rules": {
      type: "string",
      valueName: "FILE",
      description: "Tunnel server rules file (rules, agent tokens); enables the tunnel and its entries",
      defaultText: "$STREAMGATE_TUNNEL_RULES, else none",
    },
    "tunnel-http-port": {
      type: "string",
      valueName: "PORT",
      description: "Port of the tunnel's HTTP entry (HTTP/1.1, h2c, WebSocket)",
      defaultText: "$STREAMGATE_TUNNEL_HTTP_PORT, else 8001",
    },
    "tunnel-grpc-port": {
      type: "string",
      valueName: "PORT",
      description: "Port of the tunnel's gRPC entry (HTTP/2)",
      defaultText: "$STREAMGATE_TUNNEL_GRPC_PORT, else 8002",
    },
    "tunnel-max-message-bytes": {
      type: "string",
      valueName: "BYTES",
      description: "Largest gRPC message through the tunnel, either way",
      defaultText: "$STREAMGATE_TUNNEL_MAX_MESSAGE_BYTES, else 4194304",
    },
    "tunnel-rotate-after-ms": {
      type: "string",
      valueName: "MS",
      description: "Rotate agent sessions (make-before-break) after this long; 0 never",
      defaultText: "$STREAMGATE_TUNNEL_ROTATE_AFTER_MS, else 3300000",
    },
    "tunnel-heartbeat-ms": {
      type: "string",
      valueName: "MS",
      description: "Heartbeat interval of agent control streams; 3 missed end a session",
      defaultText: "$STREAMGATE_TUNNEL_HEARTBEAT_MS, else 10000",
    },
    "tunnel-standby-streams": {
      type: "string",
      valueName: "COUNT",
      description: "Standby tunnel streams each agent keeps open ahead of requests",
      defaultText: "$STREAMGATE_TUNNEL_STANDBY_STREAMS, else 8",
    },
    "grpc-path": {
      type: "string",
      valueName: "PATH",
      description: "what serves binary gRPC over HTTP/2: lean (streamgate's own) or connect (connect-node)",
      defaultText: "$STREAMGATE_GRPC_PATH, else lean",
    },
    "log-level": {
      type: "string",
      valueName: "LEVEL",
      description: "trace, debug, info, warn, error or silent",
      defaultText: "$STREAMGATE_LOG_LEVEL, else info",
    },
    "auth-secret": {
      type: "string",
      valueName: "SECRET",
      description:
        "HS256 secret (>= 32 bytes) that verifies bearer JWTs; prefer the env variable or --auth-secret-file",
      defaultText: "$STREAMGATE_AUTH_SECRET, else none",
    },
    "auth-secret-file": {
      type: "string",
      valueName: "PATH",
      description: "File holding the HS256 secret",
      defaultText: "$STREAMGATE_AUTH_SECRET_FILE, else none",
    },
    "auth-jwks-url": {
      type: "string",
      valueName: "URL",
      description: "JWKS whose keys verify RS256/ES256/EdDSA tokens",
      defaultText: "$STREAMGATE_AUTH_JWKS_URL, else none",
    },
    "auth-issuer": {
      type: "string",
      valueName: "ISS",
      description: "Required token issuer (iss)",
      defaultText: "$STREAMGATE_AUTH_ISSUER, else not checked",
    },
    "auth-audience": {
      type: "string",
      valueName: "AUD[,AUD]",
      description: "Accepted token audiences (aud)",
      defaultText: "$STREAMGATE_AUTH_AUDIENCE, else not checked",
    },
    insecure: {
      type: "boolean",
      description: "Serve a non-loopback host without auth (env STREAMGATE_INSECURE=1)",
    },
    "metrics-public": {
      type: "boolean",
      description: "Serve /metrics without a token when auth is on (env STREAMGATE_METRICS_PUBLIC=1)",
    },
    "trusted-proxies": {
      type: "string",
      valueName: "CIDR[,CIDR]",
      description: "Proxies whose PROXY headers and Forwarded / X-Forwarded-For are believed",
      defaultText: "$STREAMGATE_TRUSTED_PROXIES, else none",
    },
    "proxy-protocol": {
      type: "boolean",
      description: "PROXY protocol v1/v2 on the main port, from --trusted-proxies (env STREAMGATE_PROXY_PROTOCOL=1)",
    },
    "tunnel-proxy-protocol": {
      type: "boolean",
      description: "PROXY protocol v1/v2 on the tunnel entries (env STREAMGATE_TUNNEL_PROXY_PROTOCOL=1)",
    },
    "proxy-protocol-timeout-ms": {
      type: "string",
      valueName: "MS",
      description: "A PROXY header must arrive whole within this long",
      defaultText: "$STREAMGATE_PROXY_PROTOCOL_TIMEOUT_MS, else 5000",
    },
  },
  examples: [
    "streamgate serve --host 127.0.0.1",
    "streamgate serve --host 127.0.0.1 --port 9000 --data-dir /var/lib/streamgate --sync",
    "streamgate serve --host 127.0.0.1 --engine jetstream --nats-url nats://nats:4222",
    "STREAMGATE_AUTH_SECRET=... streamgate serve --auth-issuer https://login.example.com --auth-audience streamgate",
  ],
} as const;

/** Server options from the flags that were given (env and defaults fill the rest). */
export function serverOptionsFromFlags({ values }: CommandArgs<typeof serveSpec>): Partial<ServerOptions> {
  const options: Partial<ServerOptions> = {};
  if (values.port !== undefined) options.port = parseInteger(values.port, "--port", 0, 65535);
  if (values.host !== undefined) options.host = values.host;
  if (values.engine !== undefined) {
    if (!engines.includes(values.engine)) {
      throw new UsageError(`--engine: expected one of ${engines.join(", ")}, got ${JSON.stringify(values.engine)}`);
    }
    options.engine = values.engine as EngineKind;
  }
  if (values["data-dir"] !== undefined) options.dataDir = values["data-dir"];
  if (values.sync) options.syncEveryCommit = true;
  if (values["nats-url"] !== undefined) options.natsUrl = values["nats-url"];
  if (values["tls-cert"] !== undefined) options.tlsCertPath = values["tls-cert"];
  if (values["tls-key"] !== undefined) options.tlsKeyPath = values["tls-key"];
  if (values["tls-client-ca"] !== undefined) options.tlsClientCaPath = values["tls-client-ca"];
  if (values["tls-client-cert-optional"]) options.tlsClientCertOptional = true;
  if (values["drain-ms"] !== undefined) options.drainMs = parseInteger(values["drain-ms"], "--drain-ms", 0);
  if (values["max-message-bytes"] !== undefined) {
    options.maxMessageBytes = parseInteger(values["max-message-bytes"], "--max-message-bytes", 1);
  }
  if (values["max-request-bytes"] !== undefined) {
    options.maxRequestBytes = parseInteger(values["max-request-bytes"], "--max-request-bytes", 1);
  }
  if (values["heartbeat-ms"] !== undefined) {
    options.heartbeatMs = parseInteger(values["heartbeat-ms"], "--heartbeat-ms", 100);
  }
  if (values["max-stream-buffer-bytes"] !== undefined) {
    options.maxStreamBufferBytes = parseInteger(values["max-stream-buffer-bytes"], "--max-stream-buffer-bytes", 1024);
  }
  if (values["max-ws-payload-bytes"] !== undefined) {
    options.maxWebSocketPayloadBytes = parseInteger(values["max-ws-payload-bytes"], "--max-ws-payload-bytes", 1024);
  }
  if (values["max-streams-per-connection"] !== undefined) {
    options.maxStreamsPerConnection = parseInteger(
      values["max-streams-per-connection"],
      "--max-streams-per-connection",
      1,
    );
  }
  if (values["max-connections-per-ip"] !== undefined) {
    options.maxConnectionsPerIp = parseInteger(values["max-connections-per-ip"], "--max-connections-per-ip", 0);
  }
  if (values["max-connections-per-principal"] !== undefined) {
    options.maxConnectionsPerPrincipal = parseInteger(
      values["max-connections-per-principal"],
      "--max-connections-per-principal",
      0,
    );
  }
  if (values["max-subscriptions-per-principal"] !== undefined) {
    options.maxSubscriptionsPerPrincipal = parseInteger(
      values["max-subscriptions-per-principal"],
      "--max-subscriptions-per-principal",
      0,
    );
  }
  if (values["publish-rate"] !== undefined) {
    options.publishRate = parseInteger(values["publish-rate"], "--publish-rate", 0);
  }
  if (values["publish-burst"] !== undefined) {
    options.publishBurst = parseInteger(values["publish-burst"], "--publish-burst", 1);
  }
  if (values["tunnel-rules"] !== undefined) options.tunnelRulesPath = values["tunnel-rules"];
  if (values["tunnel-http-port"] !== undefined) {
    options.tunnelHttpPort = parseInteger(values["tunnel-http-port"], "--tunnel-http-port", 0, 65535);
  }
  if (values["tunnel-grpc-port"] !== undefined) {
    options.tunnelGrpcPort = parseInteger(values["tunnel-grpc-port"], "--tunnel-grpc-port", 0, 65535);
  }
  if (values["tunnel-max-message-bytes"] !== undefined) {
    options.tunnelMaxMessageBytes = parseInteger(
      values["tunnel-max-message-bytes"],
      "--tunnel-max-message-bytes",
      1024,
    );
  }
  if (values["tunnel-rotate-after-ms"] !== undefined) {
    options.tunnelRotateAfterMs = parseInteger(values["tunnel-rotate-after-ms"], "--tunnel-rotate-after-ms", 0);
  }
  if (values["tunnel-heartbeat-ms"] !== undefined) {
    options.tunnelHeartbeatMs = parseInteger(values["tunnel-heartbeat-ms"], "--tunnel-heartbeat-ms", 100);
  }
  if (values["tunnel-standby-streams"] !== undefined) {
    options.tunnelStandbyStreams = parseInteger(values["tunnel-standby-streams"], "--tunnel-standby-streams", 1);
  }
  if (values["trusted-proxies"] !== undefined) {
    options.trustedProxies = values["trusted-proxies"]
      .split(",")
      .map((range) => range.trim())
      .filter((range) => range !== "");
  }
  if (values["proxy-protocol"]) options.proxyProtocol = true;
  if (values["tunnel-proxy-protocol"]) options.tunnelProxyProtocol = true;
  if (values["proxy-protocol-timeout-ms"] !== undefined) {
    options.proxyProtocolTimeoutMs = parseInteger(
      values["proxy-protocol-timeout-ms"],
      "--proxy-protocol-timeout-ms",
      10,
    );
  }
  if (values["grpc-path"] !== undefined) {
    if (values["grpc-path"] !== "lean" && values["grpc-path"] !== "connect") {
      throw new UsageError(`--grpc-path: expected lean or connect, got ${values["grpc-path"]}`);
    }
    options.grpcPath = values["grpc-path"];
  }
  if (values["log-level"] !== undefined) {
    if (!logLevels.includes(values["log-level"])) {
      throw new UsageError(`--log-level: expected one of ${logLevels.join(", ")}, got ${values["log-level"]}`);
    }
    options.logLevel = values["log-level"] as ServerOptions["logLevel"];
  }
  if (values["auth-secret"] !== undefined) options.authSecret = values["auth-secret"];
  if (values["auth-secret-file"] !== undefined) options.authSecretFile = values["auth-secret-file"];
  if (values["auth-jwks-url"] !== undefined) options.authJwksUrl = values["auth-jwks-url"];
  if (values["auth-issuer"] !== undefined) options.authIssuer = values["auth-issuer"];
  if (values["auth-audience"] !== undefined) options.authAudience = values["auth-audience"];
  if (values.insecure) options.insecure = true;
  if (values["metrics-public"]) options.metricsPublic = true;
  return options;
}

/** The `serve` command: resolves after a signal-triggered drain; a second signal exits at once. */
export const serveCommand = defineCommand(serveSpec, async (args, io) => {
  let options: ServerOptions;
  try {
    options = resolveServerOptions({ ...serverOptionsFromEnv(io.env), ...serverOptionsFromFlags(args) });
  } catch (error) {
    // Contradicting or out-of-range options are usage errors, whether they came from flags or env.
    if (error instanceof StreamgateError && error.code === Code.INVALID_ARGUMENT) throw new UsageError(error.message);
    throw error;
  }
  // Imported here so that client commands never load the server and its engines.
  const { createServer } = await import("../server/index.js");
  let server: Awaited<ReturnType<typeof createServer>>;
  try {
    server = await createServer(options);
  } catch (error) {
    // Auth settings that cannot work (no auth on a public host, a short or unreadable secret) are usage errors.
    if (error instanceof StreamgateError && ["AUTH_NOT_CONFIGURED", "INVALID_OPTION"].includes(error.reason)) {
      throw new UsageError(error.message);
    }
    throw error;
  }
  const address = await server.listen();
  const storage = options.engine === "jetstream" ? `nats ${options.natsUrl}` : `data ${options.dataDir}`;
  io.stderr.write(`streamgate listening on ${address.url} (engine ${options.engine}, ${storage})\n`);

  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        io.stderr.write(`streamgate: ${signal} again, exiting without waiting for the drain\n`);
        process.exit(signal === "SIGINT" ? 130 : 143);
      }
      stopping = true;
      io.stderr.write(`streamgate: ${signal}, draining for up to ${options.drainMs} ms (send it again to exit now)\n`);
      server.drain(options.drainMs).then(
        () => {
          process.off("SIGTERM", onSignal);
          process.off("SIGINT", onSignal);
          resolve(0);
        },
        (error: unknown) => {
          io.stderr.write(`streamgate: drain failed: ${error instanceof Error ? error.message : String(error)}\n`);
          resolve(1);
        },
      );
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
});
