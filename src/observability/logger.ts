// JSON logs (pino) and the STREAMGATE_TRACE debug switch.
import { destination, type Logger, pino } from "pino";

export type { Logger };

/** A JSON logger to stderr at `level`. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: "streamgate" } }, destination({ fd: 2, sync: false }));
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
