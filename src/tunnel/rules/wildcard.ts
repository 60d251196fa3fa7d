// `*` wildcards compiled once at parse time into the cheapest test (equality, prefix, suffix or RegExp).
import type { HostPattern, Pattern } from "./types.js";

/** Compiles `text`, where `*` matches any run of characters (none included); `ignoreCase` lowers both sides. */
export function compileWildcard(text: string, ignoreCase = false): Pattern {
  const pattern = ignoreCase ? text.toLowerCase() : text;
  const fold = ignoreCase ? (value: string) => value.toLowerCase() : (value: string) => value;
  const stars = pattern.split("*").length - 1;
  let test: (value: string) => boolean;
  if (stars === 0) {
    test = (value) => fold(value) === pattern;
  } else if (/^\**$/.test(pattern)) {
    test = () => true;
  } else if (stars === 1 && pattern.endsWith("*")) {
    const prefix = pattern.slice(0, -1);
    test = (value) => fold(value).startsWith(prefix);
  } else if (stars === 1 && pattern.startsWith("*")) {
    const suffix = pattern.slice(1);
    test = (value) => fold(value).endsWith(suffix);
  } else {
    const source = pattern
      .split("*")
      .map((part) => part.replace(/[\\^$.|?+()[\]{}]/g, "\\$&"))
      .join("[^]*");
    const regexp = new RegExp(`^${source}$`);
    test = (value) => regexp.test(fold(value));
  }
  return { text, test };
}

/** Splits an authority into a lower-case host (no brackets, no trailing dot) and its port (null if none). */
export function splitAuthority(authority: string): { host: string; port: number | null } {
  let host = authority.trim().toLowerCase();
  let port: number | null = null;
  if (host.startsWith("[")) {
    const close = host.indexOf("]");
    if (close > 0) {
      const rest = host.slice(close + 1);
      if (/^:\d+$/.test(rest)) port = Number(rest.slice(1));
      host = host.slice(1, close);
    }
  } else {
    const colon = host.lastIndexOf(":");
    if (colon >= 0 && host.indexOf(":") === colon && /^\d+$/.test(host.slice(colon + 1))) {
      port = Number(host.slice(colon + 1));
      host = host.slice(0, colon);
    }
  }
  if (host.endsWith(".")) host = host.slice(0, -1);
  return { host, port };
}

/** Compiles one `hosts` entry such as `*.example.com` or `api.example.com:8443` (null port: any port). */
export function compileHostPattern(text: string): HostPattern {
  // Both sides are lower-cased already (here and in splitAuthority), so the test itself is case-sensitive.
  const { host, port } = splitAuthority(text);
  return { text, host: compileWildcard(host), port };
}

/** True when `host`/`port` (from {@link splitAuthority}) match one of `patterns`. */
export function hostMatches(patterns: readonly HostPattern[], host: string, port: number | null): boolean {
  for (const pattern of patterns) {
    if ((pattern.port === null || pattern.port === port) && pattern.host.test(host)) return true;
  }
  return false;
}
