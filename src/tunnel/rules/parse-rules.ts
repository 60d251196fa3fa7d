// Parsing of the server and agent rules files (YAML) against a strict schema, every problem named by line and field.
import { dirname, resolve as resolvePath } from "node:path";
import { isMap, type Node } from "yaml";
import { groupAllowed } from "./match.js";
import {
  isCatchAll,
  readMatch,
  readName,
  readSecret,
  readTokenFile,
  readUpstream,
  type SecretContext,
} from "./parse-common.js";
import type {
  AgentRoute,
  AgentRules,
  AgentTokenGrant,
  ParseRulesOptions,
  ServerRule,
  ServerRules,
  ServerRuleTarget,
  UpstreamSpec,
} from "./types.js";
import { join, type MapView, YamlReader } from "./yaml-reader.js";

const serverKeys = ["version", "agents", "rules"] as const;
const grantKeys = ["name", "token", "tokenFile", "groups"] as const;
const ruleKeys = ["name", "match", "group", "upstream", "auth", "timeoutMs"] as const;
const authKeys = ["bearerTokens"] as const;
const agentKeys = ["version", "upstreams", "routes"] as const;
const routeKeys = ["name", "match", "upstream"] as const;
const groupPattern = /^[A-Za-z0-9*][A-Za-z0-9._:*-]*$/;

/** Longest `timeoutMs` of a rule: one day. */
const MAX_TIMEOUT_MS = 86_400_000;

function secretContext(source: string, options: ParseRulesOptions): SecretContext {
  return {
    env: options.env ?? process.env,
    baseDir: options.baseDir ?? dirname(resolvePath(source)),
    resolve: options.resolveSecrets ?? true,
  };
}

/** Reads the top-level map and checks `version: 1` if given; null for an empty file or after a problem. */
function readTop(reader: YamlReader, keys: readonly string[]): MapView | null {
  if (reader.problems.length > 0 || reader.isEmpty(reader.root)) return null;
  const top = reader.map(reader.root, "", keys);
  if (top?.has("version")) reader.integer(top.get("version"), "version", 1, 1);
  return top;
}

/**
 * Parses a server rules file (`agents:` token grants and `rules:`). Throws a RulesError (INVALID_ARGUMENT,
 * reason TUNNEL_RULES_INVALID) listing every problem as `file:line: field: problem`.
 */
export function parseServerRules(text: string, source: string, options: ParseRulesOptions = {}): ServerRules {
  const reader = new YamlReader(text, source);
  const secrets = secretContext(source, options);
  const top = readTop(reader, serverKeys);
  const agents: AgentTokenGrant[] = [];
  const rules: ServerRule[] = [];
  const warnings: string[] = [];
  if (top?.has("agents")) readGrants(reader, top.get("agents"), secrets, agents);
  if (top?.has("rules")) readRules(reader, top.get("rules"), secrets, rules);
  reader.finish();

  const warn = (line: number, field: string, problem: string) =>
    warnings.push(`${source}:${line}: ${field}: ${problem}`);
  if (rules.length === 0)
    warnings.push(`${source}:1: rules: no rules, so every request is answered 404 / UNIMPLEMENTED`);
  for (const [index, rule] of rules.entries()) {
    if (rule.target.kind !== "group") continue;
    const group = rule.target.group;
    if (!agents.some((grant) => groupAllowed(grant, group))) {
      warn(rule.line, `rules[${index}].group`, `no agent token may join group "${group}", so no agent can serve it`);
    }
  }
  warnUnreachable(rules, "rules", warn);
  return { source, rules, agents, warnings };
}

function readGrants(reader: YamlReader, node: Node | undefined, secrets: SecretContext, into: AgentTokenGrant[]): void {
  const tokens = new Map<string, number>();
  const names = new Map<string, number>();
  for (const [index, item] of (reader.list(node, "agents", { emptyAsNone: true }) ?? []).entries()) {
    const field = `agents[${index}]`;
    const map = reader.map(item, field, grantKeys);
    if (map === null) continue;
    const before = reader.problems.length;
    const name = readName(reader, map.get("name"), join(field, "name"));
    if (name !== null) {
      const previous = names.get(name);
      if (previous !== undefined)
        reader.fail(map.get("name"), join(field, "name"), `"${name}" is also at line ${previous}`);
      else names.set(name, reader.line(map.get("name")));
    }
    let token: string | null = null;
    let tokenNode: Node | undefined;
    if (map.has("token") === map.has("tokenFile")) {
      reader.fail(item, field, "give exactly one of token and tokenFile");
    } else if (map.has("token")) {
      tokenNode = map.get("token");
      token = readSecret(reader, tokenNode, join(field, "token"), secrets);
    } else {
      tokenNode = map.get("tokenFile");
      token = readTokenFile(reader, tokenNode, join(field, "tokenFile"), secrets);
    }
    if (token !== null && secrets.resolve) {
      const previous = tokens.get(token);
      if (previous !== undefined) {
        reader.fail(
          tokenNode,
          field,
          `same token as the agent grant at line ${previous} (give each grant its own token)`,
        );
      } else tokens.set(token, reader.line(item));
    }
    const groups: string[] = [];
    const items = reader.list(map.get("groups"), join(field, "groups"), { nonEmpty: true });
    for (const [groupIndex, groupNode] of (items ?? []).entries()) {
      const groupField = `${join(field, "groups")}[${groupIndex}]`;
      const group = reader.string(groupNode, groupField);
      if (group !== null && !groupPattern.test(group)) {
        reader.fail(groupNode, groupField, `invalid group ${JSON.stringify(group)} (letters, digits, . _ : - and *)`);
      } else if (group !== null) groups.push(group);
    }
    if (reader.problems.length === before && name !== null && token !== null) into.push({ name, token, groups });
  }
}

function readRules(reader: YamlReader, node: Node | undefined, secrets: SecretContext, into: ServerRule[]): void {
  const names = new Map<string, number>();
  for (const [index, item] of (reader.list(node, "rules", { emptyAsNone: true }) ?? []).entries()) {
    const field = `rules[${index}]`;
    const map = reader.map(item, field, ruleKeys);
    if (map === null) continue;
    const before = reader.problems.length;
    const name = readName(reader, map.get("name"), join(field, "name"));
    if (name !== null) {
      const previous = names.get(name);
      if (previous !== undefined) {
        reader.fail(map.get("name"), join(field, "name"), `duplicate rule name "${name}" (also at line ${previous})`);
      } else names.set(name, reader.line(item));
    }
    const match = readMatch(reader, map.get("match"), join(field, "match"));
    let target: ServerRuleTarget | null = null;
    if (map.has("group") && map.has("upstream")) {
      reader.fail(map.get("upstream"), field, "give either group or upstream, not both");
    } else if (map.has("group")) {
      const groupField = join(field, "group");
      const group = readName(reader, map.get("group"), groupField);
      if (group !== null) target = { kind: "group", group };
    } else if (map.has("upstream")) {
      const upstream = readUpstream(reader, map.get("upstream"), join(field, "upstream"), name ?? `rule-${index}`);
      if (upstream !== null) target = { kind: "upstream", upstream };
    } else {
      reader.fail(item, field, "a rule needs a target: group (agents) or upstream (direct)");
    }
    let bearerTokens: string[] | null = null;
    if (map.has("auth")) bearerTokens = readAuth(reader, map.get("auth"), join(field, "auth"), secrets);
    let timeoutMs: number | null = null;
    if (map.has("timeoutMs"))
      timeoutMs = reader.integer(map.get("timeoutMs"), join(field, "timeoutMs"), 1, MAX_TIMEOUT_MS);
    if (reader.problems.length > before || name === null || match === null || target === null) continue;
    into.push({ name, line: reader.line(item), match, target, bearerTokens, timeoutMs });
  }
}

function readAuth(reader: YamlReader, node: Node | undefined, field: string, secrets: SecretContext): string[] | null {
  const map = reader.map(node, field, authKeys);
  if (map === null) return null;
  const tokensField = join(field, "bearerTokens");
  const items = reader.list(map.get("bearerTokens"), tokensField, { nonEmpty: true });
  const tokens: string[] = [];
  for (const [index, item] of (items ?? []).entries()) {
    const token = readSecret(reader, item, `${tokensField}[${index}]`, secrets);
    if (token !== null) tokens.push(token);
  }
  return tokens;
}

/** Warns about entries after one that matches every request: they can never match. */
function warnUnreachable(
  entries: readonly { name: string; line: number; match: ServerRule["match"] }[],
  list: string,
  warn: (line: number, field: string, problem: string) => void,
): void {
  const catchAll = entries.findIndex((entry) => isCatchAll(entry.match));
  if (catchAll < 0) return;
  for (const [index, entry] of entries.entries()) {
    if (index <= catchAll) continue;
    const by = entries[catchAll]!;
    warn(
      entry.line,
      `${list}[${index}]`,
      `never matches: "${by.name}" (line ${by.line}) above it matches every request`,
    );
  }
}

/**
 * Parses an agent rules file (`upstreams:` and `routes:`). Throws a RulesError (INVALID_ARGUMENT,
 * reason TUNNEL_RULES_INVALID) listing every problem as `file:line: field: problem`.
 */
export function parseAgentRules(text: string, source: string, _options: ParseRulesOptions = {}): AgentRules {
  const reader = new YamlReader(text, source);
  const top = readTop(reader, agentKeys);
  const upstreams: UpstreamSpec[] = [];
  const routes: AgentRoute[] = [];
  const warnings: string[] = [];
  const upstreamLines = new Map<string, number>();
  // Routes may name an upstream that had problems: only names never declared are reported as unknown.
  const declared = new Set<string>();
  if (top?.has("upstreams")) {
    for (const [index, item] of (
      reader.list(top.get("upstreams"), "upstreams", { emptyAsNone: true }) ?? []
    ).entries()) {
      const declaredName = nameOf(item);
      if (declaredName !== null) declared.add(declaredName);
      const upstream = readUpstream(reader, item, `upstreams[${index}]`, null);
      if (upstream === null) continue;
      const previous = upstreamLines.get(upstream.name);
      if (previous !== undefined) {
        reader.fail(
          item,
          `upstreams[${index}].name`,
          `duplicate upstream name "${upstream.name}" (also at line ${previous})`,
        );
        continue;
      }
      upstreamLines.set(upstream.name, reader.line(item));
      upstreams.push(upstream);
    }
  }
  const names = new Map<string, number>();
  if (top?.has("routes")) {
    for (const [index, item] of (reader.list(top.get("routes"), "routes", { emptyAsNone: true }) ?? []).entries()) {
      const field = `routes[${index}]`;
      const map = reader.map(item, field, routeKeys);
      if (map === null) continue;
      const before = reader.problems.length;
      let name = field;
      if (map.has("name")) {
        const given = readName(reader, map.get("name"), join(field, "name"));
        const previous = given === null ? undefined : names.get(given);
        if (given !== null && previous !== undefined) {
          reader.fail(
            map.get("name"),
            join(field, "name"),
            `duplicate route name "${given}" (also at line ${previous})`,
          );
        } else if (given !== null) {
          names.set(given, reader.line(item));
          name = given;
        }
      }
      const match = readMatch(reader, map.get("match"), join(field, "match"));
      const upstream = reader.string(map.get("upstream"), join(field, "upstream"));
      if (upstream !== null && !declared.has(upstream)) {
        const known = declared.size === 0 ? "none" : [...declared].join(", ");
        reader.fail(
          map.get("upstream"),
          join(field, "upstream"),
          `unknown upstream "${upstream}" (upstreams: ${known})`,
        );
      }
      if (reader.problems.length > before || match === null || upstream === null) continue;
      routes.push({ name, line: reader.line(item), match, upstream });
    }
  }
  reader.finish();

  const warn = (line: number, field: string, problem: string) =>
    warnings.push(`${source}:${line}: ${field}: ${problem}`);
  if (routes.length === 0)
    warnings.push(`${source}:1: routes: no routes, so every request fails with UNIMPLEMENTED / 404`);
  for (const [index, upstream] of upstreams.entries()) {
    if (!routes.some((route) => route.upstream === upstream.name)) {
      warn(upstreamLines.get(upstream.name) ?? 1, `upstreams[${index}]`, `no route uses upstream "${upstream.name}"`);
    }
  }
  warnUnreachable(routes, "routes", warn);
  return { source, upstreams, routes, warnings };
}

/** The `name:` of an upstream map node, if it is a plain string. */
function nameOf(node: Node): string | null {
  if (!isMap(node)) return null;
  const value = node.get("name");
  return typeof value === "string" ? value : null;
}
