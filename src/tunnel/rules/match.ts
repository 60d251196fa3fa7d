// Matching requests against parsed rules: first match wins; pure functions, conditions precompiled at parse time.
import { createHash, timingSafeEqual } from "node:crypto";
import type {
  AgentRoute,
  AgentRules,
  AgentTokenGrant,
  ExplainedTarget,
  MatchExplanation,
  Pattern,
  RequestFacts,
  RuleMatch,
  RuleMiss,
  ServerRule,
  ServerRules,
  UpstreamSpec,
} from "./types.js";
import { compileWildcard, hostMatches, splitAuthority } from "./wildcard.js";

/** Service and method of a gRPC path `/pkg.Service/Method`, or null when the path has another shape. */
export function grpcFromPath(path: string): { service: string; method: string } | null {
  const match = /^\/([^/?#]+)\/([^/?#]+)$/.exec(path);
  return match ? { service: match[1]!, method: match[2]! } : null;
}

/** The request facts the conditions read, with the authority split once per request. */
interface Prepared {
  facts: RequestFacts;
  host: string;
  port: number | null;
}

function prepare(facts: RequestFacts): Prepared {
  const { host, port } = splitAuthority(facts.authority);
  return { facts, host, port };
}

function headerMatches(value: string | string[] | undefined, pattern: Pattern): boolean {
  if (value === undefined) return false;
  if (typeof value === "string") return pattern.test(value);
  for (const one of value) if (pattern.test(one)) return true;
  return false;
}

/** The first condition of `match` the request fails, described for people, or null when all hold. */
function mismatch(match: RuleMatch, request: Prepared, describe: boolean): string | null {
  const { facts } = request;
  if (match.hosts !== null && !hostMatches(match.hosts, request.host, request.port)) {
    if (!describe) return "";
    return `host ${JSON.stringify(facts.authority)} does not match ${match.hosts.map((host) => host.text).join(", ")}`;
  }
  if (match.pathPrefix !== null && !facts.path.startsWith(match.pathPrefix)) {
    if (!describe) return "";
    return `path ${JSON.stringify(facts.path)} does not start with ${JSON.stringify(match.pathPrefix)}`;
  }
  if (match.service !== null || match.method !== null) {
    const grpc = facts.grpc;
    if (grpc === null) return describe ? "not a gRPC request" : "";
    if (match.service !== null && !match.service.test(grpc.service)) {
      if (!describe) return "";
      return `gRPC service ${JSON.stringify(grpc.service)} does not match ${JSON.stringify(match.service.text)}`;
    }
    if (match.method !== null && grpc.method !== match.method) {
      if (!describe) return "";
      return `gRPC method ${JSON.stringify(grpc.method)} is not ${JSON.stringify(match.method)}`;
    }
  }
  for (const header of match.headers) {
    const value = facts.headers[header.name];
    if (!headerMatches(value, header.value)) {
      if (!describe) return "";
      if (value === undefined) return `header ${header.name} is missing`;
      return `header ${header.name}: ${JSON.stringify(value)} does not match ${JSON.stringify(header.value.text)}`;
    }
  }
  return null;
}

/** True when the request meets every condition of `match`. */
export function matchesRequest(match: RuleMatch, facts: RequestFacts): boolean {
  return mismatch(match, prepare(facts), false) === null;
}

/** The first server rule matching the request, or null (the caller answers 404 / UNIMPLEMENTED). */
export function matchServerRule(rules: ServerRules, facts: RequestFacts): ServerRule | null {
  const request = prepare(facts);
  for (const rule of rules.rules) if (mismatch(rule.match, request, false) === null) return rule;
  return null;
}

/** The first agent route matching the request and its upstream, or null. */
export function matchAgentRoute(
  rules: AgentRules,
  facts: RequestFacts,
): { route: AgentRoute; upstream: UpstreamSpec } | null {
  const request = prepare(facts);
  for (const route of rules.routes) {
    if (mismatch(route.match, request, false) !== null) continue;
    const upstream = rules.upstreams.find((candidate) => candidate.name === route.upstream);
    // Parsing guarantees the upstream exists; a hand-built AgentRules without it just skips the route.
    if (upstream !== undefined) return { route, upstream };
  }
  return null;
}

/**
 * Dry run: the rule (server) or route (agent) that would take the request, its line and target, and why
 * each earlier one did not match. Secrets are left out (only whether a bearer token is required).
 */
export function explainMatch(rules: ServerRules | AgentRules, facts: RequestFacts): MatchExplanation {
  const request = prepare(facts);
  const misses: RuleMiss[] = [];
  const entries: { name: string; line: number; match: RuleMatch; target: () => ExplainedTarget; auth: boolean }[] =
    "agents" in rules
      ? rules.rules.map((rule) => ({
          name: rule.name,
          line: rule.line,
          match: rule.match,
          target: () => rule.target,
          auth: rule.bearerTokens !== null,
        }))
      : rules.routes.map((route) => ({
          name: route.name,
          line: route.line,
          match: route.match,
          target: () => {
            const upstream = rules.upstreams.find((candidate) => candidate.name === route.upstream);
            if (upstream === undefined) throw new Error(`route ${route.name} names unknown upstream ${route.upstream}`);
            return { kind: "upstream", upstream };
          },
          auth: false,
        }));
  for (const entry of entries) {
    const reason = mismatch(entry.match, request, true);
    if (reason === null) {
      return {
        match: { rule: entry.name, line: entry.line, target: entry.target(), requiresBearerToken: entry.auth },
        misses,
      };
    }
    misses.push({ rule: entry.name, line: entry.line, reason });
  }
  return { match: null, misses };
}

const groupPatterns = new WeakMap<AgentTokenGrant, Pattern[]>();

/** True when the grant lets an agent join `group` (exact names, `*`, or wildcards such as `edge-*`). */
export function groupAllowed(grant: AgentTokenGrant, group: string): boolean {
  let patterns = groupPatterns.get(grant);
  if (patterns === undefined) {
    patterns = grant.groups.map((text) => compileWildcard(text));
    groupPatterns.set(grant, patterns);
  }
  for (const pattern of patterns) if (pattern.test(group)) return true;
  return false;
}

const tokenDigests = new WeakMap<AgentTokenGrant, Buffer>();

function digest(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

/**
 * The grant whose token equals `token`, or null. Compares SHA-256 digests with `timingSafeEqual` and
 * always checks every grant, so the time taken does not reveal how much of a token was right.
 */
export function findAgentGrant(rules: ServerRules, token: string): AgentTokenGrant | null {
  const presented = digest(token);
  let found: AgentTokenGrant | null = null;
  for (const grant of rules.agents) {
    let expected = tokenDigests.get(grant);
    if (expected === undefined) {
      expected = digest(grant.token);
      tokenDigests.set(grant, expected);
    }
    if (timingSafeEqual(presented, expected) && found === null) found = grant;
  }
  return found;
}
