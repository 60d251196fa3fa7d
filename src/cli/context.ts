// What every client command shares: the --server/--project/--token flags, the REST client, resource names.
import { DEFAULT_PROJECT } from "../broker/names.js";
import { CliError, type OptionValues, UsageError } from "./args.js";
import { cliVersion } from "./command.js";
import { RestClient } from "./rest-client.js";
import { selectedContext } from "./saved-contexts.js";

/** The project of short names when none is given: the same on every transport, in the CLI and the dashboard. */
export { DEFAULT_PROJECT };

/** Flags of every command that talks to a server. */
export const clientOptions = {
  server: {
    type: "string",
    valueName: "URL",
    description: "Server base URL",
    defaultText:
      "$STREAMGATE_URL, else the current context's, else http://$PUBSUB_EMULATOR_HOST, else http://localhost:8080",
  },
  project: {
    type: "string",
    valueName: "ID",
    description: "Project of short names",
    defaultText: `$STREAMGATE_PROJECT, else the current context's, else "${DEFAULT_PROJECT}"`,
  },
  token: {
    type: "string",
    valueName: "TOKEN",
    description: "Bearer token sent as Authorization",
    defaultText: "$STREAMGATE_TOKEN, else the current context's",
  },
  context: {
    type: "string",
    valueName: "NAME",
    description: "Saved context to use (streamgate context add/use); wins over $STREAMGATE_URL and $STREAMGATE_TOKEN",
    defaultText: "$STREAMGATE_CONTEXT, else the current one",
  },
} as const;

/** Where a client command connects, after flags, environment and the saved context. */
export interface Connection {
  readonly baseUrl: string;
  readonly token: string | undefined;
  readonly project: string;
}

/**
 * Resolves --server, --token and --project: a flag wins; then an explicit context (--context, $STREAMGATE_CONTEXT);
 * then $STREAMGATE_URL / $STREAMGATE_TOKEN / $STREAMGATE_PROJECT; then the current context; then the defaults.
 */
export function resolveConnection(values: OptionValues<typeof clientOptions>, env: NodeJS.ProcessEnv): Connection {
  const selected = selectedContext(values.context, env);
  const saved = selected?.context;
  const pick = (flag: string | undefined, fromEnv: string | undefined, fromContext: string | undefined) =>
    flag ?? (selected?.explicit ? (fromContext ?? fromEnv) : (fromEnv ?? fromContext));
  const server = pick(values.server, nonEmpty(env.STREAMGATE_URL), saved?.server);
  const project = pick(values.project, nonEmpty(env.STREAMGATE_PROJECT), saved?.project) ?? DEFAULT_PROJECT;
  if (!/^[^/\s]+$/.test(project)) throw new UsageError(`--project: invalid project id ${JSON.stringify(project)}`);
  return {
    baseUrl: resolveServerUrl(server, env),
    token: pick(values.token, nonEmpty(env.STREAMGATE_TOKEN), saved?.token),
    project,
  };
}

/** The `--json` flag of commands that print resources or messages. */
export const jsonOption = { type: "boolean", description: "Print the result as JSON" } as const;

/** Kinds of named resources, as they appear in resource names. */
export type ResourceKind = "topics" | "subscriptions" | "snapshots";

const singular: Record<ResourceKind, string> = {
  topics: "topic",
  subscriptions: "subscription",
  snapshots: "snapshot",
};

/** A connected client command: the REST client, the project, and name resolution. */
export interface ClientContext {
  readonly client: RestClient;
  readonly project: string;
  /** Full resource name from a short id (`orders`) or a full name (`projects/p/topics/orders`). */
  name(kind: ResourceKind, text: string): string;
  /** A short id when `name` is in the current project, else the full name. */
  display(name: string | undefined): string;
}

/** Builds the context of a client command from its flags and the environment. */
export function createClientContext(values: OptionValues<typeof clientOptions>, env: NodeJS.ProcessEnv): ClientContext {
  const { baseUrl, project, token } = resolveConnection(values, env);
  const client = new RestClient({ baseUrl, token, userAgent: `streamgate-cli/${cliVersion()}` });
  return {
    client,
    project,
    name: (kind, text) => resolveName(kind, text, project),
    display: (name) => {
      if (name === undefined || name === "") return "";
      const prefix = `projects/${project}/`;
      return name.startsWith(prefix) ? (name.slice(prefix.length).split("/")[1] ?? name) : name;
    },
  };
}

/** The server URL: the flag, else $STREAMGATE_URL, else $PUBSUB_EMULATOR_HOST, else localhost:8080. */
export function resolveServerUrl(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  const emulatorHost = nonEmpty(env.PUBSUB_EMULATOR_HOST);
  const text =
    flag ?? nonEmpty(env.STREAMGATE_URL) ?? (emulatorHost ? `http://${emulatorHost}` : "http://localhost:8080");
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--server: invalid URL ${JSON.stringify(text)} (expected e.g. http://localhost:8080)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`--server: expected an http:// or https:// URL, got ${JSON.stringify(text)}`);
  }
  return text.replace(/\/+$/, "");
}

/**
 * Resolves a short id or a full name of `kind`; a full name of another kind or with extra
 * segments is rejected here (exit 1), since its slashes would address a different REST resource.
 */
export function resolveName(kind: ResourceKind, text: string, project: string): string {
  const what = singular[kind];
  if (text === "") throw new CliError(`empty ${what} name`);
  if (!text.includes("/")) return `projects/${project}/${kind}/${text}`;
  const parts = text.split("/");
  if (parts.length === 4 && parts[0] === "projects" && parts[1] !== "" && parts[2] === kind && parts[3] !== "") {
    return text;
  }
  throw new CliError(`invalid ${what} name ${JSON.stringify(text)} (expected ID or projects/PROJECT/${kind}/ID)`);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}
