// Pieces both rules files share: match conditions, upstream specs, names and secrets (`${ENV}`, tokenFile).
import { readFileSync } from "node:fs";
import { resolve as resolvePath } from "node:path";
import type { Node } from "yaml";
import {
  type HeaderCondition,
  type HealthCheckSpec,
  type HostPattern,
  PickStrategy,
  type RuleMatch,
  UpstreamProtocol,
  type UpstreamSpec,
} from "./types.js";
import { compileHostPattern, compileWildcard } from "./wildcard.js";
import { join, type YamlReader } from "./yaml-reader.js";

/** How secrets are resolved while parsing. */
export interface SecretContext {
  env: NodeJS.ProcessEnv;
  baseDir: string;
  resolve: boolean;
}

const namePattern = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;
const hostPattern = /^(?:[a-z0-9*_-]+(?:\.[a-z0-9*_-]+)*|\[[0-9a-f:.]+\])(?::\d{1,5})?$/;
const servicePattern = /^[A-Za-z0-9_*]+(?:\.[A-Za-z0-9_*]+)*$/;
const methodPattern = /^[A-Za-z0-9_]+$/;
const headerNamePattern = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
const envReference = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** Longest name, path prefix or pattern accepted, in characters. */
const MAX_TEXT = 1024;

/** Reads a name (rules, agents, upstreams, groups): letters, digits and `._:-`, starting with a letter or digit. */
export function readName(reader: YamlReader, node: Node | undefined, field: string): string | null {
  const value = reader.string(node, field);
  if (value === null) return null;
  if (!namePattern.test(value) || value.length > 128) {
    reader.fail(node, field, `invalid name ${JSON.stringify(value)} (letters, digits and . _ : -, at most 128)`);
    return null;
  }
  return value;
}

/** Reads a secret string, expanding `${NAME}` from the environment (when secrets are resolved). */
export function readSecret(reader: YamlReader, node: Node | undefined, field: string, secrets: SecretContext) {
  const text = reader.string(node, field);
  if (text === null || !secrets.resolve) return text;
  const missing: string[] = [];
  const value = text.replace(envReference, (_whole, name: string) => {
    const found = secrets.env[name];
    if (found === undefined) missing.push(name);
    return found ?? "";
  });
  if (missing.length > 0) {
    reader.fail(node, field, `environment variable ${missing.join(", ")} is not set`);
    return null;
  }
  if (value.trim() === "") {
    reader.fail(node, field, `is empty after expanding ${text}`);
    return null;
  }
  return value;
}

/** Reads `tokenFile`: the file's content without surrounding whitespace (when secrets are resolved). */
export function readTokenFile(reader: YamlReader, node: Node | undefined, field: string, secrets: SecretContext) {
  const path = reader.string(node, field);
  if (path === null || !secrets.resolve) return path === null ? null : `tokenFile:${path}`;
  let token: string;
  try {
    token = readFileSync(resolvePath(secrets.baseDir, path), "utf8").trim();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    reader.fail(node, field, `cannot read ${JSON.stringify(path)}: ${typeof code === "string" ? code : String(error)}`);
    return null;
  }
  if (token === "") {
    reader.fail(node, field, `${JSON.stringify(path)} is empty`);
    return null;
  }
  return token;
}

/** The keys a `match:` map accepts. */
const matchKeys = ["host", "hosts", "pathPrefix", "service", "method", "headers"] as const;

/** A match that every request meets (a rule or route without `match:`). */
export const matchAll: RuleMatch = { hosts: null, pathPrefix: null, service: null, method: null, headers: [] };

/** True when `match` has no condition, so it takes every request. */
export function isCatchAll(match: RuleMatch): boolean {
  return (
    match.hosts === null &&
    match.pathPrefix === null &&
    match.service === null &&
    match.method === null &&
    match.headers.length === 0
  );
}

function readHost(reader: YamlReader, node: Node | undefined, field: string): HostPattern | null {
  const text = reader.string(node, field);
  if (text === null) return null;
  const lower = text.toLowerCase();
  const port = /:(\d+)$/.exec(lower);
  if (!hostPattern.test(lower) || text.length > MAX_TEXT || (port !== null && Number(port[1]) > 65_535)) {
    reader.fail(
      node,
      field,
      `expected a host such as api.example.com, *.example.com or host:8443, got ${JSON.stringify(text)}`,
    );
    return null;
  }
  return compileHostPattern(text);
}

/** Reads `match:`; a missing one matches every request. Null when it had problems. */
export function readMatch(reader: YamlReader, node: Node | undefined, field: string): RuleMatch | null {
  if (reader.isEmpty(node)) return matchAll;
  const map = reader.map(node, field, matchKeys);
  if (map === null) return null;
  const before = reader.problems.length;
  let hosts: HostPattern[] | null = null;
  if (map.has("host") && map.has("hosts")) {
    reader.fail(map.get("hosts"), join(field, "hosts"), "give either host or hosts, not both");
  } else if (map.has("host")) {
    const host = readHost(reader, map.get("host"), join(field, "host"));
    if (host !== null) hosts = [host];
  } else if (map.has("hosts")) {
    const items = reader.list(map.get("hosts"), join(field, "hosts"), { nonEmpty: true });
    hosts = [];
    for (const [index, item] of (items ?? []).entries()) {
      const host = readHost(reader, item, `${join(field, "hosts")}[${index}]`);
      if (host !== null) hosts.push(host);
    }
  }
  let pathPrefix: string | null = null;
  if (map.has("pathPrefix")) {
    const path = reader.string(map.get("pathPrefix"), join(field, "pathPrefix"));
    if (path !== null && (!path.startsWith("/") || path.length > MAX_TEXT)) {
      reader.fail(map.get("pathPrefix"), join(field, "pathPrefix"), `must start with "/", got ${JSON.stringify(path)}`);
    } else pathPrefix = path;
  }
  let service: RuleMatch["service"] = null;
  if (map.has("service")) {
    const text = reader.string(map.get("service"), join(field, "service"));
    if (text !== null && (!servicePattern.test(text) || text.length > MAX_TEXT)) {
      reader.fail(
        map.get("service"),
        join(field, "service"),
        `expected a gRPC service such as pkg.Orders or pkg.*, got ${JSON.stringify(text)}`,
      );
    } else if (text !== null) service = compileWildcard(text);
  }
  let method: string | null = null;
  if (map.has("method")) {
    const text = reader.string(map.get("method"), join(field, "method"));
    if (text !== null && !methodPattern.test(text)) {
      const hint = text.includes("*") ? " (wildcards are for service; leave method out to match any)" : "";
      reader.fail(
        map.get("method"),
        join(field, "method"),
        `expected a gRPC method name such as Get${hint}, got ${JSON.stringify(text)}`,
      );
    } else method = text;
  }
  const headers: HeaderCondition[] = [];
  if (map.has("headers")) {
    const headersField = join(field, "headers");
    for (const entry of reader.entries(map.get("headers"), headersField) ?? []) {
      const name = entry.key.toLowerCase();
      if (!headerNamePattern.test(name)) {
        reader.fail(entry.keyNode, join(headersField, entry.key), "invalid header name");
        continue;
      }
      const value = reader.optionalText(entry.value, join(headersField, entry.key));
      if (value !== null) headers.push({ name, value: compileWildcard(value) });
    }
  }
  if (reader.problems.length > before) return null;
  return { hosts, pathPrefix, service, method, headers };
}

const upstreamKeys = ["name", "protocol", "addresses", "pick", "healthCheck"] as const;
const healthCheckKeys = ["service", "intervalMs", "timeoutMs"] as const;

/** Defaults of `healthCheck:` fields. */
export const defaultHealthCheck: HealthCheckSpec = { service: "", intervalMs: 5000, timeoutMs: 1000 };

function readAddress(
  reader: YamlReader,
  node: Node | undefined,
  field: string,
  protocol: UpstreamProtocol | null,
): string | null {
  const text = reader.string(node, field);
  if (text === null) return null;
  const expected = "an address such as h2c://10.0.0.5:50051, http://backend:8080 or https://backend";
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    reader.fail(node, field, `expected ${expected}, got ${JSON.stringify(text)}`);
    return null;
  }
  let scheme = url.protocol.slice(0, -1);
  const problem = !["http", "https", "h2c"].includes(scheme)
    ? `unsupported scheme ${scheme}: (use http, https or h2c)`
    : url.hostname === ""
      ? "has no host"
      : url.username !== "" || url.password !== ""
        ? "must not carry credentials"
        : (url.pathname !== "" && url.pathname !== "/") || url.search !== "" || url.hash !== ""
          ? "must not have a path, query or fragment (routes choose the upstream, the request keeps its path)"
          : scheme === "h2c" && url.port === ""
            ? "h2c addresses need a port"
            : null;
  if (problem !== null) {
    reader.fail(node, field, `${problem}, got ${JSON.stringify(text)}`);
    return null;
  }
  if (protocol === UpstreamProtocol.GRPC && scheme === "http") scheme = "h2c";
  return `${scheme}://${url.hostname.toLowerCase()}${url.port === "" ? "" : `:${url.port}`}`;
}

/**
 * Reads an upstream: `{ name, protocol, addresses, pick, healthCheck }`. `defaultName` (a server rule's
 * inline upstream) makes `name` optional. Null when it had problems.
 */
export function readUpstream(
  reader: YamlReader,
  node: Node | undefined,
  field: string,
  defaultName: string | null,
): UpstreamSpec | null {
  const map = reader.map(node, field, upstreamKeys);
  if (map === null) return null;
  const before = reader.problems.length;
  let name = defaultName;
  if (map.has("name") || defaultName === null) name = readName(reader, map.get("name"), join(field, "name"));
  const protocols = Object.values(UpstreamProtocol);
  const protocol = reader.choice(map.get("protocol"), join(field, "protocol"), protocols);
  const addresses: string[] = [];
  const items = reader.list(map.get("addresses"), join(field, "addresses"), { nonEmpty: true });
  for (const [index, item] of (items ?? []).entries()) {
    const address = readAddress(reader, item, `${join(field, "addresses")}[${index}]`, protocol);
    if (address === null) continue;
    if (addresses.includes(address)) reader.fail(item, `${join(field, "addresses")}[${index}]`, "listed twice");
    else addresses.push(address);
  }
  let pick: PickStrategy = PickStrategy.LEAST_OUTSTANDING;
  if (map.has("pick")) pick = reader.choice(map.get("pick"), join(field, "pick"), Object.values(PickStrategy)) ?? pick;
  let healthCheck: HealthCheckSpec | null = null;
  if (map.has("healthCheck")) {
    const checkField = join(field, "healthCheck");
    if (protocol !== null && protocol !== UpstreamProtocol.GRPC) {
      reader.fail(map.get("healthCheck"), checkField, "health checks use grpc.health.v1 and need protocol: grpc");
    } else healthCheck = readHealthCheck(reader, map.get("healthCheck"), checkField);
  }
  if (reader.problems.length > before || name === null || protocol === null) return null;
  return { name, protocol, addresses, pick, healthCheck };
}

function readHealthCheck(reader: YamlReader, node: Node | undefined, field: string): HealthCheckSpec | null {
  if (reader.isEmpty(node)) return { ...defaultHealthCheck };
  const map = reader.map(node, field, healthCheckKeys);
  if (map === null) return null;
  const check = { ...defaultHealthCheck };
  if (map.has("service")) check.service = reader.optionalText(map.get("service"), join(field, "service")) ?? "";
  if (map.has("intervalMs")) {
    check.intervalMs = reader.integer(map.get("intervalMs"), join(field, "intervalMs"), 100, 3_600_000) ?? 0;
  }
  if (map.has("timeoutMs")) {
    check.timeoutMs = reader.integer(map.get("timeoutMs"), join(field, "timeoutMs"), 1, 600_000) ?? 0;
  }
  if (check.intervalMs > 0 && check.timeoutMs > check.intervalMs) {
    reader.fail(
      map.get("timeoutMs") ?? map.node,
      join(field, "timeoutMs"),
      `must not exceed intervalMs (${check.intervalMs})`,
    );
  }
  return check;
}
