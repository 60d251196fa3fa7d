// The shape of a CLI command: its I/O, its spec-driven parsing and help, and groups of subcommands.
import { readFileSync } from "node:fs";
import { didYouMean } from "../config/index.js";
import { type CommandSpec, formatUsage, type OptionValues, parseCommand, UsageError } from "./args.js";

/** Where a command reads and writes; the process by default, captured buffers in tests. */
export interface CliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

/** The I/O of the running process. */
export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env };
}

/** A runnable command: `run` parses argv (after the command words) and resolves to the exit code. */
export interface Command {
  readonly spec: CommandSpec;
  run(argv: readonly string[], io: CliIo): Promise<number>;
}

/** A command with subcommands, e.g. `topics create|list|get|delete`. */
export interface CommandGroup {
  readonly name: string;
  readonly summary: string;
  readonly commands: Readonly<Record<string, Command>>;
}

/** Arguments a command handler receives once parsing succeeded. */
export interface CommandArgs<S extends CommandSpec> {
  readonly values: OptionValues<S["options"]>;
  readonly positionals: readonly string[];
}

/** Wraps a handler with strict parsing against `spec` and `--help`; a handler returning nothing exits 0. */
export function defineCommand<S extends CommandSpec>(
  spec: S,
  handler: (args: CommandArgs<S>, io: CliIo) => Promise<number | undefined>,
): Command {
  return {
    spec,
    async run(argv, io) {
      const parsed = parseCommand(spec, argv);
      if (parsed.help) {
        io.stdout.write(formatUsage(spec));
        return 0;
      }
      return (await handler({ values: parsed.values, positionals: parsed.positionals }, io)) ?? 0;
    },
  };
}

/** Usage text of a group: its subcommands and their summaries. */
export function formatGroupUsage(group: CommandGroup): string {
  const names = Object.keys(group.commands);
  const width = Math.max(...names.map((name) => name.length)) + 2;
  return [
    `Usage: streamgate ${group.name} ${names.join("|")} [flags]`,
    "",
    group.summary,
    "",
    "Commands:",
    ...Object.entries(group.commands).map(([name, command]) => `  ${name.padEnd(width)}${command.spec.summary}`),
    "",
    `Run "streamgate ${group.name} COMMAND --help" for the flags of a command.`,
    "",
  ].join("\n");
}

/** Runs a group's subcommand: none, `--help` or `help` prints the group usage; an unknown one exits 2. */
export async function runGroup(group: CommandGroup, argv: readonly string[], io: CliIo): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === "--help" || first === "-h" || first === "help") {
    io.stdout.write(formatGroupUsage(group));
    return 0;
  }
  const command = Object.hasOwn(group.commands, first) ? group.commands[first] : undefined;
  if (command === undefined) {
    const what = first.startsWith("-") ? `option ${first}` : `command ${group.name} ${first}`;
    const hint = first.startsWith("-")
      ? ""
      : didYouMean(first, Object.keys(group.commands), (name) => `streamgate ${group.name} ${name}`);
    throw new UsageError(`unknown ${what}${hint} (see streamgate ${group.name} --help)`);
  }
  return command.run(rest, io);
}

let version: string | undefined;

/** The package version, e.g. `0.1.0`; `unknown` if package.json cannot be read. */
export function cliVersion(): string {
  if (version === undefined) {
    try {
      const text = readFileSync(new URL("../../package.json", import.meta.url), "utf8");
      const parsed = JSON.parse(text) as { version?: unknown };
      version = typeof parsed.version === "string" ? parsed.version : "unknown";
    } catch {
      version = "unknown";
    }
  }
  return version;
}
