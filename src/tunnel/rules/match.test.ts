// Rule matching, table-driven: hosts and wildcards, paths, gRPC service/method, headers, order, no match, grants.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  explainMatch,
  findAgentGrant,
  groupAllowed,
  grpcFromPath,
  matchAgentRoute,
  matchServerRule,
  parseAgentRules,
  parseServerRules,
  type RequestFacts,
} from "./index.js";
import { compileWildcard, splitAuthority } from "./wildcard.js";

function facts(authority: string, path: string, extra: Partial<RequestFacts> = {}): RequestFacts {
  return { authority, path, method: "GET", headers: {}, grpc: null, ...extra };
}

function grpc(authority: string, path: string, headers: RequestFacts["headers"] = {}): RequestFacts {
  return { authority, path, method: "POST", headers, grpc: grpcFromPath(path) };
}

const serverRules = parseServerRules(
  `
agents:
  - name: edge
    token: edge-secret
    groups: [orders, "edge-*"]
  - name: all
    token: all-secret
    groups: ["*"]
rules:
  - name: orders-get
    match: { host: "*.example.com", service: shop.Orders, method: Get }
    group: orders
  - name: shop-any
    match: { hosts: [api.example.com, "grpc.example.com:8443"], service: "shop.*" }
    group: shop
  - name: tenant
    match:
      pathPrefix: /api/
      headers: { x-tenant: "acme-*", x-env: prod }
    group: edge-acme
  - name: api
    match: { host: API.Example.com, pathPrefix: /api/ }
    group: api
  - name: empty-header
    match: { headers: { x-flag: "" } }
    group: flags
`,
  "rules.yaml",
  { resolveSecrets: true, env: {} },
);

describe("tunnel rules matching", () => {
  const cases: { name: string; request: RequestFacts; rule: string | null }[] = [
    {
      name: "wildcard host, service and method",
      request: grpc("a.example.com", "/shop.Orders/Get"),
      rule: "orders-get",
    },
    {
      name: "wildcard host spans levels",
      request: grpc("x.y.example.com:443", "/shop.Orders/Get"),
      rule: "orders-get",
    },
    { name: "host case and trailing dot", request: grpc("A.Example.COM.", "/shop.Orders/Get"), rule: "orders-get" },
    { name: "bare domain is not *.domain", request: grpc("example.com", "/shop.Orders/Get"), rule: null },
    {
      name: "other method falls to service wildcard",
      request: grpc("api.example.com", "/shop.Orders/List"),
      rule: "shop-any",
    },
    { name: "port ignored unless given", request: grpc("api.example.com:9999", "/shop.Cart/Add"), rule: "shop-any" },
    { name: "port given must equal", request: grpc("grpc.example.com:8443", "/shop.Cart/Add"), rule: "shop-any" },
    { name: "port given, other port", request: grpc("grpc.example.com:443", "/shop.Cart/Add"), rule: null },
    { name: "port given, no port", request: grpc("grpc.example.com", "/shop.Cart/Add"), rule: null },
    {
      name: "service wildcard is not a prefix of other packages",
      request: grpc("api.example.com", "/shopx.Cart/Add"),
      rule: null,
    },
    {
      name: "gRPC conditions need a gRPC request",
      request: facts("api.example.com", "/shop.Cart/Add"),
      rule: null,
    },
    {
      name: "headers: all must hold, wildcard value",
      request: facts("h", "/api/items", { headers: { "x-tenant": "acme-1", "x-env": "prod" } }),
      rule: "tenant",
    },
    {
      name: "headers: multi-valued header matches on any value",
      request: facts("h", "/api/items", { headers: { "x-tenant": ["other", "acme-2"], "x-env": "prod" } }),
      rule: "tenant",
    },
    {
      name: "headers: header values are case-sensitive",
      request: facts("api.example.com", "/api/items", { headers: { "x-tenant": "acme-1", "x-env": "PROD" } }),
      rule: "api",
    },
    {
      name: "headers: a missing header fails, later rule wins",
      request: facts("api.example.com", "/api/items", { headers: { "x-tenant": "acme-1" } }),
      rule: "api",
    },
    { name: "path prefix is a plain prefix", request: facts("api.example.com", "/api/"), rule: "api" },
    { name: "path prefix, shorter path", request: facts("api.example.com", "/api"), rule: null },
    { name: "exact host is case-insensitive", request: facts("api.EXAMPLE.com:80", "/api/x?y=1"), rule: "api" },
    {
      name: "empty header value matches present-and-empty",
      request: facts("h", "/", { headers: { "x-flag": "" } }),
      rule: "empty-header",
    },
    { name: "empty header value needs the header", request: facts("h", "/"), rule: null },
    { name: "no rule matches", request: facts("elsewhere.org", "/"), rule: null },
  ];
  for (const { name, request, rule } of cases) {
    test(`tunnel rules - server match: ${name}`, () => {
      assert.equal(matchServerRule(serverRules, request)?.name ?? null, rule);
      const explained = explainMatch(serverRules, request);
      assert.equal(explained.match?.rule ?? null, rule, "explainMatch agrees with matchServerRule");
      const tried = serverRules.rules.findIndex((candidate) => candidate.name === rule);
      assert.equal(explained.misses.length, tried < 0 ? serverRules.rules.length : tried);
    });
  }

  test("tunnel rules - explainMatch gives the matched rule's line and target and why earlier rules missed", () => {
    const explained = explainMatch(
      serverRules,
      facts("api.example.com", "/api/items", { headers: { "x-tenant": "z" } }),
    );
    assert.deepEqual(explained.match, {
      rule: "api",
      line: 21,
      target: { kind: "group", group: "api" },
      requiresBearerToken: false,
    });
    assert.deepEqual(
      explained.misses.map((miss) => `${miss.line} ${miss.rule}: ${miss.reason}`),
      [
        "10 orders-get: not a gRPC request",
        "13 shop-any: not a gRPC request",
        '16 tenant: header x-tenant: "z" does not match "acme-*"',
      ],
    );
    const other = explainMatch(serverRules, grpc("b.example.com", "/shop.Orders/List"));
    assert.equal(other.match, null);
    assert.deepEqual(
      other.misses.map((miss) => miss.reason),
      [
        'gRPC method "List" is not "Get"',
        'host "b.example.com" does not match api.example.com, grpc.example.com:8443',
        'path "/shop.Orders/List" does not start with "/api/"',
        'host "b.example.com" does not match API.Example.com',
        "header x-flag is missing",
      ],
    );
  });

  test("tunnel rules - first matching rule wins, in file order", () => {
    const rules = parseServerRules(
      "rules:\n  - { name: first, match: { pathPrefix: /a }, group: one }\n  - { name: second, match: { pathPrefix: /a/b }, group: two }\n",
      "order.yaml",
    );
    assert.equal(matchServerRule(rules, facts("h", "/a/b/c"))?.name, "first");
    assert.equal(matchServerRule(rules, facts("h", "/b")), null);
  });

  test("tunnel rules - grpcFromPath takes /package.Service/Method only", () => {
    assert.deepEqual(grpcFromPath("/shop.v1.Orders/Get"), { service: "shop.v1.Orders", method: "Get" });
    assert.equal(grpcFromPath("/shop.v1.Orders"), null);
    assert.equal(grpcFromPath("/a/b/c"), null);
    assert.equal(grpcFromPath("/a/b?x=1"), null);
  });

  test("tunnel rules - wildcards and authorities", () => {
    const table: [string, string, boolean][] = [
      ["*", "", true],
      ["*", "anything", true],
      ["a*", "abc", true],
      ["a*", "ba", false],
      ["*c", "abc", true],
      ["*c", "abd", false],
      ["a*c", "abbbc", true],
      ["a*c", "ac", true],
      ["a*c", "acb", false],
      ["a.*.c", "a.b.c", true],
      ["a.*.c", "aXbXc", false],
      ["(x)*[y]", "(x)1[y]", true],
      ["exact", "exact", true],
      ["exact", "Exact", false],
    ];
    for (const [pattern, value, expected] of table) {
      assert.equal(compileWildcard(pattern).test(value), expected, `${pattern} vs ${value}`);
    }
    assert.equal(compileWildcard("*.EXAMPLE.com", true).test("a.example.COM"), true);
    assert.deepEqual(splitAuthority("Example.COM:8080"), { host: "example.com", port: 8080 });
    assert.deepEqual(splitAuthority("[::1]:8443"), { host: "::1", port: 8443 });
    assert.deepEqual(splitAuthority("[::1]"), { host: "::1", port: null });
    assert.deepEqual(splitAuthority("example.com."), { host: "example.com", port: null });
  });

  test("tunnel rules - agent grants: groups with wildcards, tokens compared in constant time", () => {
    const edge = findAgentGrant(serverRules, "edge-secret");
    assert.equal(edge?.name, "edge");
    assert.equal(findAgentGrant(serverRules, "all-secret")?.name, "all");
    assert.equal(findAgentGrant(serverRules, "edge-secre"), null);
    assert.equal(findAgentGrant(serverRules, ""), null);
    assert.ok(groupAllowed(edge!, "orders"));
    assert.ok(groupAllowed(edge!, "edge-west"));
    assert.ok(!groupAllowed(edge!, "edge"));
    assert.ok(!groupAllowed(edge!, "orders-2"));
    assert.ok(groupAllowed(findAgentGrant(serverRules, "all-secret")!, "anything"));
  });

  test("tunnel rules - agent routes pick the first matching route and its upstream", () => {
    const agent = parseAgentRules(
      `
upstreams:
  - name: orders
    protocol: grpc
    addresses: [http://10.0.0.1:50051, h2c://10.0.0.2:50051]
    healthCheck: { service: shop.Orders }
  - name: web
    protocol: http
    addresses: [http://127.0.0.1:8080]
    pick: round_robin
routes:
  - match: { service: shop.Orders }
    upstream: orders
  - name: site
    match: { host: "*.shop.test", pathPrefix: / }
    upstream: web
`,
      "agent.yaml",
    );
    const hit = matchAgentRoute(agent, grpc("x", "/shop.Orders/Get"));
    assert.equal(hit?.route.name, "routes[0]");
    assert.deepEqual(hit?.upstream.addresses, ["h2c://10.0.0.1:50051", "h2c://10.0.0.2:50051"]);
    assert.deepEqual(hit?.upstream.healthCheck, { service: "shop.Orders", intervalMs: 5000, timeoutMs: 1000 });
    assert.equal(hit?.upstream.pick, "least_outstanding");
    assert.equal(matchAgentRoute(agent, facts("www.shop.test", "/index.html"))?.upstream.name, "web");
    assert.equal(matchAgentRoute(agent, facts("www.other.test", "/index.html")), null);
    const explained = explainMatch(agent, facts("www.shop.test", "/"));
    assert.equal(explained.match?.rule, "site");
    assert.equal(explained.match?.line, 14);
    assert.equal(explained.match?.target.kind, "upstream");
    assert.deepEqual(explained.misses, [{ rule: "routes[0]", line: 12, reason: "not a gRPC request" }]);
  });
});
