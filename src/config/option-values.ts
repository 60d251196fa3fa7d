// Reads option values from text (flags, environment variables, config files) against the option table.
import { Code, StreamgateError } from "../errors/index.js";
import { formatRange, type OptionDefinition, optionKeys, serverOptionTable } from "./option-table.js";
import type { ServerOptions } from "./server-options.js";

/** A value that does not fit its option; `where` (e.g. `--port`, `$PORT`, `streamgate.yaml:3: port`) leads the message. */
export function invalidOptionValue(where: string, message: string): StreamgateError {
  return new StreamgateError(Code.INVALID_ARGUMENT, `${where}: ${message}`, { reason: "INVALID_OPTION" });
}

const truthy = new Set(["1", "true", "yes", "on"]);
const falsy = new Set(["0", "false", "no", "off"]);

/** The value of option `key` from `text`, checked against its type and range; throws naming `where`. */
export function parseOptionText(key: keyof ServerOptions, text: string, where: string): ServerOptions[typeof key] {
  const definition: OptionDefinition = serverOptionTable[key];
  const trimmed = text.trim();
  switch (definition.type) {
    case "boolean": {
      if (truthy.has(trimmed.toLowerCase())) return true;
      if (falsy.has(trimmed.toLowerCase())) return false;
      throw invalidOptionValue(where, `expected true or false (or 1/0), got ${JSON.stringify(text)}`);
    }
    case "integer": {
      const value = Number(trimmed);
      const { min, max } = definition;
      if (!/^-?\d+$/.test(trimmed) || !Number.isSafeInteger(value)) {
        throw invalidOptionValue(where, `expected an integer${unitSuffix(definition)}, got ${JSON.stringify(text)}`);
      }
      if ((min !== undefined && value < min) || (max !== undefined && value > max)) {
        throw invalidOptionValue(where, `must be ${formatRange(definition)}, got ${value}`);
      }
      return value;
    }
    case "choice": {
      if (!definition.choices?.includes(trimmed)) {
        throw invalidOptionValue(where, `expected one of ${formatRange(definition)}, got ${JSON.stringify(text)}`);
      }
      return trimmed as ServerOptions[typeof key];
    }
    case "string":
      if (trimmed === "") throw invalidOptionValue(where, "must not be empty");
      return text;
    case "list":
      return trimmed
        .split(",")
        .map((item) => item.trim())
        .filter((item) => item !== "") as ServerOptions[typeof key];
  }
}

function unitSuffix(definition: OptionDefinition): string {
  return definition.unit === undefined ? "" : ` (${definition.unit})`;
}

/** Options set in `env`; unset and empty variables are left out so the file or the defaults apply. */
export function serverOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<ServerOptions> {
  const options: Record<string, unknown> = {};
  for (const key of optionKeys) {
    const name = serverOptionTable[key].env;
    const raw = env[name];
    if (raw === undefined || raw === "") continue;
    options[key] = parseOptionText(key, raw, `$${name}`);
  }
  return options as Partial<ServerOptions>;
}

/** Options given as flags, from parseArgs values keyed by flag name (booleans already parsed). */
export function serverOptionsFromFlags(values: Readonly<Record<string, unknown>>): Partial<ServerOptions> {
  const options: Record<string, unknown> = {};
  for (const key of optionKeys) {
    const { flag, type } = serverOptionTable[key];
    const value = values[flag];
    if (value === undefined) continue;
    options[key] = type === "boolean" ? value === true : parseOptionText(key, String(value), `--${flag}`);
  }
  return options as Partial<ServerOptions>;
}
