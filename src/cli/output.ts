// Human-readable output of the CLI: aligned tables, field lists, message data, and JSON.
import type { CliIo } from "./command.js";

/** Writes `value` as indented JSON and a newline. */
export function writeJson(io: CliIo, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Formats rows under headers as columns separated by two spaces; the last column is not padded. */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n") + "\n";
}

/** Formats `label: value` lines with aligned values, leaving out empty values. */
export function formatFields(fields: readonly (readonly [string, string | undefined])[]): string {
  const present = fields.filter(
    (field): field is readonly [string, string] => field[1] !== undefined && field[1] !== "",
  );
  const width = Math.max(0, ...present.map(([label]) => label.length)) + 2;
  return present.map(([label, value]) => `${`${label}:`.padEnd(width)}${value}`).join("\n") + "\n";
}

/** `k=v, k2=v2`, sorted by key; empty for no labels. */
export function formatKeyValues(record: Record<string, string> | undefined): string {
  return Object.entries(record ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, value]) => `${key}=${value}`)
    .join(", ");
}

/** A Google duration (`604800s`) in the largest whole unit, e.g. `7d`; other text unchanged. */
export function formatDuration(duration: string | undefined): string {
  if (duration === undefined || duration === "") return "";
  const match = /^(\d+(?:\.\d+)?)s$/.exec(duration);
  if (!match) return duration;
  const seconds = Number(match[1]);
  for (const [unit, size] of [
    ["d", 86_400],
    ["h", 3600],
    ["m", 60],
  ] as const) {
    if (seconds >= size && Number.isInteger(seconds / size)) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Longest base64 shown in a table; binary payloads beyond it are cut (`--json` has them whole). */
export const maxBase64Chars = 64;

/**
 * Message data for a person: the UTF-8 text when it decodes and has no control characters other
 * than tab, CR and LF (shown as `\r`, `\n` so a message stays on one line), else `base64:…`,
 * cut after {@link maxBase64Chars} characters with the total size.
 */
export function formatData(base64: string | undefined): string {
  if (base64 === undefined || base64 === "") return "";
  const bytes = Buffer.from(base64, "base64");
  let text: string | undefined;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    text = undefined;
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: detecting control characters is the point
  if (text === undefined || /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/.test(text)) {
    if (base64.length <= maxBase64Chars) return `base64:${base64}`;
    return `base64:${base64.slice(0, maxBase64Chars)}… (${bytes.length} bytes; --json shows all)`;
  }
  return text.replace(/\r/g, "\\r").replace(/\n/g, "\\n");
}

/** Rewrites a thrown message into the one line the CLI prints. */
export function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, " ").trim();
}
