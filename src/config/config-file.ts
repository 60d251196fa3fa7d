// Config files of `streamgate serve --config`: YAML with the option table's keys, read strictly (unknown keys,
// wrong types and out-of-range values are refused with file, line and key), and the commented file `config init` writes.
import { readFileSync } from "node:fs";
import { isMap, isScalar, isSeq, LineCounter, parseDocument } from "yaml";
import { closestMatch } from "./did-you-mean.js";
import { formatRange, type OptionDefinition, optionKeys, optionSections, serverOptionTable } from "./option-table.js";
import { parseOptionText } from "./option-values.js";
import { defaultServerOptions, type ServerOptions } from "./server-options.js";

/** One thing wrong in a config file. */
export interface ConfigFileProblem {
  source: string;
  /** 1-based line. */
  line: number;
  /** The key concerned, or "" for the file as a whole. */
  field: string;
  problem: string;
}

/** A config file that cannot be used; the message lists every problem as `file:line: key: problem`. */
export class ConfigFileError extends Error {
  override readonly name = "ConfigFileError";
  readonly problems: readonly ConfigFileProblem[];

  constructor(problems: readonly ConfigFileProblem[]) {
    super(problems.map(formatProblem).join("; "));
    this.problems = problems;
  }
}

function formatProblem({ source, line, field, problem }: ConfigFileProblem): string {
  return `${source}:${line}: ${field === "" ? "" : `${field}: `}${problem}`;
}

const byFlag = new Map<string, string>(optionKeys.map((key) => [serverOptionTable[key].flag, key]));
const byEnv = new Map<string, string>(optionKeys.map((key) => [serverOptionTable[key].env, key]));

/** Why `key` is not a config key, with the closest one when there is one. */
function unknownKeyProblem(key: string): string {
  // Someone who wrote the flag or env name meant that option: say its config key.
  const meant = byFlag.get(key.replace(/^--/, "")) ?? byEnv.get(key) ?? closestMatch(key, optionKeys);
  return `unknown key ${JSON.stringify(key)}${meant === undefined ? "" : ` (did you mean "${meant}"?)`}`;
}

/** Parses the text of a config file (`source` names it in messages) into the options it sets. */
export function parseConfigFile(text: string, source: string): Partial<ServerOptions> {
  const lines = new LineCounter();
  const document = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const lineOf = (offset: number | undefined) => (offset === undefined ? 1 : lines.linePos(offset).line);
  const problems: ConfigFileProblem[] = document.errors.map((error) => ({
    source,
    line: lineOf(error.pos[0]),
    field: "",
    problem: `not valid YAML: ${error.message.split("\n")[0]}`,
  }));
  if (problems.length > 0) throw new ConfigFileError(problems);
  const contents = document.contents;
  if (contents === null || (isScalar(contents) && contents.value === null)) return {};
  if (!isMap(contents)) {
    throw new ConfigFileError([
      { source, line: lineOf(contents.range?.[0]), field: "", problem: "expected a map of option: value" },
    ]);
  }
  const options: Record<string, unknown> = {};
  for (const pair of contents.items) {
    const keyNode = pair.key;
    const line = lineOf(isScalar(keyNode) ? keyNode.range?.[0] : undefined);
    const key = isScalar(keyNode) ? String(keyNode.value) : "";
    if (!Object.hasOwn(serverOptionTable, key)) {
      problems.push({ source, line, field: "", problem: unknownKeyProblem(key) });
      continue;
    }
    const option = key as keyof ServerOptions;
    const valueNode = pair.value;
    const definition: OptionDefinition = serverOptionTable[option];
    if (definition.type === "list" && isSeq(valueNode)) {
      const items = valueNode.items.map((item) => (isScalar(item) ? String(item.value) : null));
      if (items.some((item) => item === null)) {
        problems.push({ source, line, field: key, problem: "expected a list of values" });
        continue;
      }
      options[option] = parseOptionText(option, items.join(","), "");
      continue;
    }
    if (!isScalar(valueNode)) {
      problems.push({ source, line, field: key, problem: "expected a single value, not a list or map" });
      continue;
    }
    if (valueNode.value === null) continue;
    const value = valueNode.value;
    if (definition.type === "boolean" && typeof value !== "boolean") {
      problems.push({ source, line, field: key, problem: `expected true or false, got ${JSON.stringify(value)}` });
      continue;
    }
    try {
      options[option] = typeof value === "boolean" ? value : parseOptionText(option, String(value), "");
    } catch (error) {
      problems.push({ source, line, field: key, problem: (error as Error).message.replace(/^: /, "") });
    }
  }
  if (problems.length > 0) throw new ConfigFileError(problems);
  return options as Partial<ServerOptions>;
}

/** Reads and parses the config file at `path`. */
export function loadConfigFile(path: string): Partial<ServerOptions> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "error";
    const why = code === "ENOENT" ? "no such file (create one with: streamgate config init FILE)" : code;
    throw new ConfigFileError([{ source: path, line: 1, field: "", problem: `cannot read the config file: ${why}` }]);
  }
  return parseConfigFile(text, path);
}

/** The YAML form of a default value. */
function yamlValue(value: unknown): string {
  if (Array.isArray(value)) return JSON.stringify(value);
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

/**
 * The file `streamgate config init` writes: every option with a comment (what, unit, range, flag, env var) and its
 * default; options without a default (paths, secrets) are commented out.
 */
export function formatConfigFile(): string {
  const out = [
    "# streamgate server configuration: streamgate serve --config FILE",
    "# Every option with its default. Precedence: flags > environment variables > this file > defaults.",
    "# Reference: docs/options.md. Check a file with: streamgate config check FILE",
  ];
  for (const [section, title] of Object.entries(optionSections)) {
    out.push("", `# --- ${title} ---`);
    for (const key of optionKeys) {
      const definition: OptionDefinition = serverOptionTable[key];
      if (definition.section !== section) continue;
      const range = formatRange(definition);
      const notes = [definition.unit, range === "" ? "" : definition.type === "choice" ? range : `range ${range}`]
        .filter((note) => note !== undefined && note !== "")
        .join("; ");
      out.push(
        `# ${definition.description}${notes === "" ? "" : ` (${notes})`}. Flag --${definition.flag}, env ${definition.env}.`,
      );
      const value = defaultServerOptions[key];
      if (value === null || definition.secret) out.push(`# ${key}: ${definition.valueName ?? "VALUE"}`);
      else out.push(`${key}: ${yamlValue(value)}`);
    }
  }
  return `${out.join("\n")}\n`;
}
