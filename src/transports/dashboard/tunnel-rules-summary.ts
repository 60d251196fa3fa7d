// The tunnel's server rules as the dashboard shows them: each rule's conditions in one line and where it routes.
import type { RuleMatch, ServerRules } from "../../tunnel/rules/index.js";

/** One server rule, for people: `match` reads like the rules file, `target` is a group or a direct upstream. */
export interface TunnelRuleOverview {
  name: string;
  /** 1-based line in the rules file. */
  line: number;
  /** e.g. `host api.example.com · path /v1/ · service pkg.Orders`; "any request" for an empty match. */
  match: string;
  target: { kind: "group"; group: string } | { kind: "upstream"; upstream: string; addresses: string[] };
  requiresBearerToken: boolean;
}

/** Summarizes the rules in force, in file order (the first matching rule wins). */
export function summarizeTunnelRules(rules: ServerRules): TunnelRuleOverview[] {
  return rules.rules.map((rule) => ({
    name: rule.name,
    line: rule.line,
    match: describeMatch(rule.match),
    target:
      rule.target.kind === "group"
        ? { kind: "group", group: rule.target.group }
        : { kind: "upstream", upstream: rule.target.upstream.name, addresses: [...rule.target.upstream.addresses] },
    requiresBearerToken: rule.bearerTokens !== null,
  }));
}

function describeMatch(match: RuleMatch): string {
  const parts: string[] = [];
  if (match.hosts !== null) parts.push(`host ${match.hosts.map((host) => host.text).join(", ")}`);
  if (match.pathPrefix !== null) parts.push(`path ${match.pathPrefix}`);
  if (match.service !== null) parts.push(`service ${match.service.text}`);
  if (match.method !== null) parts.push(`method ${match.method}`);
  for (const header of match.headers) parts.push(`header ${header.name}: ${header.value.text}`);
  return parts.length === 0 ? "any request" : parts.join(" · ");
}
