// Public surface of the tunnel rules engine: parse, match, explain and watch the server and agent rules files.
export {
  explainMatch,
  findAgentGrant,
  groupAllowed,
  grpcFromPath,
  matchAgentRoute,
  matchesRequest,
  matchServerRule,
} from "./match.js";
export { parseAgentRules, parseServerRules } from "./parse-rules.js";
export { formatProblem, RulesError, type RulesProblem } from "./rules-error.js";
export type {
  AgentRoute,
  AgentRules,
  AgentTokenGrant,
  ExplainedTarget,
  HeaderCondition,
  HealthCheckSpec,
  HostPattern,
  MatchExplanation,
  ParseRulesOptions,
  Pattern,
  RequestFacts,
  RuleMatch,
  RuleMiss,
  ServerRule,
  ServerRules,
  ServerRuleTarget,
  UpstreamSpec,
} from "./types.js";
export { PickStrategy, UpstreamProtocol } from "./types.js";
export { type RulesWatcher, type WatchRulesOptions, watchRulesFile } from "./watch-rules-file.js";
