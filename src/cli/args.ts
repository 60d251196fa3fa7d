// Shared argument parsing for the CLI: command specs, strict parsing, usage text and value parsers.
import { parseArgs } from "node:util";
import { didYouMean } from "../config/index.js";

/** A failure the CLI reports as one line `streamgate: <message>` and exits with `exitCode`. */
export class CliError extends Error {
  override readonly name: string = "CliError";
  /** Process exit code: 1 for failures, 2 for usage errors. */
  readonly exitCode: number;

  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** A usage error (unknown flag, missing argument, bad flag value): exit code 2. */
export class UsageError extends CliError {
  override readonly name = "UsageError";

  constructor(message: string) {
    super(message, 2);
  }
}

/** One flag of a command. */
export interface OptionSpec {
  readonly type: "string" | "boolean";
  /** One-letter alias, e.g. `h`. */
  readonly short?: string;
  /** The flag may repeat; its values are collected in order. */
  readonly multiple?: boolean;
  /** Placeholder shown in usage, e.g. `SECONDS`. Default `VALUE`. */
  readonly valueName?: string;
  /** One-line description for usage. */
  readonly description: string;
  /** Default shown in usage (the default itself is applied by the command). */
  readonly defaultText?: string;
  /** Heading the flag is listed under in usage (commands with many flags); flags without one come first. */
  readonly group?: string;
}

/** A command (or subcommand): what `--help` prints and what the parser accepts. */
export interface CommandSpec {
  /** Words after `streamgate`, e.g. `topics create`. */
  readonly path: string;
  /** One-line summary, shown in lists of commands. */
  readonly summary: string;
  /** Longer explanation shown by `--help` under the summary. */
  readonly details?: string;
  /** Positional arguments, required ones first, e.g. `["NAME"]`. */
  readonly positionals: readonly string[];
  /** Number of leading positionals that are required. Default: all of them. */
  readonly requiredPositionals?: number;
  readonly options: Readonly<Record<string, OptionSpec>>;
  /** Whole command lines as a user types them (`streamgate …`, maybe after `VAR=value` or a pipe). */
  readonly examples?: readonly string[];
}

/** Parsed flag values, typed from the spec's options. */
export type OptionValues<O extends Readonly<Record<string, OptionSpec>>> = {
  [K in keyof O]?: O[K]["type"] extends "boolean" ? boolean : O[K]["multiple"] extends true ? string[] : string;
};

/** The result of {@link parseCommand}: `help` when `--help`/`-h` was given. */
export type Parsed<S extends CommandSpec> =
  | { readonly help: true }
  | { readonly help: false; readonly values: OptionValues<S["options"]>; readonly positionals: string[] };

/** The `--help` flag every command accepts. */
export const helpOption = { type: "boolean", short: "h", description: "Print this help and exit" } as const;

function allOptions(spec: CommandSpec): [string, OptionSpec][] {
  return Object.entries<OptionSpec>({ ...spec.options, help: helpOption });
}

/** True when argv asks for help before any `--` terminator. */
export function wantsHelp(argv: readonly string[]): boolean {
  for (const arg of argv) {
    if (arg === "--") return false;
    if (arg === "--help" || arg === "-h") return true;
  }
  return false;
}

/** Parses argv strictly against `spec`; unknown flags and wrong positional counts throw {@link UsageError}. */
export function parseCommand<S extends CommandSpec>(spec: S, argv: readonly string[]): Parsed<S> {
  if (wantsHelp(argv)) return { help: true };
  const options: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> = {};
  for (const [name, option] of allOptions(spec)) {
    options[name] = { type: option.type, multiple: option.multiple ?? false };
    if (option.short !== undefined) options[name].short = option.short;
  }
  const hint = `(see streamgate ${spec.path} --help)`;
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    // `--no-FLAG` turns a boolean off: it overrides a config file or environment variable that turned it on.
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: true, allowNegative: true });
  } catch (error) {
    const flags = allOptions(spec).map(([name]) => `--${name}`);
    throw new UsageError(`${describeParseError(error, flags)} ${hint}`);
  }
  const required = spec.requiredPositionals ?? spec.positionals.length;
  if (parsed.positionals.length < required) {
    throw new UsageError(`missing ${spec.positionals.slice(parsed.positionals.length, required).join(" ")} ${hint}`);
  }
  if (parsed.positionals.length > spec.positionals.length) {
    const extra = parsed.positionals[spec.positionals.length];
    throw new UsageError(`unexpected argument ${JSON.stringify(extra)} ${hint}`);
  }
  return { help: false, values: parsed.values as OptionValues<S["options"]>, positionals: parsed.positionals };
}

function describeParseError(error: unknown, flags: readonly string[]): string {
  const message = error instanceof Error ? error.message : String(error);
  const unknown = /Unknown option '([^']+)'/.exec(message);
  if (unknown) return `unknown option ${unknown[1]}${didYouMean(unknown[1]!, flags, (flag) => flag)}`;
  const missing = /Option '([^' ]+)[^']*' argument missing/.exec(message);
  if (missing) return `option ${missing[1]} needs a value`;
  const ambiguous = /Option '([^']+)' argument is ambiguous/.exec(message);
  if (ambiguous) return `option ${ambiguous[1]} needs a value (write ${ambiguous[1]}=-VALUE for one starting with -)`;
  const noArgument = /Option '([^']+)' does not take an argument/.exec(message);
  if (noArgument) return `option ${noArgument[1]} does not take a value`;
  return message.split("\n")[0] ?? message;
}

/** The usage text of a command: synopsis, flags with defaults, examples. */
export function formatUsage(spec: CommandSpec): string {
  const required = spec.requiredPositionals ?? spec.positionals.length;
  const positionals = spec.positionals.map((name, index) => (index < required ? name : `[${name}]`));
  const lines = [`Usage: streamgate ${[spec.path, ...positionals, "[flags]"].join(" ")}`, "", spec.summary, ""];
  if (spec.details !== undefined) lines.push(spec.details, "");
  const rows: [string, string][] = [];
  const headings = new Map<string | undefined, [string, OptionSpec][]>();
  for (const entry of allOptions(spec)) headings.set(entry[1].group, [...(headings.get(entry[1].group) ?? []), entry]);
  // Ungrouped flags first (--help among them), then each group under its heading, in order of appearance.
  const sections = [
    [undefined, headings.get(undefined) ?? []] as const,
    ...[...headings].filter(([group]) => group !== undefined),
  ];
  for (const [group, entries] of sections) {
    if (group !== undefined) rows.push([`  ${group}:`, ""]);
    for (const [name, option] of entries) {
      const short = option.short === undefined ? "    " : `-${option.short}, `;
      const value = option.type === "string" ? ` ${option.valueName ?? "VALUE"}` : "";
      const notes = [option.multiple ? "repeatable" : "", option.defaultText ? `default ${option.defaultText}` : ""];
      const suffix = notes.filter((note) => note !== "").join("; ");
      rows.push([
        `  ${short}--${name}${value}`,
        suffix === "" ? option.description : `${option.description} (${suffix})`,
      ]);
    }
  }
  const width = Math.max(...rows.filter(([, right]) => right !== "").map(([left]) => left.length)) + 2;
  lines.push("Flags:", ...rows.map(([left, right]) => (right === "" ? left : left.padEnd(width) + right)));
  if (spec.examples && spec.examples.length > 0) {
    lines.push("", "Examples:", ...spec.examples.map((example) => `  ${example}`));
  }
  return `${lines.join("\n")}\n`;
}

const durationUnits: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400 };

/**
 * Parses a duration such as `600s`, `10m`, `1h30m`, `7d` or a bare number of seconds into seconds.
 * Throws {@link UsageError} naming `flag` when the text is not a duration.
 */
export function parseDurationSeconds(text: string, flag: string): number {
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  const parts = [...trimmed.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)];
  const matched = parts.map((part) => part[0]).join("");
  if (parts.length === 0 || matched !== trimmed) {
    throw new UsageError(`${flag}: invalid duration ${JSON.stringify(text)} (expected e.g. 600s, 10m, 1h30m, 7d)`);
  }
  return parts.reduce((total, part) => total + Number(part[1]) * (durationUnits[part[2]!] ?? 0), 0);
}

/** A duration in Google's JSON form, e.g. `604800s`, from CLI text such as `7d`. */
export function toProtoDuration(text: string, flag: string): string {
  const seconds = parseDurationSeconds(text, flag);
  return `${Number(seconds.toFixed(9))}s`;
}

/** Parses an integer flag value, optionally bounded; throws {@link UsageError} naming `flag`. */
export function parseInteger(
  text: string,
  flag: string,
  min = Number.MIN_SAFE_INTEGER,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const value = Number(text);
  if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(value)) {
    throw new UsageError(`${flag}: expected an integer, got ${JSON.stringify(text)}`);
  }
  if (value < min || value > max) throw new UsageError(`${flag}: must be between ${min} and ${max}, got ${value}`);
  return value;
}

/** Parses repeated `k=v` flags into a record; throws {@link UsageError} on an entry without `=`. */
export function parseKeyValues(entries: readonly string[] | undefined, flag: string): Record<string, string> {
  const record: Record<string, string> = {};
  for (const entry of entries ?? []) {
    const index = entry.indexOf("=");
    if (index <= 0) throw new UsageError(`${flag}: expected KEY=VALUE, got ${JSON.stringify(entry)}`);
    record[entry.slice(0, index)] = entry.slice(index + 1);
  }
  return record;
}
