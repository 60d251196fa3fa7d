// Parsing of the server and agent rules files (YAML) against a strict schema. (Work in progress.)
import type { AgentRules, ParseRulesOptions, ServerRules } from "./types.js";

/** Parses a server rules file; throws RulesError listing every problem with file, line and field. */
export function parseServerRules(_text: string, _source: string, _options: ParseRulesOptions = {}): ServerRules {
  throw new Error("parseServerRules: not implemented yet");
}

/** Parses an agent rules file; throws RulesError listing every problem with file, line and field. */
export function parseAgentRules(_text: string, _source: string, _options: ParseRulesOptions = {}): AgentRules {
  throw new Error("parseAgentRules: not implemented yet");
}
