// `streamgate agent --to`: the rules it builds route gRPC calls and HTTP requests to the named backends.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { matchAgentRoute, parseAgentRules } from "../tunnel/rules/index.js";
import { rulesForTargets } from "./agent.js";
import { UsageError } from "./args.js";

const http = { authority: "a", path: "/x", method: "GET", headers: {}, grpc: null };
const grpcCall = {
  authority: "a",
  path: "/shop.v1.Orders/Get",
  method: "POST",
  headers: {},
  grpc: { service: "shop.v1.Orders", method: "Get" },
};

describe("agent --to", () => {
  test("agent --to - one HTTP backend takes every request; a gRPC one every call; both split by kind", () => {
    const onlyHttp = parseAgentRules(rulesForTargets(["http://localhost:3000"]), "--to");
    assert.deepEqual(matchAgentRoute(onlyHttp, http)?.upstream.addresses, ["http://localhost:3000"]);
    assert.deepEqual(matchAgentRoute(onlyHttp, grpcCall)?.upstream.addresses, ["http://localhost:3000"]);

    const onlyGrpc = parseAgentRules(rulesForTargets(["grpc://localhost:50051"]), "--to");
    assert.deepEqual(matchAgentRoute(onlyGrpc, grpcCall)?.upstream.addresses, ["h2c://localhost:50051"]);
    assert.equal(matchAgentRoute(onlyGrpc, http), null, "plain HTTP has no backend");

    const both = parseAgentRules(rulesForTargets(["https://web.internal", "grpcs://api.internal:8443"]), "--to");
    assert.equal(matchAgentRoute(both, grpcCall)?.upstream.protocol, "grpc");
    assert.deepEqual(matchAgentRoute(both, grpcCall)?.upstream.addresses, ["https://api.internal:8443"]);
    assert.deepEqual(matchAgentRoute(both, http)?.upstream.addresses, ["https://web.internal"]);
    assert.deepEqual(both.warnings, []);
  });

  test("agent --to - other schemes, paths, a gRPC backend without a port and two of a kind are usage errors", () => {
    for (const [targets, message] of [
      [["ftp://x:1"], /expected http:\/\/, https:\/\/, grpc:\/\/ or grpcs:\/\//],
      [["http://x:1/api"], /give only scheme, host and port/],
      [["grpc://x"], /a gRPC backend needs a port/],
      [["http://a:1", "http://b:2"], /one HTTP backend only; use --config for more/],
      [["not a url"], /not a URL/],
    ] as const) {
      assert.throws(
        () => rulesForTargets(targets),
        (error: Error) => error instanceof UsageError && message.test(error.message),
      );
    }
  });
});
