// Reloads a rules file when it changes: fs.watch on its directory plus a periodic stat, debounced.
import { type FSWatcher, readFileSync, statSync, watch } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { Code, StreamgateError } from "../../errors/index.js";

/** Options of {@link watchRulesFile}. */
export interface WatchRulesOptions {
  /** Quiet time after a change before the file is read (editors write in several steps). Default 100 ms. */
  debounceMs?: number;
  /**
   * Period of the stat check that catches what fs.watch misses (network file systems, a watched
   * directory replaced by a Kubernetes ConfigMap update). Default 2000 ms.
   */
  pollIntervalMs?: number;
}

/** A running watch: the rules currently in force, and `close()`. */
export interface RulesWatcher<T> {
  /** The rules of the last good load. */
  current(): T;
  /** Stops watching; no handler is called afterwards. */
  close(): void;
}

/** Identity of the file's current version, cheap to compare: inode, size and modification time. */
function statKey(path: string): string {
  try {
    const stat = statSync(path);
    return `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
  } catch {
    return "missing";
  }
}

/**
 * Loads `path` with `parse` (throws if the first load fails), then reloads it on change. It watches the
 * file's directory, since editors and ConfigMaps replace files by rename, and also stats the file every
 * `pollIntervalMs`. A good edit swaps the rules and calls `onChange`; a bad edit or an unreadable file keeps
 * the old rules and calls `onError` with the line-numbered problem. Unchanged content calls nothing.
 */
export function watchRulesFile<T>(
  path: string,
  parse: (text: string, source: string) => T,
  handlers: { onChange(rules: T): void; onError(error: Error): void },
  options: WatchRulesOptions = {},
): RulesWatcher<T> {
  const debounceMs = options.debounceMs ?? 100;
  const pollIntervalMs = options.pollIntervalMs ?? 2000;
  const absolute = resolve(path);
  let lastStat = statKey(absolute);
  let lastText = readFileSync(absolute, "utf8");
  let rules = parse(lastText, path);
  let closed = false;
  let timer: NodeJS.Timeout | null = null;

  const report = (error: unknown) => {
    if (closed) return;
    handlers.onError(error instanceof Error ? error : new Error(String(error)));
  };

  const reload = () => {
    timer = null;
    if (closed) return;
    lastStat = statKey(absolute);
    let text: string;
    try {
      text = readFileSync(absolute, "utf8");
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      const why = typeof code === "string" ? code : String(error);
      report(
        new StreamgateError(
          Code.FAILED_PRECONDITION,
          `${path}: cannot read (${why}); keeping the rules loaded before`,
          {
            reason: "TUNNEL_RULES_UNREADABLE",
            cause: error,
          },
        ),
      );
      lastText = "";
      return;
    }
    // The same text again (a touch, or a bad edit seen twice) changes nothing and is not reported again.
    if (text === lastText) return;
    lastText = text;
    let next: T;
    try {
      next = parse(text, path);
    } catch (error) {
      report(error);
      return;
    }
    rules = next;
    try {
      handlers.onChange(next);
    } catch (error) {
      report(error);
    }
  };

  const schedule = () => {
    if (closed) return;
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(reload, debounceMs);
    timer.unref();
  };

  const name = basename(absolute);
  let watcher: FSWatcher | null = null;
  try {
    watcher = watch(dirname(absolute), { persistent: false }, (_event, filename) => {
      // Kubernetes mounts a ConfigMap's files as symlinks into `..data`, which it swaps on update.
      if (filename === null || filename === name || filename.startsWith("..")) schedule();
    });
    // A failing watcher (directory removed, too many watches) leaves the stat poll to notice changes.
    watcher.on("error", () => {
      watcher?.close();
      watcher = null;
    });
  } catch {
    watcher = null;
  }
  const poll = setInterval(() => {
    const key = statKey(absolute);
    if (key !== lastStat) {
      lastStat = key;
      schedule();
    }
  }, pollIntervalMs);
  poll.unref();

  return {
    current: () => rules,
    close: () => {
      closed = true;
      if (timer !== null) clearTimeout(timer);
      clearInterval(poll);
      watcher?.close();
      watcher = null;
    },
  };
}
