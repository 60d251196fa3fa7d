// The option table as text: defaults as people read them, and the table of docs/options.md.
import { formatRange, type OptionDefinition, optionKeys, serverOptionTable } from "./option-table.js";
import { defaultServerOptions, type ServerOptions } from "./server-options.js";

/** The default of `key` as text: `8080`, `./data`, `off`, `none`. */
export function formatDefault(key: keyof ServerOptions): string {
  const definition: OptionDefinition = serverOptionTable[key];
  const value = defaultServerOptions[key];
  if (value === null) return definition.unset ?? "none";
  if (typeof value === "boolean") return value ? "on" : "off";
  if (Array.isArray(value)) return value.length === 0 ? (definition.unset ?? "none") : value.join(",");
  return String(value);
}

/** Markers around the generated table in docs/options.md. */
export const OPTIONS_DOC_BEGIN = "<!-- options-table: generated from src/config/option-table.ts; do not edit -->";
export const OPTIONS_DOC_END = "<!-- options-table: end -->";

const cell = (text: string) => (text === "" ? "" : `\`${text}\``);

/** The Markdown table of every option, between {@link OPTIONS_DOC_BEGIN} and {@link OPTIONS_DOC_END}. */
export function formatOptionsMarkdown(): string {
  const rows = optionKeys.map((key) => {
    const definition: OptionDefinition = serverOptionTable[key];
    const type = definition.type === "choice" ? "one of" : definition.type;
    return `| ${cell(`--${definition.flag}`)} | ${cell(definition.env)} | ${cell(key)} | ${type} | ${cell(formatDefault(key))} | ${formatRange(definition)} | ${definition.unit ?? ""} | ${definition.description} |`;
  });
  return [
    OPTIONS_DOC_BEGIN,
    "| flag | env | config key | type | default | range | unit | meaning |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ...rows,
    OPTIONS_DOC_END,
  ].join("\n");
}

/** `markdown` with its generated table replaced by the current one; throws when the markers are missing. */
export function replaceOptionsMarkdown(markdown: string): string {
  const begin = markdown.indexOf(OPTIONS_DOC_BEGIN);
  const end = markdown.indexOf(OPTIONS_DOC_END);
  if (begin < 0 || end < begin) throw new Error("the options table markers are missing");
  return markdown.slice(0, begin) + formatOptionsMarkdown() + markdown.slice(end + OPTIONS_DOC_END.length);
}
