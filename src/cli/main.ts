// Entry of the `streamgate` command: dispatches to a command and turns every failure into one line and an exit code.
import { didYouMean } from "../config/index.js";
import { codeName, StreamgateError } from "../errors/index.js";
import { agentCommand } from "./agent.js";
import { CliError, UsageError } from "./args.js";
import { chatCommand } from "./chat.js";
import { type CliIo, type Command, type CommandGroup, cliVersion, processIo, runGroup } from "./command.js";
import { createCompletionCommand } from "./completion.js";
import { configGroup } from "./config.js";
import { contextGroup } from "./contexts.js";
import { oneLine } from "./output.js";
import { publishCommand } from "./publish.js";
import { pullCommand } from "./pull.js";
import { seekCommand } from "./seek.js";
import { serveCommand } from "./serve.js";
import { snapshotsGroup } from "./snapshots.js";
import { subscriptionsGroup } from "./subscriptions.js";
import { tailCommand } from "./tail.js";
import { tokenGroup } from "./token.js";
import { topicsGroup } from "./topics.js";
import { tunnelGroup } from "./tunnel.js";

/** Top-level commands: a single command or a group of subcommands. */
export const commands: Readonly<Record<string, Command | CommandGroup>> = {
  serve: serveCommand,
  topics: topicsGroup,
  subscriptions: subscriptionsGroup,
  snapshots: snapshotsGroup,
  publish: publishCommand,
  pull: pullCommand,
  seek: seekCommand,
  chat: chatCommand,
  tail: tailCommand,
  agent: agentCommand,
  tunnel: tunnelGroup,
  token: tokenGroup,
  config: configGroup,
  context: contextGroup,
  completion: createCompletionCommand(() => commands),
};

/** Every runnable command path, e.g. `["topics", "create"]`; used by tests and docs. */
export function commandPaths(): string[][] {
  const paths: string[][] = [];
  for (const [name, entry] of Object.entries(commands)) {
    if ("spec" in entry) paths.push([name]);
    else for (const sub of Object.keys(entry.commands)) paths.push([name, sub]);
  }
  return paths;
}

/** The top-level usage text. */
export function formatMainUsage(): string {
  const rows: [string, string][] = Object.entries(commands).map(([name, entry]) => [
    "spec" in entry ? name : `${name} ${Object.keys(entry.commands).join("|")}`,
    "spec" in entry ? entry.spec.summary : entry.summary,
  ]);
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  return [
    "Usage: streamgate COMMAND [flags]",
    "",
    "A self-hosted, Pub/Sub-compatible event broker. Client commands talk Pub/Sub REST to --server.",
    "",
    "Commands:",
    ...rows.map(([left, right]) => `  ${left.padEnd(width)}${right}`),
    `  ${"help [COMMAND]".padEnd(width)}Print help for streamgate or a command.`,
    "",
    "Flags:",
    "  -v, --version  Print the version and exit",
    "  -h, --help     Print this help and exit",
    "",
    'Run "streamgate COMMAND --help" for the flags of a command. Docs: docs/cli.md',
    "",
  ].join("\n");
}

/**
 * Runs the CLI with `argv` (without node and script) and resolves to the exit code:
 * 0 success, 1 failure (one line `streamgate: <reason>` on stderr), 2 usage error.
 */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (error) {
    const { exitCode, message } = describeFailure(error, io);
    io.stderr.write(`streamgate: ${oneLine(message)}\n`);
    return exitCode;
  }
}

async function dispatch(argv: readonly string[], io: CliIo): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    io.stdout.write(formatMainUsage());
    return 0;
  }
  if (first === "--version" || first === "-v" || first === "-V" || first === "version") {
    io.stdout.write(`streamgate ${cliVersion()}\n`);
    return 0;
  }
  if (first === "--help" || first === "-h") {
    io.stdout.write(formatMainUsage());
    return 0;
  }
  if (first === "help") return help(rest, io);
  const entry = Object.hasOwn(commands, first) ? commands[first] : undefined;
  if (entry === undefined) {
    if (first.startsWith("-")) {
      throw new UsageError(
        `unknown option ${first}${didYouMean(first, ["--help", "--version"])} (see streamgate help)`,
      );
    }
    const hint = didYouMean(first, Object.keys(commands), (name) => `streamgate ${name}`);
    throw new UsageError(`unknown command ${JSON.stringify(first)}${hint} (see streamgate help)`);
  }
  return "spec" in entry ? entry.run(rest, io) : runGroup(entry, rest, io);
}

/** `streamgate help [COMMAND [SUBCOMMAND]]`: the same text as `--help` on that command. */
function help(words: readonly string[], io: CliIo): Promise<number> {
  if (words.length === 0) {
    io.stdout.write(formatMainUsage());
    return Promise.resolve(0);
  }
  return dispatch([...words, "--help"], io);
}

function describeFailure(error: unknown, io: CliIo): { exitCode: number; message: string } {
  if (error instanceof CliError) return { exitCode: error.exitCode, message: error.message };
  if (error instanceof StreamgateError) return { exitCode: 1, message: `${codeName(error.code)}: ${error.message}` };
  if ((io.env.STREAMGATE_TRACE ?? "").split(",").includes("cli") && error instanceof Error && error.stack) {
    io.stderr.write(`${error.stack}\n`);
  }
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  // System errors (EADDRINUSE, EACCES, ...) carry their own readable message.
  return { exitCode: 1, message: typeof code === "string" && /^E[A-Z]+$/.test(code) ? message : `error: ${message}` };
}
