// The JWKS fetcher against real local HTTP servers: cached, refetched for an unknown kid after the cooldown, and
// every kind of outage (refused, silent, 500, stalled body, trickle, oversized, not a key set) is a bounded AUTH_KEYS_UNAVAILABLE.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, describe, test } from "node:test";
import { exportJWK, generateKeyPair, type JWK } from "jose";
import { StreamgateError } from "../errors/index.js";
import { createRemoteKeySet } from "./remote-key-set.js";

const servers: Server[] = [];
async function serve(handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<URL> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`);
}
/** A port nothing listens on: bound, then closed. */
async function closedPort(): Promise<URL> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return new URL(`http://127.0.0.1:${port}/jwks.json`);
}

describe("auth - remote key set", () => {
  after(async () => {
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test("auth - remote key set: fetched once, cached, refetched for an unknown kid only after the cooldown", async () => {
    const pair = await generateKeyPair("ES256");
    const key: JWK = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "ES256" };
    let fetches = 0;
    const url = await serve((_request, response) => {
      fetches++;
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: [key] }));
    });
    let nowMs = 1_000_000;
    const keys = createRemoteKeySet(url, { cooldownMs: 30_000, cacheMaxAgeMs: 600_000, now: () => nowMs });
    const header = { alg: "ES256", kid: "k1" };
    const token = { payload: "", signature: "" };
    await Promise.all([keys(header, token), keys(header, token), keys(header, token)]);
    assert.equal(fetches, 1, "concurrent first uses share one fetch");
    await assert.rejects(keys({ alg: "ES256", kid: "k2" }, token), { code: "ERR_JWKS_NO_MATCHING_KEY" });
    assert.equal(fetches, 1, "inside the cooldown an unknown kid does not refetch");
    nowMs += 30_000;
    await assert.rejects(keys({ alg: "ES256", kid: "k2" }, token), { code: "ERR_JWKS_NO_MATCHING_KEY" });
    assert.equal(fetches, 2);
    nowMs += 600_000;
    await keys(header, token);
    assert.equal(fetches, 3, "refetched after cacheMaxAgeMs");
  });

  const outages: [string, () => Promise<URL>][] = [
    ["connection refused", closedPort],
    ["no answer", () => serve(() => {})],
    ["HTTP 500", () => serve((_request, response) => response.writeHead(500).end("down"))],
    [
      "headers, then a stalled body",
      () =>
        serve((_request, response) => {
          response.writeHead(200, { "content-type": "application/json" });
          response.write('{"keys":[');
        }),
    ],
    [
      "a body trickling a byte at a time",
      () =>
        serve((_request, response) => {
          response.writeHead(200, { "content-type": "application/json" });
          const timer = setInterval(() => response.write(" "), 50);
          response.on("close", () => clearInterval(timer));
        }),
    ],
    [
      "a body over maxBytes",
      () => serve((_request, response) => response.writeHead(200).end(`{"keys":[],"x":"${"x".repeat(5000)}"}`)),
    ],
    ["JSON that is not a key set", () => serve((_request, response) => response.writeHead(200).end('{"keys":7}'))],
    ["not JSON", () => serve((_request, response) => response.writeHead(200).end("<html>"))],
  ];
  for (const [name, start] of outages) {
    test(`auth - remote key set: ${name} is AUTH_KEYS_UNAVAILABLE within the fetch deadline`, async () => {
      const keys = createRemoteKeySet(await start(), { fetchTimeoutMs: 500, maxBytes: 4096 });
      const started = performance.now();
      const error = await keys({ alg: "ES256", kid: "k1" }, { payload: "", signature: "" }).then(
        () => assert.fail("the key lookup succeeded"),
        (caught: unknown) => caught,
      );
      const elapsedMs = performance.now() - started;
      assert.ok(error instanceof StreamgateError, String(error));
      assert.equal(error.reason, "AUTH_KEYS_UNAVAILABLE");
      assert.equal(error.message, "the keys that verify tokens (JWKS) cannot be fetched; retry");
      assert.ok(elapsedMs < 2_000, `answered after ${Math.round(elapsedMs)} ms`);
    });
  }
});
