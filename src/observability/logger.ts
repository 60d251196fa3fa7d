// Logs (pino): JSON lines for collectors, or readable lines on a terminal; and the STREAMGATE_TRACE debug switch.
import { createRequire } from "node:module";
import { destination, type Logger, pino } from "pino";

export type { Logger };

/** How log lines look: `pretty` (readable, local time), `json` (one object per line), `auto` (pretty on a terminal). */
export type LogFormat = "auto" | "json" | "pretty";

const require = createRequire(import.meta.url);

/** A logger to stderr at `level`; `auto` writes readable lines when stderr is a terminal and JSON otherwise. */
export function createLogger(level: string, format: LogFormat = "json"): Logger {
  const options = { level, base: { service: "streamgate" } };
  const pretty = format === "pretty" || (format === "auto" && process.stderr.isTTY === true);
  if (!pretty) return pino(options, destination({ fd: 2, sync: false }));
  // Loaded only when asked for: JSON logging (servers, containers) never pays for it.
  const { PinoPretty } = require("pino-pretty") as typeof import("pino-pretty");
  const stream = PinoPretty({
    destination: 2,
    colorize: process.stderr.isTTY === true,
    translateTime: "SYS:HH:MM:ss.l",
    ignore: "pid,hostname,service",
    sync: true,
  });
  return pino(options, stream);
}

const traced = new Set(
  (process.env.STREAMGATE_TRACE ?? "")
    .split(",")
    .map((part) => part.trim())
    .filter(Boolean),
);

/** True when `STREAMGATE_TRACE` names `area` (or "all"), e.g. `STREAMGATE_TRACE=broker,tunnel`. */
export function isTraced(area: string): boolean {
  return traced.has(area) || traced.has("all");
}
