// `streamgate serve`: run the server with options from flags over env over a config file over defaults (the option
// table in src/config/option-table.ts); check the environment first, undo a failed start, drain on SIGTERM/SIGINT.
import {
  ConfigFileError,
  formatDefault,
  formatRange,
  loadConfigFile,
  type OptionDefinition,
  optionKeys,
  optionSections,
  resolveServerOptions,
  type ServerOptions,
  serverOptionsFromEnv,
  serverOptionsFromFlags,
  serverOptionTable,
} from "../config/index.js";
import { Code, StreamgateError } from "../errors/index.js";
import { type OptionSpec, UsageError } from "./args.js";
import { type CliIo, defineCommand } from "./command.js";
import { describeStartError, isWildcardHost, prepareStart, reachableUrls } from "./serve-environment.js";

/** The flag of one option, generated from its table entry. */
function flagOf(key: keyof ServerOptions): OptionSpec {
  const definition: OptionDefinition = serverOptionTable[key];
  const range = definition.type === "choice" ? "" : formatRange(definition);
  const notes = [definition.unit, range === "" ? "" : range].filter((note) => note !== undefined && note !== "");
  return {
    type: definition.type === "boolean" ? "boolean" : "string",
    valueName: definition.valueName ?? definition.choices?.join("|") ?? "VALUE",
    description: notes.length === 0 ? definition.description : `${definition.description} (${notes.join(", ")})`,
    defaultText: `$${definition.env}, else ${formatDefault(key)}`,
    group: optionSections[definition.section],
  };
}

/** `--config` and one flag per option of the table. */
export const serveFlags: Readonly<Record<string, OptionSpec>> = {
  config: {
    type: "string",
    valueName: "FILE",
    description: "YAML file of options (keys: docs/options.md; streamgate config init writes one)",
    defaultText: "$STREAMGATE_CONFIG, else none",
  },
  ...Object.fromEntries(optionKeys.map((key) => [serverOptionTable[key].flag, flagOf(key)])),
};

const serveSpec = {
  path: "serve",
  summary: "Run the streamgate server on one port.",
  details:
    "Precedence: flags > environment variables > --config file > defaults. SIGTERM or SIGINT drains\n" +
    "(stop accepting, tell streams to reconnect, wait up to --drain-ms) and exits 0; a second signal exits at once.",
  positionals: [],
  options: serveFlags,
  examples: [
    "streamgate serve --host 127.0.0.1",
    "streamgate serve --config streamgate.yaml",
    "streamgate serve --host 127.0.0.1 --port 9000 --data-dir /var/lib/streamgate --sync",
    "streamgate serve --host 127.0.0.1 --engine jetstream --nats-url nats://nats:4222",
    "streamgate serve --auth-secret-file secret.txt --auth-secret-generate",
  ],
} as const;

/**
 * Resolves the server options of a `serve` (or `token`, `config check`) command line: flags over env over the
 * config file (`--config` or $STREAMGATE_CONFIG) over defaults. Bad values and contradictions are usage errors.
 */
export function resolveCommandOptions(
  values: Readonly<Record<string, unknown>>,
  env: NodeJS.ProcessEnv,
): ServerOptions {
  const configPath = (values.config as string | undefined) ?? (env.STREAMGATE_CONFIG || undefined);
  try {
    const fromFile = configPath === undefined ? {} : loadConfigFile(configPath);
    return resolveServerOptions({ ...fromFile, ...serverOptionsFromEnv(env), ...serverOptionsFromFlags(values) });
  } catch (error) {
    if (error instanceof ConfigFileError) throw new UsageError(error.message);
    // Contradicting or out-of-range options are usage errors, whether they came from flags, env or the file.
    if (error instanceof StreamgateError && error.code === Code.INVALID_ARGUMENT) throw new UsageError(error.message);
    throw error;
  }
}

function startLines(options: ServerOptions, address: { host: string; port: number; url: string }): string[] {
  const scheme = options.tlsCertPath === null ? "http" : "https";
  const urls = reachableUrls(scheme, address.host, address.port);
  const storage = options.engine === "jetstream" ? `nats ${options.natsUrl}` : `data ${options.dataDir}`;
  const lines = [`streamgate listening on ${urls.join(" and ")} (engine ${options.engine}, ${storage})`];
  if (isWildcardHost(address.host)) {
    lines.push(
      `streamgate: warning: bound to all interfaces (${address.host}): other machines can connect; bind one address with --host`,
    );
  }
  return lines;
}

/** The `serve` command: resolves after a signal-triggered drain; a second signal exits at once. */
export const serveCommand = defineCommand(serveSpec, async ({ values }, io) => {
  const options = resolveCommandOptions(values, io.env);
  const footprint = prepareStart(options);
  // Imported here so that client commands never load the server and its engines.
  const { createServer } = await import("../server/index.js");
  const { createLogger } = await import("../observability/index.js");
  const logger = createLogger(options.logLevel, options.logFormat);
  let server: Awaited<ReturnType<typeof createServer>> | undefined;
  let address: { host: string; port: number; url: string };
  try {
    server = await createServer(options, { logger });
    address = await server.listen();
  } catch (error) {
    // A failed start says one thing: why (not "stopped" log lines from closing what was opened).
    logger.level = "silent";
    await server?.close().catch(() => undefined);
    footprint.undo();
    // Auth settings that cannot work (no auth on a public host, a short or unreadable secret) are usage errors.
    if (error instanceof StreamgateError && ["AUTH_NOT_CONFIGURED", "INVALID_OPTION"].includes(error.reason)) {
      throw new UsageError(error.message);
    }
    throw describeStartError(error, options) ?? error;
  }
  for (const line of startLines(options, address)) io.stderr.write(`${line}\n`);
  const tunnel = server.tunnel?.addresses();
  if (tunnel) {
    const scheme = options.tlsCertPath === null ? "http" : "https";
    io.stderr.write(
      `streamgate tunnel entries: HTTP ${reachableUrls(scheme, tunnel.http.host, tunnel.http.port)[0]}, gRPC ${reachableUrls(scheme, tunnel.grpc.host, tunnel.grpc.port)[0]}\n`,
    );
  }
  if (footprint.generatedSecretFile !== null) printGeneratedSecret(io, footprint.generatedSecretFile, address.url);
  return waitForSignals(io, server, options.drainMs);
});

function printGeneratedSecret(io: CliIo, path: string, url: string): void {
  io.stderr.write(
    `streamgate: generated a new auth secret in ${path} (mode 0600); it is read again on every start. Mint a token:\n` +
      `  streamgate token create --auth-secret-file ${path} --sub me --grant 'admin:*' --ttl 1h\n` +
      `  then: STREAMGATE_TOKEN=<token> streamgate topics list --server ${url}\n`,
  );
}

function waitForSignals(
  io: CliIo,
  server: { drain(graceMs: number): Promise<void> },
  drainMs: number,
): Promise<number> {
  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        io.stderr.write(`streamgate: ${signal} again, exiting without waiting for the drain\n`);
        process.exit(signal === "SIGINT" ? 130 : 143);
      }
      stopping = true;
      io.stderr.write(`streamgate: ${signal}, draining for up to ${drainMs} ms (send it again to exit now)\n`);
      server.drain(drainMs).then(
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
}
