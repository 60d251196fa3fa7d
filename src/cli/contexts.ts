// `streamgate context add|use|ls|rm`: saved server/token/project sets that every client command uses.
import { UsageError } from "./args.js";
import { type CommandGroup, defineCommand } from "./command.js";
import { resolveServerUrl } from "./context.js";
import { formatTable } from "./output.js";
import { contextFile, findContext, readContextStore, type SavedContext, writeContextStore } from "./saved-contexts.js";

const addCommand = defineCommand(
  {
    path: "context add",
    summary: "Save a context (server URL, token, project) under NAME; the first one saved becomes current.",
    details: "Stored with mode 0600 in $XDG_CONFIG_HOME/streamgate/contexts.json (~/.config when unset).",
    positionals: ["NAME"],
    options: {
      server: { type: "string", valueName: "URL", description: "Required: the server base URL" },
      token: { type: "string", valueName: "TOKEN", description: "Bearer token client commands send" },
      project: { type: "string", valueName: "ID", description: "Project of short names" },
      description: { type: "string", valueName: "TEXT", description: "A note shown by context ls" },
      use: { type: "boolean", description: "Make it the current context" },
    },
    examples: [
      "streamgate context add local --server http://localhost:8080",
      "streamgate context add prod --server https://events.example.com --token $TOKEN --project shop --use",
    ],
  },
  async ({ values, positionals }, io) => {
    const name = positionals[0]!;
    if (!/^[\w.-]+$/.test(name))
      throw new UsageError(`invalid context name ${JSON.stringify(name)} (letters, digits, . _ -)`);
    if (values.server === undefined) throw new UsageError("--server is required (see streamgate context add --help)");
    const context: SavedContext = { server: resolveServerUrl(values.server, {}) };
    if (values.token !== undefined) context.token = values.token;
    if (values.project !== undefined) context.project = values.project;
    if (values.description !== undefined) context.description = values.description;
    const store = readContextStore(io.env);
    const replaced = Object.hasOwn(store.contexts, name);
    store.contexts[name] = context;
    if (values.use || store.current === null) store.current = name;
    writeContextStore(io.env, store);
    const current = store.current === name ? " (current)" : "";
    io.stdout.write(`${replaced ? "updated" : "saved"} context ${name}${current} in ${contextFile(io.env)}\n`);
    return 0;
  },
);

const useCommand = defineCommand(
  {
    path: "context use",
    summary: "Make NAME the current context.",
    positionals: ["NAME"],
    options: {},
    examples: ["streamgate context use prod"],
  },
  async ({ positionals }, io) => {
    const store = readContextStore(io.env);
    const name = positionals[0]!;
    findContext(store, name);
    store.current = name;
    writeContextStore(io.env, store);
    io.stdout.write(`using context ${name}\n`);
    return 0;
  },
);

const listCommand = defineCommand(
  {
    path: "context ls",
    summary: "List saved contexts; * marks the current one.",
    positionals: [],
    options: {},
    examples: ["streamgate context ls"],
  },
  async (_args, io) => {
    const store = readContextStore(io.env);
    const rows = Object.entries(store.contexts).map(([name, context]) => [
      `${store.current === name ? "*" : " "} ${name}`,
      context.server,
      context.project ?? "",
      context.token === undefined ? "no" : "yes",
      context.description ?? "",
    ]);
    if (rows.length === 0) {
      io.stdout.write("no saved contexts; add one with: streamgate context add NAME --server URL\n");
      return 0;
    }
    io.stdout.write(formatTable(["  NAME", "SERVER", "PROJECT", "TOKEN", "DESCRIPTION"], rows));
    return 0;
  },
);

const removeCommand = defineCommand(
  {
    path: "context rm",
    summary: "Remove a saved context.",
    positionals: ["NAME"],
    options: {},
    examples: ["streamgate context rm prod"],
  },
  async ({ positionals }, io) => {
    const store = readContextStore(io.env);
    const name = positionals[0]!;
    findContext(store, name);
    delete store.contexts[name];
    if (store.current === name) store.current = null;
    writeContextStore(io.env, store);
    io.stdout.write(`removed context ${name}\n`);
    return 0;
  },
);

/** `streamgate context …`. */
export const contextGroup: CommandGroup = {
  name: "context",
  summary: "Save servers and tokens under names and switch between them (like nats context).",
  commands: { add: addCommand, use: useCommand, ls: listCommand, rm: removeCommand },
};
