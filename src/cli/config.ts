// `streamgate config init|check`: write a commented config file with every default, and check one.
import { existsSync, writeFileSync } from "node:fs";
import { ConfigFileError, formatConfigFile, loadConfigFile, resolveServerOptions } from "../config/index.js";
import { StreamgateError } from "../errors/index.js";
import { CliError } from "./args.js";
import { type CommandGroup, defineCommand } from "./command.js";

const initCommand = defineCommand(
  {
    path: "config init",
    summary: "Write a config file with every option, its default and a comment (streamgate.yaml by default).",
    details: 'FILE "-" prints it instead. An existing file is kept unless --force is given.',
    positionals: ["FILE"],
    requiredPositionals: 0,
    options: { force: { type: "boolean", description: "Overwrite an existing file" } },
    examples: ["streamgate config init", "streamgate config init /etc/streamgate/streamgate.yaml --force"],
  },
  async ({ values, positionals }, io) => {
    const path = positionals[0] ?? "streamgate.yaml";
    const text = formatConfigFile();
    if (path === "-") {
      io.stdout.write(text);
      return 0;
    }
    if (existsSync(path) && !values.force) {
      throw new CliError(`${path} already exists: pass --force to overwrite it, or name another file`);
    }
    try {
      writeFileSync(path, text);
    } catch (error) {
      throw new CliError(`cannot write ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
    io.stdout.write(
      `wrote ${path}; edit it, check it with "streamgate config check ${path}", run "streamgate serve --config ${path}"\n`,
    );
    return 0;
  },
);

const checkCommand = defineCommand(
  {
    path: "config check",
    summary: "Check a config file: YAML, known keys, types, ranges and contradictions. Exits 1 on a problem.",
    positionals: ["FILE"],
    options: {},
    examples: ["streamgate config check streamgate.yaml"],
  },
  async ({ positionals }, io) => {
    const path = positionals[0]!;
    try {
      const options = loadConfigFile(path);
      resolveServerOptions(options);
      const keys = Object.keys(options);
      io.stdout.write(`${path}: ok (${keys.length === 0 ? "no options set" : `sets ${keys.join(", ")}`})\n`);
      return 0;
    } catch (error) {
      if (error instanceof ConfigFileError) throw new CliError(error.message);
      if (error instanceof StreamgateError) throw new CliError(`${path}: ${error.message}`);
      throw error;
    }
  },
);

/** `streamgate config …`. */
export const configGroup: CommandGroup = {
  name: "config",
  summary: "Write and check server config files (serve --config).",
  commands: { init: initCommand, check: checkCommand },
};
