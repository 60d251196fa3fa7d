// Saved contexts (like `nats context`): named server/token/project sets in the XDG config home, one of them current.
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { closestMatch } from "../config/index.js";
import { CliError } from "./args.js";

/** One saved context. */
export interface SavedContext {
  /** Server base URL. */
  server: string;
  /** Bearer token sent by client commands. */
  token?: string;
  /** Project of short names. */
  project?: string;
  /** A note shown by `context ls`. */
  description?: string;
}

/** The file's content. */
export interface ContextStore {
  current: string | null;
  contexts: Record<string, SavedContext>;
}

/** `$XDG_CONFIG_HOME/streamgate`, else `~/.config/streamgate`. */
export function contextDir(env: NodeJS.ProcessEnv): string {
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), ".config");
  return join(base, "streamgate");
}

/** The path of the contexts file. */
export function contextFile(env: NodeJS.ProcessEnv): string {
  return join(contextDir(env), "contexts.json");
}

/** Reads the store; a missing file is an empty store, a damaged one an error naming it. */
export function readContextStore(env: NodeJS.ProcessEnv): ContextStore {
  const path = contextFile(env);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { current: null, contexts: {} };
    throw new CliError(`cannot read saved contexts ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`);
  }
  try {
    const parsed = JSON.parse(text) as Partial<ContextStore>;
    return { current: parsed.current ?? null, contexts: parsed.contexts ?? {} };
  } catch {
    throw new CliError(`saved contexts ${path} is not valid JSON: fix or remove it`);
  }
}

/** Writes the store (mode 0600: it holds tokens), replacing the file atomically. */
export function writeContextStore(env: NodeJS.ProcessEnv, store: ContextStore): void {
  const dir = contextDir(env);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = contextFile(env);
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(store, null, 2)}\n`, { mode: 0o600 });
  chmodSync(temporary, 0o600);
  renameSync(temporary, path);
}

/** The context named `name`; an unknown name is an error with the closest known one. */
export function findContext(store: ContextStore, name: string): SavedContext {
  const context = Object.hasOwn(store.contexts, name) ? store.contexts[name] : undefined;
  if (context !== undefined) return context;
  const names = Object.keys(store.contexts);
  const close = closestMatch(name, names);
  throw new CliError(
    `no saved context ${JSON.stringify(name)}${close === undefined ? "" : ` (did you mean "${close}"?)`}${names.length === 0 ? "; add one with: streamgate context add NAME --server URL" : `; saved: ${names.join(", ")}`}`,
  );
}

/**
 * The context client commands use: `--context`, else $STREAMGATE_CONTEXT, else the current one; `explicit` is true
 * for the first two (they then win over $STREAMGATE_URL and $STREAMGATE_TOKEN).
 */
export function selectedContext(
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
): { name: string; context: SavedContext; explicit: boolean } | undefined {
  const named = flag ?? (env.STREAMGATE_CONTEXT || undefined);
  const store = readContextStore(env);
  if (named !== undefined) return { name: named, context: findContext(store, named), explicit: true };
  if (store.current === null || !Object.hasOwn(store.contexts, store.current)) return undefined;
  return { name: store.current, context: store.contexts[store.current]!, explicit: false };
}
