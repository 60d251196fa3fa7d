// Options of the PROXY protocol and trusted proxies: env parsing, defaults and the contradictions resolveServerOptions refuses.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseConfigFile } from "./config-file.js";
import { serverOptionsFromEnv, serverOptionsFromFlags } from "./option-values.js";
import { resolveServerOptions } from "./server-options.js";

describe("proxy options", () => {
  test("proxy options - off by default: no trusted proxies, no PROXY protocol on either listener, 5 s header timeout", () => {
    const options = resolveServerOptions();
    assert.deepEqual(options.trustedProxies, []);
    assert.equal(options.proxyProtocol, false);
    assert.equal(options.tunnelProxyProtocol, false);
    assert.equal(options.proxyProtocolTimeoutMs, 5_000);
  });

  test("proxy options - env: a comma-separated range list, booleans and the timeout", () => {
    const options = serverOptionsFromEnv({
      STREAMGATE_TRUSTED_PROXIES: "10.0.0.0/8, 127.0.0.1,,fd00::/8",
      STREAMGATE_PROXY_PROTOCOL: "1",
      STREAMGATE_TUNNEL_PROXY_PROTOCOL: "true",
      STREAMGATE_PROXY_PROTOCOL_TIMEOUT_MS: "250",
    });
    assert.deepEqual(options.trustedProxies, ["10.0.0.0/8", "127.0.0.1", "fd00::/8"]);
    const resolved = resolveServerOptions(options);
    assert.equal(resolved.proxyProtocol, true);
    assert.equal(resolved.tunnelProxyProtocol, true);
    assert.equal(resolved.proxyProtocolTimeoutMs, 250);
  });

  test("proxy options - a bad range, PROXY protocol without trusted proxies and a tiny timeout are refused by name", () => {
    assert.throws(
      () => resolveServerOptions({ trustedProxies: ["10.0.0.0/40"] }),
      /trustedProxies: "10\.0\.0\.0\/40" is not/,
    );
    assert.throws(() => resolveServerOptions({ proxyProtocol: true }), /proxyProtocol: needs --trusted-proxies/);
    assert.throws(() => resolveServerOptions({ tunnelProxyProtocol: true }), /proxyProtocol: needs --trusted-proxies/);
    assert.throws(
      () => resolveServerOptions({ trustedProxies: ["127.0.0.1"], proxyProtocol: true, proxyProtocolTimeoutMs: 1 }),
      /proxyProtocolTimeoutMs: must be an integer >= 10/,
    );
  });

  test("proxy options - a list from a flag, a YAML list or comma text in a config file, all the same", () => {
    const expected = ["10.0.0.0/8", "127.0.0.1"];
    assert.deepEqual(serverOptionsFromFlags({ "trusted-proxies": "10.0.0.0/8,127.0.0.1" }).trustedProxies, expected);
    assert.deepEqual(
      parseConfigFile("trustedProxies:\n  - 10.0.0.0/8\n  - 127.0.0.1\n", "a.yaml").trustedProxies,
      expected,
    );
    assert.deepEqual(parseConfigFile('trustedProxies: "10.0.0.0/8, 127.0.0.1"\n', "b.yaml").trustedProxies, expected);
    assert.throws(
      () => parseConfigFile("trustedProxies:\n  - a: 1\n", "c.yaml"),
      /c\.yaml:1: trustedProxies: expected a list of values/,
    );
  });
});
