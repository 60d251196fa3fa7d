// `streamgate tunnel check|match`: validate a tunnel rules file and dry-run a request against it, offline.
import { readFileSync } from "node:fs";
import {
  type AgentRules,
  type ExplainedTarget,
  explainMatch,
  formatProblem,
  grpcFromPath,
  parseAgentRules,
  parseServerRules,
  type RequestFacts,
  RulesError,
  type ServerRules,
} from "../tunnel/rules/index.js";
import { CliError, UsageError } from "./args.js";
import { type CliIo, type CommandGroup, defineCommand } from "./command.js";
import { formatFields, writeJson } from "./output.js";

const agentOption = {
  type: "boolean",
  description: "FILE is an agent rules file (upstreams and routes) instead of a server rules file",
} as const;

const checkSpec = {
  path: "tunnel check",
  summary: "Validate a tunnel rules file (server, or agent with --agent).",
  details:
    "Prints every problem as FILE:LINE: FIELD: PROBLEM and exits 1, or prints a summary and exits 0.\n" +
    "Warnings (a group no agent token may join, rules that can never match) go to stderr and do not\n" +
    "fail the check unless --strict. Secrets (environment variables and tokenFile) are read as `serve` would.",
  positionals: ["FILE"],
  options: {
    agent: agentOption,
    strict: { type: "boolean", description: "Exit 1 on warnings too" },
    "skip-secrets": {
      type: "boolean",
      description: "Do not read environment variables and token files (check a file on a machine without the secrets)",
    },
  },
  examples: [
    "streamgate tunnel check rules.yaml",
    "streamgate tunnel check agent.yaml --agent",
    "streamgate tunnel check rules.yaml --skip-secrets",
  ],
} as const;

const matchSpec = {
  path: "tunnel match",
  summary: "Show which rule and target a request would get (dry run on the file).",
  details:
    "Prints the matching rule (or agent route), its line and its target; the rules tried before it and\n" +
    'why they did not match go to stderr. Exits 1 with "no rule matches" when none does. Offline: the\n' +
    "file is read, no server is asked, and secrets are not resolved.",
  positionals: ["FILE"],
  options: {
    host: {
      type: "string",
      valueName: "HOST",
      description: "Required: authority of the request, e.g. api.example.com:443",
    },
    path: {
      type: "string",
      valueName: "PATH",
      description: "Request path, e.g. /api/items or /pkg.Service/Method",
      defaultText: "/",
    },
    header: {
      type: "string",
      multiple: true,
      valueName: "NAME=VALUE",
      description: "Request header (the name is lower-cased)",
    },
    grpc: { type: "boolean", description: "The request is a gRPC call; service and method come from --path" },
    method: {
      type: "string",
      valueName: "METHOD",
      description: "HTTP method",
      defaultText: "POST with --grpc, else GET",
    },
    agent: agentOption,
    json: { type: "boolean", description: "Print the match and the reasons for earlier rules as JSON" },
  },
  examples: [
    "streamgate tunnel match rules.yaml --host api.example.com --path /shop.Orders/Get --grpc",
    "streamgate tunnel match rules.yaml --host www.example.com --path /api/items --header x-tenant=acme",
    "streamgate tunnel match agent.yaml --agent --host orders.internal --path /shop.Orders/Get --grpc",
  ],
} as const;

function readRulesText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw new CliError(`cannot read ${file}: ${typeof code === "string" ? code : String(error)}`);
  }
}

function load(file: string, agent: boolean, resolveSecrets: boolean, env: NodeJS.ProcessEnv): ServerRules | AgentRules {
  const text = readRulesText(file);
  return agent ? parseAgentRules(text, file) : parseServerRules(text, file, { resolveSecrets, env });
}

function describeTarget(target: ExplainedTarget): string {
  if (target.kind === "group") return `group ${target.group}`;
  const upstream = target.upstream;
  return `upstream ${upstream.name} (${upstream.protocol}, ${upstream.pick}: ${upstream.addresses.join(", ")})`;
}

function requestFacts(values: {
  host?: string;
  path?: string;
  header?: string[];
  grpc?: boolean;
  method?: string;
}): RequestFacts {
  if (values.host === undefined) throw new UsageError("missing --host (see streamgate tunnel match --help)");
  const path = values.path ?? "/";
  if (!path.startsWith("/")) throw new UsageError(`--path: must start with "/", got ${JSON.stringify(path)}`);
  let grpc: RequestFacts["grpc"] = null;
  if (values.grpc) {
    grpc = grpcFromPath(path);
    if (grpc === null) {
      throw new UsageError(`--path: a gRPC path looks like /package.Service/Method, got ${JSON.stringify(path)}`);
    }
  }
  const headers: Record<string, string | string[]> = {};
  for (const entry of values.header ?? []) {
    const index = entry.indexOf("=");
    if (index <= 0) throw new UsageError(`--header: expected NAME=VALUE, got ${JSON.stringify(entry)}`);
    const name = entry.slice(0, index).toLowerCase();
    const value = entry.slice(index + 1);
    const existing = headers[name];
    headers[name] = existing === undefined ? value : [...(Array.isArray(existing) ? existing : [existing]), value];
  }
  const method = values.method ?? (values.grpc ? "POST" : "GET");
  return { authority: values.host, path, method: method.toUpperCase(), headers, grpc };
}

/** When a file's unknown top-level keys are the other kind's, says which flag was meant. */
function wrongKindHint(error: RulesError, agent: boolean): string {
  const unknownTop = new Set(
    error.problems
      .filter((problem) => /^unknown key/.test(problem.problem) && !/[.[]/.test(problem.field))
      .map((problem) => problem.field),
  );
  if (!agent && (unknownTop.has("upstreams") || unknownTop.has("routes"))) {
    return "; it looks like an agent rules file (upstreams, routes): add --agent";
  }
  if (agent && (unknownTop.has("rules") || unknownTop.has("agents"))) {
    return "; it looks like a server rules file (rules, agents): drop --agent";
  }
  return "";
}

function summary(rules: ServerRules | AgentRules): string {
  const plural = (count: number, word: string) => `${count} ${word}${count === 1 ? "" : "s"}`;
  return "agents" in rules
    ? `${rules.source}: OK (${plural(rules.rules.length, "rule")}, ${plural(rules.agents.length, "agent grant")})`
    : `${rules.source}: OK (${plural(rules.upstreams.length, "upstream")}, ${plural(rules.routes.length, "route")})`;
}

async function check(file: string, values: { agent?: boolean; strict?: boolean; "skip-secrets"?: boolean }, io: CliIo) {
  let rules: ServerRules | AgentRules;
  try {
    rules = load(file, values.agent === true, values["skip-secrets"] !== true, io.env);
  } catch (error) {
    if (!(error instanceof RulesError)) throw error;
    for (const problem of error.problems) io.stdout.write(`${formatProblem(problem)}\n`);
    const count = error.problems.length;
    throw new CliError(
      `${file} is invalid: ${count} problem${count === 1 ? "" : "s"}${wrongKindHint(error, values.agent === true)}`,
    );
  }
  for (const warning of rules.warnings) io.stderr.write(`warning: ${warning}\n`);
  if (values.strict && rules.warnings.length > 0) {
    const count = rules.warnings.length;
    throw new CliError(`${file}: ${count} warning${count === 1 ? "" : "s"} (--strict)`);
  }
  io.stdout.write(`${summary(rules)}\n`);
  return 0;
}

/** The `tunnel` command group. */
export const tunnelGroup: CommandGroup = {
  name: "tunnel",
  summary: "Check tunnel rules files and dry-run requests against them (offline).",
  commands: {
    check: defineCommand(checkSpec, ({ values, positionals }, io) => check(positionals[0]!, values, io)),
    match: defineCommand(matchSpec, async ({ values, positionals }, io) => {
      const facts = requestFacts(values);
      const file = positionals[0]!;
      let rules: ServerRules | AgentRules;
      try {
        rules = load(file, values.agent === true, false, io.env);
      } catch (error) {
        if (!(error instanceof RulesError)) throw error;
        const first = error.problems[0];
        const where = first === undefined ? "" : `: ${formatProblem(first)}`;
        throw new CliError(
          `${file} is invalid (see streamgate tunnel check ${file})${where}${wrongKindHint(error, values.agent === true)}`,
        );
      }
      const explanation = explainMatch(rules, facts);
      const noun = values.agent ? "route" : "rule";
      if (values.json) {
        writeJson(io, { source: rules.source, ...explanation });
      } else {
        for (const miss of explanation.misses) {
          io.stderr.write(`skipped ${noun} ${miss.rule} (${rules.source}:${miss.line}): ${miss.reason}\n`);
        }
        const match = explanation.match;
        if (match !== null) {
          io.stdout.write(
            formatFields([
              [noun, match.rule],
              ["line", `${rules.source}:${match.line}`],
              ["target", describeTarget(match.target)],
              ["auth", match.requiresBearerToken ? "bearer token required" : undefined],
            ]),
          );
        }
      }
      if (explanation.match === null) throw new CliError(`no ${noun} matches`);
      return 0;
    }),
  },
};
