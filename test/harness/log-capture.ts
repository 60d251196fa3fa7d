// A pino logger whose JSON lines a test reads back (createServer's `dependencies.logger`).
import { Writable } from "node:stream";
import { pino } from "pino";
import type { Logger } from "../../src/observability/index.js";
import { waitFor } from "./wait-for.js";

/** One parsed log line. */
export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export interface LogCapture {
  logger: Logger;
  /** Every line so far, parsed. */
  lines(): LogLine[];
  /** Resolves with the first line (in order) matching `predicate`, waiting up to `timeoutMs` (default 5 s). */
  waitForLine(predicate: (line: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine>;
}

/** A logger at `level` (default "debug") that keeps its lines in memory. */
export function captureLogs(level = "debug"): LogCapture {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const text of chunk.toString("utf8").split("\n")) if (text.trim() !== "") lines.push(JSON.parse(text));
      callback();
    },
  });
  const logger = pino({ level, base: { service: "streamgate" } }, sink);
  return {
    logger,
    lines: () => lines,
    async waitForLine(predicate, what, timeoutMs = 5_000) {
      let found: LogLine | undefined;
      const look = () => {
        found = lines.find(predicate);
        return found !== undefined;
      };
      await waitFor(look, {
        timeoutMs,
        describe: () => `no log line ${what}; got:\n${lines.map((line) => JSON.stringify(line)).join("\n")}`,
      });
      return found!;
    },
  };
}
