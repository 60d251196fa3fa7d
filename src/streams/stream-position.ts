// Parses the textual stream position every transport accepts: earliest, latest, an offset cursor or an RFC 3339 time.
import type { StreamPosition } from "../broker/types.js";
import { errors } from "../errors/index.js";

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * `earliest` | `latest` | `<offset>` | `<RFC 3339 time>`; empty means `latest`.
 * A decimal offset is a cursor: the last offset the client saw, so the first delivered message is
 * offset + 1 (`0` therefore means "from the first message ever published").
 *
 * @throws StreamgateError INVALID_ARGUMENT naming `field`.
 */
export function parseStreamPosition(text: string, field = "from"): StreamPosition {
  const value = text.trim();
  if (value === "" || value === "latest") return { kind: "latest" };
  if (value === "earliest") return { kind: "earliest" };
  if (/^\d+$/.test(value)) return { kind: "after", offset: parseOffset(value, field) };
  if (RFC3339.test(value)) {
    const timeMs = Date.parse(value.replace(" ", "T"));
    if (!Number.isNaN(timeMs)) return { kind: "time", timeMs };
  }
  throw errors.invalidArgument(
    field,
    `must be "earliest", "latest", an offset (a non-negative integer) or an RFC 3339 time, got ${JSON.stringify(value.slice(0, 64))}`,
  );
}

/** Parses a non-negative decimal offset (Last-Event-ID, WebSocket `from`). */
export function parseOffset(text: string, field: string): number {
  const offset = /^\d{1,16}$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!Number.isSafeInteger(offset)) {
    throw errors.invalidArgument(
      field,
      `must be a non-negative integer offset, got ${JSON.stringify(text.slice(0, 64))}`,
    );
  }
  return offset;
}
