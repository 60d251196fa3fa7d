// Parsing the rules files: strict schema, every problem with file:line: field, secrets, warnings.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { Code } from "../../errors/index.js";
import { parseAgentRules, parseServerRules, RulesError } from "./index.js";

/** The problems a parse throws, one `file:line: field: problem` string each. */
function problems(parse: () => unknown): string[] {
  try {
    parse();
  } catch (error) {
    assert.ok(error instanceof RulesError, `expected a RulesError, got ${String(error)}`);
    assert.equal(error.code, Code.INVALID_ARGUMENT);
    assert.equal(error.reason, "TUNNEL_RULES_INVALID");
    return error.message.split("\n");
  }
  assert.fail("expected the parse to fail");
}

const server =
  (text: string, env: NodeJS.ProcessEnv = {}) =>
  () =>
    parseServerRules(text, "rules.yaml", { env, baseDir: "/nonexistent" });
const agent = (text: string) => () => parseAgentRules(text, "agent.yaml");

describe("tunnel rules parsing", () => {
  const dir = mkdtempSync(join(tmpdir(), "streamgate-rules-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("tunnel rules - a wrong type names file, line and field", () => {
    const text = [
      "rules:",
      "  - name: a",
      "    group: g",
      "  - name: b",
      "    group: g",
      "  - name: c",
      "    match:",
      "      method: 42",
      "    group: g",
    ].join("\n");
    assert.deepEqual(problems(server(text)), [
      'rules.yaml:8: rules[2].match.method: expected a string, got 42 (quote it: "42")',
    ]);
  });

  test("tunnel rules - every problem of a file is reported at once, in line order", () => {
    const text = `
color: blue
agents:
  - name: edge
    token: \${MISSING_TOKEN}
    groups: []
    extra: 1
rules:
  - name: a
    match:
      host: "https://x.example.com"
      pathPrefix: api
      weird: true
    group: g
  - name: a
    match: { service: "a b", method: "Get*" }
  - name: c
    group: x
    upstream: { protocol: grpc, addresses: [h2c://x] }
    timeoutMs: -1
  - name: e
    upstream: { protocol: grpc, addresses: [h2c://x] }
  - name: d
    upstream:
      protocol: http
      addresses: [ftp://x, "http://user:pw@x", "http://x/path", http://ok, http://ok]
      healthCheck: {}
      pick: random
    auth: { bearerTokens: [] }
`;
    assert.deepEqual(problems(server(text)), [
      "rules.yaml:2: color: unknown key (known keys: version, agents, rules)",
      "rules.yaml:5: agents[0].token: environment variable MISSING_TOKEN is not set",
      "rules.yaml:6: agents[0].groups: must not be empty",
      "rules.yaml:7: agents[0].extra: unknown key (known keys: name, token, tokenFile, groups)",
      'rules.yaml:11: rules[0].match.host: expected a host such as api.example.com, *.example.com or host:8443, got "https://x.example.com"',
      'rules.yaml:12: rules[0].match.pathPrefix: must start with "/", got "api"',
      "rules.yaml:13: rules[0].match.weird: unknown key (known keys: host, hosts, pathPrefix, service, method, headers)",
      'rules.yaml:15: rules[1].name: duplicate rule name "a" (also at line 9)',
      "rules.yaml:15: rules[1]: a rule needs a target: group (agents) or upstream (direct)",
      'rules.yaml:16: rules[1].match.service: expected a gRPC service such as pkg.Orders or pkg.*, got "a b"',
      "(and 11 more problems)",
    ]);
    try {
      server(text)();
    } catch (error) {
      const all = (error as RulesError).problems.map(
        (problem) => `${problem.line}: ${problem.field}: ${problem.problem}`,
      );
      assert.deepEqual(all.slice(11), [
        "19: rules[2]: give either group or upstream, not both",
        "20: rules[2].timeoutMs: must be between 1 and 86400000, got -1",
        '22: rules[3].upstream.addresses[0]: h2c addresses need a port, got "h2c://x"',
        '26: rules[4].upstream.addresses[0]: unsupported scheme ftp: (use http, https or h2c), got "ftp://x"',
        '26: rules[4].upstream.addresses[1]: must not carry credentials, got "http://user:pw@x"',
        '26: rules[4].upstream.addresses[2]: must not have a path, query or fragment (routes choose the upstream, the request keeps its path), got "http://x/path"',
        "26: rules[4].upstream.addresses[4]: listed twice",
        "27: rules[4].upstream.healthCheck: health checks use grpc.health.v1 and need protocol: grpc",
        '28: rules[4].upstream.pick: expected one of round_robin, least_outstanding, got "random"',
        "29: rules[4].auth.bearerTokens: must not be empty",
      ]);
    }
  });

  test("tunnel rules - YAML syntax errors and duplicate keys name their line", () => {
    assert.deepEqual(problems(server("rules:\n  - name: a\n    group: g\n    group: h\n")), [
      "rules.yaml:4: YAML: Map keys must be unique",
    ]);
    const [syntax] = problems(server("rules: [\n  { name: a\n"));
    assert.match(syntax!, /^rules\.yaml:\d+: YAML: /);
    assert.deepEqual(problems(server("- a\n- b\n")), ["rules.yaml:1: expected a map, got a list"]);
    assert.deepEqual(problems(server("version: 2\n")), ["rules.yaml:1: version: must be between 1 and 1, got 2"]);
  });

  test("tunnel rules - a complete server file parses with defaults filled in", () => {
    const tokenFile = join(dir, "agent.token");
    writeFileSync(tokenFile, "from-file\n");
    const rules = parseServerRules(
      `
version: 1
agents:
  - name: from-env
    token: "pre-\${EDGE_TOKEN}"
    groups: ["edge-*"]
  - name: from-file
    tokenFile: agent.token
    groups: [orders]
rules:
  - name: orders
    match: { host: "*.example.com", service: shop.Orders, headers: { X-Tenant: acme } }
    group: orders
    timeoutMs: 30000
    auth: { bearerTokens: ["\${API_TOKEN}", literal] }
  - name: direct
    upstream:
      protocol: grpc
      addresses: [http://127.0.0.1:50051]
      healthCheck: { intervalMs: 1000, timeoutMs: 200 }
`,
      join(dir, "rules.yaml"),
      { env: { EDGE_TOKEN: "e1", API_TOKEN: "a1" } },
    );
    assert.deepEqual(
      rules.agents.map((grant) => [grant.name, grant.token, grant.groups]),
      [
        ["from-env", "pre-e1", ["edge-*"]],
        ["from-file", "from-file", ["orders"]],
      ],
    );
    const [orders, direct] = rules.rules;
    assert.equal(orders?.line, 11);
    assert.deepEqual(orders?.bearerTokens, ["a1", "literal"]);
    assert.equal(orders?.timeoutMs, 30000);
    assert.deepEqual(
      orders?.match.headers.map((header) => header.name),
      ["x-tenant"],
    );
    assert.deepEqual(direct?.target, {
      kind: "upstream",
      upstream: {
        name: "direct",
        protocol: "grpc",
        addresses: ["h2c://127.0.0.1:50051"],
        pick: "least_outstanding",
        healthCheck: { service: "", intervalMs: 1000, timeoutMs: 200 },
      },
    });
    assert.equal(direct?.bearerTokens, null);
    assert.equal(direct?.timeoutMs, null);
    assert.deepEqual(rules.warnings, []);
  });

  test("tunnel rules - secrets: missing token file, duplicate tokens, and dry runs that skip secrets", () => {
    const text = `
agents:
  - { name: a, tokenFile: missing.token, groups: [g] }
  - { name: b, token: same, groups: [g] }
  - { name: c, token: same, groups: [g] }
  - { name: d, token: "\${UNSET}", tokenFile: x, groups: [g] }
rules:
  - { name: r, group: g, auth: { bearerTokens: ["\${ALSO_UNSET}"] } }
`;
    assert.deepEqual(
      problems(() => parseServerRules(text, "rules.yaml", { env: {}, baseDir: dir })),
      [
        'rules.yaml:3: agents[0].tokenFile: cannot read "missing.token": ENOENT',
        "rules.yaml:5: agents[2]: same token as the agent grant at line 4 (give each grant its own token)",
        "rules.yaml:6: agents[3]: give exactly one of token and tokenFile",
        "rules.yaml:8: rules[0].auth.bearerTokens[0]: environment variable ALSO_UNSET is not set",
      ],
    );
    const skipped = parseServerRules(text.replace(/ {2}- \{ name: d.*\n/, ""), "rules.yaml", {
      env: {},
      resolveSecrets: false,
    });
    assert.deepEqual(
      skipped.agents.map((grant) => grant.token),
      ["tokenFile:missing.token", "same", "same"],
    );
    assert.deepEqual(skipped.rules[0]?.bearerTokens, ["$" + "{ALSO_UNSET}"]);
  });

  test("tunnel rules - warnings: a group no token may join, rules after a catch-all, an empty file", () => {
    const rules = parseServerRules(
      `
agents: [{ name: a, token: t, groups: ["edge-*"] }]
rules:
  - { name: ok, match: { pathPrefix: /x }, group: edge-1 }
  - { name: all, group: orphan }
  - { name: late, match: { pathPrefix: /y }, group: edge-2 }
`,
      "rules.yaml",
    );
    assert.deepEqual(rules.warnings, [
      'rules.yaml:5: rules[1].group: no agent token may join group "orphan", so no agent can serve it',
      'rules.yaml:6: rules[2]: never matches: "all" (line 5) above it matches every request',
    ]);
    assert.deepEqual(parseServerRules("", "empty.yaml").warnings, [
      "empty.yaml:1: rules: no rules, so every request is answered 404 / UNIMPLEMENTED",
    ]);
    assert.deepEqual(parseServerRules("# only a comment\n", "c.yaml").rules, []);
    assert.deepEqual(parseServerRules("agents:\nrules:\n#  - { name: off, group: g }\n", "c.yaml").rules, []);
    assert.deepEqual(parseAgentRules("upstreams:\nroutes:\n", "a.yaml").routes, []);
  });

  test("tunnel rules - agent files: upstreams, routes, unknown upstream names and strict keys", () => {
    assert.deepEqual(
      problems(
        agent(`
upstreams:
  - name: orders
    protocol: grpc
    addresses: [h2c://a:1]
  - name: orders
    protocol: grpc
    addresses: [h2c://b:1]
  - name: broken
    protocol: soap
    addresses: [http://c]
  - protocol: http
    addresses: [http://d]
routes:
  - match: { service: shop.Orders }
    upstream: order
  - { name: r, upstream: broken }
  - { name: r, upstream: orders, group: x }
`),
      ),
      [
        'agent.yaml:6: upstreams[1].name: duplicate upstream name "orders" (also at line 3)',
        'agent.yaml:10: upstreams[2].protocol: expected one of grpc, http, got "soap"',
        "agent.yaml:12: upstreams[3].name: is required",
        'agent.yaml:16: routes[0].upstream: unknown upstream "order" (upstreams: orders, broken)',
        "agent.yaml:18: routes[2].group: unknown key (known keys: name, match, upstream)",
        'agent.yaml:18: routes[2].name: duplicate route name "r" (also at line 17)',
      ],
    );
    const rules = parseAgentRules(
      `
upstreams:
  - { name: used, protocol: http, addresses: ["https://Web.Example:8443/"] }
  - { name: spare, protocol: grpc, addresses: ["h2c://x:1"] }
routes:
  - upstream: used
  - { match: { host: a }, upstream: used }
`,
      "agent.yaml",
    );
    assert.deepEqual(rules.upstreams[0]?.addresses, ["https://web.example:8443"]);
    assert.deepEqual(rules.warnings, [
      'agent.yaml:4: upstreams[1]: no route uses upstream "spare"',
      'agent.yaml:7: routes[1]: never matches: "routes[0]" (line 6) above it matches every request',
    ]);
  });
});
