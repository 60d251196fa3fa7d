// `streamgate agent`: run a tunnel agent that dials out to a streamgate server and serves its requests locally.
import { hostname } from "node:os";
import { StreamgateError } from "../errors/index.js";
import { parseInteger, UsageError } from "./args.js";
import { defineCommand } from "./command.js";

const logLevels: readonly string[] = ["trace", "debug", "info", "warn", "error", "silent"];

const agentSpec = {
  path: "agent",
  summary: "Run a tunnel agent: dial out to a streamgate server and forward its requests to local backends.",
  details:
    "The agent keeps a registered session to --server (reconnecting with backoff), and sends each request\n" +
    "the server assigns it to the upstream its --config routes name. --config is reloaded when it changes.\n" +
    "Without a rules file, --to names the backend: --to http://localhost:3000 for HTTP, --to grpc://localhost:50051\n" +
    "for gRPC (grpcs:// and https:// for TLS); give one of each to serve both.\n" +
    "SIGTERM or SIGINT drains (no new requests, live ones finish) and exits 0; a second signal exits at once.\n" +
    "A token or group the server refuses exits 1 at once (retrying would not help).",
  positionals: [],
  options: {
    server: {
      type: "string",
      valueName: "URL",
      description: "Required: the server's main port, http://host:port (h2c) or https://host:port (TLS)",
    },
    token: {
      type: "string",
      valueName: "TOKEN",
      description: "Agent token (scoped to groups by the server's rules)",
      defaultText: "$STREAMGATE_AGENT_TOKEN",
    },
    group: { type: "string", valueName: "GROUP", description: "Required: the client group to join" },
    config: {
      type: "string",
      valueName: "FILE",
      description: "The agent rules file (upstreams and routes); or --to",
    },
    to: {
      type: "string",
      multiple: true,
      valueName: "URL",
      description:
        "Instead of --config: send every HTTP request to http(s)://host:port, every gRPC call to grpc(s)://host:port",
    },
    "client-id": {
      type: "string",
      valueName: "ID",
      description: "Stable name of this agent",
      defaultText: "<hostname>-<pid>",
    },
    "tls-ca": { type: "string", valueName: "PATH", description: "PEM CA that signed the server's certificate" },
    "tls-cert": { type: "string", valueName: "PATH", description: "PEM client certificate (mTLS), with --tls-key" },
    "tls-key": { type: "string", valueName: "PATH", description: "PEM private key of --tls-cert" },
    standby: {
      type: "string",
      valueName: "COUNT",
      description: "Standby streams to open when the server asks for none",
      defaultText: "4",
    },
    "max-concurrent-streams": {
      type: "string",
      valueName: "COUNT",
      description: "Most tunnel streams per session (announced to the server)",
      defaultText: "1000",
    },
    "max-message-bytes": {
      type: "string",
      valueName: "BYTES",
      description: "Largest gRPC message carried either way",
      defaultText: "4194304",
    },
    "drain-ms": {
      type: "string",
      valueName: "MS",
      description: "Longest a drain waits for live requests",
      defaultText: "30000",
    },
    "log-level": {
      type: "string",
      valueName: "LEVEL",
      description: "trace, debug, info, warn, error or silent",
      defaultText: "$STREAMGATE_LOG_LEVEL, else info",
    },
    "log-format": {
      type: "string",
      valueName: "auto|json|pretty",
      description: "Log lines: readable on a terminal and JSON otherwise (auto), or always one of them",
      defaultText: "$STREAMGATE_LOG_FORMAT, else auto",
    },
  },
  examples: [
    "streamgate agent --server http://127.0.0.1:8080 --token $TOKEN --group dev --to http://localhost:3000",
    "streamgate agent --server http://127.0.0.1:8080 --token $TOKEN --group dev --to grpc://localhost:50051",
    "streamgate agent --server https://tunnel.example.com --token $TOKEN --group orders --config agent.yaml",
    "streamgate agent --server http://127.0.0.1:8080 --group dev --config agent.yaml --client-id laptop",
  ],
} as const;

/**
 * Agent rules for `--to` URLs: at most one HTTP backend (every HTTP request) and one gRPC backend (every gRPC call).
 * @throws UsageError for another scheme or a second backend of one kind.
 */
export function rulesForTargets(targets: readonly string[]): string {
  let http: string | undefined;
  let grpc: string | undefined;
  for (const target of targets) {
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      throw new UsageError(
        `--to: not a URL: ${JSON.stringify(target)} (e.g. http://localhost:3000 or grpc://localhost:50051)`,
      );
    }
    const scheme = url.protocol.slice(0, -1);
    const kind =
      scheme === "http" || scheme === "https" ? "http" : scheme === "grpc" || scheme === "grpcs" ? "grpc" : null;
    if (kind === null) {
      throw new UsageError(`--to: expected http://, https://, grpc:// or grpcs://, got ${JSON.stringify(target)}`);
    }
    if ((url.pathname !== "/" && url.pathname !== "") || url.search !== "") {
      throw new UsageError(
        `--to: give only scheme, host and port (requests keep their own path), got ${JSON.stringify(target)}`,
      );
    }
    if ((kind === "http" ? http : grpc) !== undefined) {
      throw new UsageError(`--to: one ${kind === "http" ? "HTTP" : "gRPC"} backend only; use --config for more`);
    }
    const port = url.port === "" ? "" : `:${url.port}`;
    if (kind === "http") http = `${scheme}://${url.hostname}${port}`;
    else {
      if (url.port === "") throw new UsageError(`--to: a gRPC backend needs a port, got ${JSON.stringify(target)}`);
      grpc = `${scheme === "grpcs" ? "https" : "h2c"}://${url.hostname}${port}`;
    }
  }
  const lines = ["upstreams:"];
  if (grpc !== undefined)
    lines.push("  - name: grpc", "    protocol: grpc", `    addresses: [${JSON.stringify(grpc)}]`);
  if (http !== undefined)
    lines.push("  - name: http", "    protocol: http", `    addresses: [${JSON.stringify(http)}]`);
  lines.push("routes:");
  if (grpc !== undefined) lines.push("  - name: grpc", '    match: { service: "*" }', "    upstream: grpc");
  if (http !== undefined) lines.push("  - name: http", "    upstream: http");
  return `${lines.join("\n")}\n`;
}

/** The `agent` command: resolves 0 after a signal-triggered drain; a refused token or group is a failure (exit 1). */
export const agentCommand = defineCommand(agentSpec, async ({ values }, io) => {
  const required = (flag: string, value: string | undefined) => {
    if (value === undefined || value === "")
      throw new UsageError(`--${flag} is required (see streamgate agent --help)`);
    return value;
  };
  const serverUrl = required("server", values.server);
  const token = values.token ?? io.env.STREAMGATE_AGENT_TOKEN;
  if (!token) throw new UsageError("--token or $STREAMGATE_AGENT_TOKEN is required");
  const group = required("group", values.group);
  if ((values.config === undefined) === (values.to === undefined)) {
    throw new UsageError(
      "give --config FILE (agent rules) or --to URL (one backend, e.g. --to http://localhost:3000), not both (see streamgate agent --help)",
    );
  }
  const { parseAgentRules } = await import("../tunnel/rules/index.js");
  const rulesSource =
    values.to === undefined ? undefined : { rules: parseAgentRules(rulesForTargets(values.to), "--to") };
  const logLevel = values["log-level"] ?? io.env.STREAMGATE_LOG_LEVEL ?? "info";
  if (!logLevels.includes(logLevel)) {
    throw new UsageError(`--log-level: expected one of ${logLevels.join(", ")}, got ${logLevel}`);
  }
  const logFormat = values["log-format"] ?? (io.env.STREAMGATE_LOG_FORMAT || "auto");
  if (logFormat !== "auto" && logFormat !== "json" && logFormat !== "pretty") {
    throw new UsageError(`--log-format: expected auto, json or pretty, got ${JSON.stringify(logFormat)}`);
  }
  const integer = (flag: string, value: string | undefined, min: number) =>
    value === undefined ? undefined : parseInteger(value, `--${flag}`, min);

  // Imported here so that other commands never load the tunnel.
  const { createTunnelAgent } = await import("../tunnel/agent/index.js");
  const { createLogger } = await import("../observability/index.js");
  let agent: ReturnType<typeof createTunnelAgent>;
  try {
    agent = createTunnelAgent({
      serverUrl,
      token,
      group,
      clientId: values["client-id"] ?? `${hostname()}-${process.pid}`,
      ...(rulesSource ?? { rulesPath: values.config }),
      tls: { caPath: values["tls-ca"], certPath: values["tls-cert"], keyPath: values["tls-key"] },
      standbyStreams: integer("standby", values.standby, 0),
      maxConcurrentStreams: integer("max-concurrent-streams", values["max-concurrent-streams"], 1),
      maxMessageBytes: integer("max-message-bytes", values["max-message-bytes"], 1024),
      drainTimeoutMs: integer("drain-ms", values["drain-ms"], 0),
      logger: createLogger(logLevel, logFormat),
    });
  } catch (error) {
    // Bad options are usage errors; an invalid rules file is a failure with its own message (exit 1).
    if (error instanceof StreamgateError && error.reason === "INVALID_OPTION") throw new UsageError(error.message);
    throw error;
  }
  io.stderr.write(`streamgate agent: connecting to ${serverUrl} as group ${group}\n`);

  return new Promise<number>((resolve, reject) => {
    let stopping = false;
    const cleanup = () => {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
    };
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        io.stderr.write(`streamgate agent: ${signal} again, exiting without waiting for the drain\n`);
        process.exit(signal === "SIGINT" ? 130 : 143);
      }
      stopping = true;
      io.stderr.write(`streamgate agent: ${signal}, draining (send it again to exit now)\n`);
      void agent.drain();
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    agent.start().then(
      () => io.stderr.write("streamgate agent: registered\n"),
      () => undefined,
    );
    agent.done.then(
      () => {
        cleanup();
        resolve(0);
      },
      (error: unknown) => {
        cleanup();
        reject(error);
      },
    );
  });
});
