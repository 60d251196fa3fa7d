// The error a rules file that does not validate raises: every problem with its file, line and field.
import { Code, StreamgateError } from "../../errors/index.js";

/** One problem found in a rules file. */
export interface RulesProblem {
  /** File name as given to the parser. */
  source: string;
  /** 1-based line. */
  line: number;
  /** Path of the field, e.g. `rules[2].match.method`; empty for a syntax error of the whole file. */
  field: string;
  /** What is wrong, e.g. `expected a string, got 42`. */
  problem: string;
}

/** `rules.yaml:14: rules[2].match.method: expected a string, got 42`. */
export function formatProblem(problem: RulesProblem): string {
  const field = problem.field === "" ? "" : `${problem.field}: `;
  return `${problem.source}:${problem.line}: ${field}${problem.problem}`;
}

/** Most problems listed in one error's message; the rest are counted. */
export const MAX_LISTED_PROBLEMS = 10;

/**
 * A rules file does not validate (Code.INVALID_ARGUMENT, reason `TUNNEL_RULES_INVALID`). The message
 * lists the problems one per line (at most {@link MAX_LISTED_PROBLEMS}); `problems` has all of them.
 */
export class RulesError extends StreamgateError {
  readonly problems: readonly RulesProblem[];

  constructor(problems: readonly RulesProblem[]) {
    const lines = problems.slice(0, MAX_LISTED_PROBLEMS).map(formatProblem);
    if (problems.length > MAX_LISTED_PROBLEMS)
      lines.push(`(and ${problems.length - MAX_LISTED_PROBLEMS} more problems)`);
    super(Code.INVALID_ARGUMENT, lines.join("\n"), {
      reason: "TUNNEL_RULES_INVALID",
      details: { file: problems[0]?.source ?? "" },
    });
    this.problems = problems;
  }
}
