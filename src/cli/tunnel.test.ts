// `streamgate tunnel check|match` run in-process on real files: exit codes, problems with lines, dry-run output.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, describe, test } from "node:test";
import type { CliIo } from "./command.js";
import { main } from "./main.js";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    stdin: Readable.from([]),
    env,
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

const serverRules = `agents:
  - name: orders-agents
    token: \${ORDERS_TOKEN}
    groups: [orders]
rules:
  - name: web
    match: { host: www.example.com, pathPrefix: /api/ }
    upstream: { protocol: http, addresses: ["http://10.0.0.7:8080"] }
    auth: { bearerTokens: [secret] }
  - name: orders
    match: { host: "*.example.com", service: "shop.*" }
    group: orders
  - name: lonely
    match: { headers: { x-team: blue } }
    group: nobody
`;

const agentRules = `upstreams:
  - { name: orders, protocol: grpc, addresses: ["h2c://10.0.0.5:50051"] }
routes:
  - { name: orders, match: { service: shop.v1.Orders }, upstream: orders }
`;

describe("cli tunnel", () => {
  const dir = mkdtempSync(join(tmpdir(), "streamgate-cli-tunnel-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const rules = file("rules.yaml", serverRules);
  const agent = file("agent.yaml", agentRules);

  test("cli tunnel - check prints a summary and warnings, exits 0; --strict makes warnings fail", async () => {
    const ok = await run(["tunnel", "check", rules], { ORDERS_TOKEN: "t" });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, `${rules}: OK (3 rules, 1 agent grant)\n`);
    assert.equal(
      ok.stderr,
      `warning: ${rules}:13: rules[2].group: no agent token may join group "nobody", so no agent can serve it\n`,
    );
    const strict = await run(["tunnel", "check", rules, "--strict"], { ORDERS_TOKEN: "t" });
    assert.equal(strict.code, 1);
    assert.match(strict.stderr, new RegExp(`streamgate: ${rules}: 1 warning \\(--strict\\)\\n$`));
    const agentCheck = await run(["tunnel", "check", agent, "--agent"]);
    assert.equal(agentCheck.code, 0, agentCheck.stderr);
    assert.equal(agentCheck.stdout, `${agent}: OK (1 upstream, 1 route)\n`);
  });

  test("cli tunnel - check lists every problem with its line and exits 1", async () => {
    const bad = file("bad.yaml", "rules:\n  - name: a\n    match: { method: 42 }\n    group: g\n  - name: b\n");
    const result = await run(["tunnel", "check", bad]);
    assert.equal(result.code, 1);
    assert.equal(
      result.stdout,
      `${bad}:3: rules[0].match.method: expected a string, got 42 (quote it: "42")\n` +
        `${bad}:5: rules[1]: a rule needs a target: group (agents) or upstream (direct)\n`,
    );
    assert.equal(result.stderr, `streamgate: ${bad} is invalid: 2 problems\n`);

    const noSecret = await run(["tunnel", "check", rules]);
    assert.equal(noSecret.code, 1);
    assert.equal(noSecret.stdout, `${rules}:3: agents[0].token: environment variable ORDERS_TOKEN is not set\n`);
    assert.equal((await run(["tunnel", "check", rules, "--skip-secrets"])).code, 0);

    const missing = await run(["tunnel", "check", join(dir, "nope.yaml")]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^streamgate: cannot read .*nope\.yaml: ENOENT\n$/);
    assert.equal((await run(["tunnel", "check", agent])).code, 1, "an agent file is not a server file");
  });

  test("cli tunnel - match prints rule, line and target; earlier rules' reasons go to stderr", async () => {
    const grpc = await run([
      "tunnel",
      "match",
      rules,
      "--host",
      "api.example.com",
      "--path",
      "/shop.Orders/Get",
      "--grpc",
    ]);
    assert.equal(grpc.code, 0, grpc.stderr);
    assert.equal(grpc.stdout, `rule:   orders\nline:   ${rules}:10\ntarget: group orders\n`);
    assert.equal(grpc.stderr, `skipped rule web (${rules}:6): host "api.example.com" does not match www.example.com\n`);

    const web = await run(["tunnel", "match", rules, "--host", "WWW.example.com:443", "--path", "/api/items"]);
    assert.equal(web.code, 0, web.stderr);
    assert.equal(
      web.stdout,
      `rule:   web\nline:   ${rules}:6\ntarget: upstream web (http, least_outstanding: http://10.0.0.7:8080)\n` +
        "auth:   bearer token required\n",
    );

    const header = await run(["tunnel", "match", rules, "--host", "x", "--header", "X-Team=blue"]);
    assert.match(header.stdout, /^rule: {3}lonely\n/);

    const none = await run(["tunnel", "match", rules, "--host", "nowhere.test"]);
    assert.equal(none.code, 1);
    assert.equal(none.stdout, "");
    assert.match(
      none.stderr,
      /skipped rule lonely \(.*:13\): header x-team is missing\nstreamgate: no rule matches\n$/,
    );

    const json = await run([
      "tunnel",
      "match",
      rules,
      "--host",
      "a.example.com",
      "--path",
      "/shop.X/Y",
      "--grpc",
      "--json",
    ]);
    assert.equal(json.code, 0);
    assert.deepEqual(JSON.parse(json.stdout), {
      source: rules,
      match: { rule: "orders", line: 10, target: { kind: "group", group: "orders" }, requiresBearerToken: false },
      misses: [{ rule: "web", line: 6, reason: 'host "a.example.com" does not match www.example.com' }],
    });

    const routed = await run([
      "tunnel",
      "match",
      agent,
      "--agent",
      "--host",
      "h",
      "--path",
      "/shop.v1.Orders/Get",
      "--grpc",
    ]);
    assert.equal(
      routed.stdout,
      `route:  orders\nline:   ${agent}:4\ntarget: upstream orders (grpc, least_outstanding: h2c://10.0.0.5:50051)\n`,
    );
    const unrouted = await run(["tunnel", "match", agent, "--agent", "--host", "h", "--path", "/"]);
    assert.equal(unrouted.code, 1);
    assert.match(unrouted.stderr, /streamgate: no route matches\n$/);
  });

  test("cli tunnel - match usage errors exit 2; an invalid file exits 1 naming its first problem", async () => {
    const noHost = await run(["tunnel", "match", rules]);
    assert.equal(noHost.code, 2);
    assert.equal(noHost.stderr, "streamgate: missing --host (see streamgate tunnel match --help)\n");
    const badGrpc = await run(["tunnel", "match", rules, "--host", "h", "--path", "/not/grpc/path", "--grpc"]);
    assert.equal(badGrpc.code, 2);
    assert.match(badGrpc.stderr, /--path: a gRPC path looks like \/package\.Service\/Method/);
    const badHeader = await run(["tunnel", "match", rules, "--host", "h", "--header", "novalue"]);
    assert.equal(badHeader.code, 2);
    const bad = file("invalid.yaml", "rules: 3\n");
    const invalid = await run(["tunnel", "match", bad, "--host", "h"]);
    assert.equal(invalid.code, 1);
    assert.equal(
      invalid.stderr,
      `streamgate: ${bad} is invalid (see streamgate tunnel check ${bad}): ${bad}:1: rules: expected a list, got 3\n`,
    );
  });
});
