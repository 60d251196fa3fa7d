// The JWKS fetcher against real local HTTP servers: cached, refetched for an unknown kid after the cooldown, every
// kind of outage (refused, silent, 500, stalled body, trickle, oversized, not a key set) is a bounded
// AUTH_KEYS_UNAVAILABLE, refused at once for a while after a failure, outlived by the cached set, logged once.
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

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + 2_000;
  while (!condition()) {
    if (performance.now() > deadline) assert.fail(`not within 2 s: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Awaits a key lookup that must fail; its reason and how long it took. */
async function timedRefusal(lookup: Promise<unknown>): Promise<{ reason: string; ms: number }> {
  const started = performance.now();
  const error = await lookup.then(
    () => assert.fail("the key lookup succeeded"),
    (caught: unknown) => caught,
  );
  assert.ok(error instanceof StreamgateError, String(error));
  return { reason: error.reason, ms: Math.round(performance.now() - started) };
}

const publicKey: JWK = { ...(await exportJWK((await generateKeyPair("ES256")).publicKey)), kid: "k1", alg: "ES256" };
const k1 = { alg: "ES256", kid: "k1" };
const token = { payload: "", signature: "" };

/** A JWKS server whose answer the test switches: the key set, HTTP 500, or headers and then nothing. */
async function switchableJwks(mode: "ok" | "500" | "stall") {
  const jwks = { url: new URL("http://127.0.0.1/"), mode, fetches: 0 };
  jwks.url = await serve((_request, response) => {
    jwks.fetches++;
    if (jwks.mode === "ok") response.writeHead(200).end(JSON.stringify({ keys: [publicKey] }));
    else if (jwks.mode === "500") response.writeHead(500).end("down");
    else response.writeHead(200).write('{"keys":[');
  });
  return jwks;
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
    await until(() => fetches === 3, "refetched (in the background) after cacheMaxAgeMs");
  });

  test("auth - remote key set: after a failed fetch, requests are refused at once for failFastMs; then one request fetches again", async () => {
    const jwks = await switchableJwks("stall");
    let nowMs = 1_000_000;
    const keys = createRemoteKeySet(jwks.url, { fetchTimeoutMs: 1_000, failFastMs: 5_000, now: () => nowMs });
    const first = await timedRefusal(keys(k1, token));
    assert.equal(first.reason, "AUTH_KEYS_UNAVAILABLE");
    assert.ok(first.ms >= 900, `the first request waits for the fetch deadline (${first.ms} ms)`);
    for (let request = 0; request < 3; request++) {
      nowMs += 1_000;
      const next = await timedRefusal(keys(k1, token));
      assert.equal(next.reason, "AUTH_KEYS_UNAVAILABLE");
      assert.ok(next.ms < 100, `request ${request} inside the window answered after ${next.ms} ms`);
    }
    assert.equal(jwks.fetches, 1, "no fetch inside the window");

    nowMs += 2_000; // past the window: one request fetches again (and waits); the others are still refused at once
    const retry = timedRefusal(keys(k1, token));
    const meanwhile = await timedRefusal(keys(k1, token));
    assert.equal(meanwhile.reason, "AUTH_KEYS_UNAVAILABLE");
    assert.ok(meanwhile.ms < 100, `a request during the retry answered after ${meanwhile.ms} ms`);
    assert.equal((await retry).reason, "AUTH_KEYS_UNAVAILABLE");
    assert.equal(jwks.fetches, 2);

    jwks.mode = "ok";
    await assert.rejects(keys(k1, token), { reason: "AUTH_KEYS_UNAVAILABLE" }, "still inside the new window");
    nowMs += 5_000;
    await keys(k1, token);
    await Promise.all([keys(k1, token), keys(k1, token)]);
    assert.equal(jwks.fetches, 3, "back: one fetch, then the cached set");
  });

  test("auth - remote key set: a cached kid keeps verifying while the JWKS is down, without waiting, until staleMaxAgeMs", async () => {
    const jwks = await switchableJwks("ok");
    const lines: string[] = [];
    let nowMs = 1_000_000;
    const keys = createRemoteKeySet(jwks.url, {
      fetchTimeoutMs: 500,
      cacheMaxAgeMs: 600_000,
      cooldownMs: 30_000,
      failFastMs: 5_000,
      staleMaxAgeMs: 3_600_000,
      now: () => nowMs,
      logger: { warn: (line) => lines.push(`warn ${line}`), info: (line) => lines.push(`info ${line}`) },
    });
    await keys(k1, token);
    jwks.mode = "stall";
    nowMs += 600_000;
    const started = performance.now();
    await keys(k1, token);
    await keys(k1, token);
    assert.ok(performance.now() - started < 100, "a cached kid does not wait for the refetch");
    await until(() => jwks.fetches === 2, "the refetch started");
    await new Promise((resolve) => setTimeout(resolve, 600)); // the stalled refetch fails at its deadline
    jwks.mode = "500";
    await keys(k1, token);
    const unknownKid = await timedRefusal(keys({ alg: "ES256", kid: "k2" }, token));
    assert.equal(unknownKid.reason, "AUTH_KEYS_UNAVAILABLE", "a kid the cached set lacks: the JWKS is down");
    assert.ok(unknownKid.ms < 100, `the unknown kid answered after ${unknownKid.ms} ms`);
    nowMs += 2_999_000;
    await keys(k1, token); // 1 h minus 1 s after the last good fetch: still in use (and a refetch starts)
    await until(() => jwks.fetches === 3, "a refetch after the window");
    await new Promise((resolve) => setTimeout(resolve, 100)); // its HTTP 500 arrives
    nowMs += 1_000;
    assert.equal((await timedRefusal(keys(k1, token))).reason, "AUTH_KEYS_UNAVAILABLE", "past staleMaxAgeMs");

    jwks.mode = "ok";
    nowMs += 5_000;
    await keys(k1, token);
    assert.equal(jwks.fetches, 4);
    assert.equal(lines.length, 3, lines.join("\n"));
    assert.ok(
      lines[0]!.startsWith(
        `warn JWKS ${jwks.url.href}: fetching the keys fails (GET ${jwks.url.href} did not complete within 500 ms`,
      ),
    );
    assert.equal(
      lines[1],
      `warn JWKS ${jwks.url.href}: the last fetched key set is older than 3600000 ms and no longer used; every JWKS token gets AUTH_KEYS_UNAVAILABLE until a fetch succeeds`,
    );
    assert.equal(lines[2], `info JWKS ${jwks.url.href}: keys fetched again after 2 failed fetch(es) over 3005 s`);
  });

  test("auth - remote key set: an outage logs one warn line when it starts and one info line when it ends", async () => {
    const jwks = await switchableJwks("500");
    const lines: string[] = [];
    let nowMs = 1_000_000;
    const keys = createRemoteKeySet(jwks.url, {
      failFastMs: 1_000,
      now: () => nowMs,
      logger: { warn: (line) => lines.push(`warn ${line}`), info: (line) => lines.push(`info ${line}`) },
    });
    const secretToken = { payload: "secret-payload", signature: "secret-signature" };
    for (let request = 0; request < 6; request++) {
      await assert.rejects(keys(k1, secretToken), { reason: "AUTH_KEYS_UNAVAILABLE" });
      nowMs += 500;
    }
    assert.equal(jwks.fetches, 3, "one fetch per window");
    assert.deepEqual(lines, [
      `warn JWKS ${jwks.url.href}: fetching the keys fails (GET ${jwks.url.href} answered HTTP 500, expected 200); tokens that need a fetch get AUTH_KEYS_UNAVAILABLE (the last fetched key set, if any, stays in use); retried at most every 1000 ms`,
    ]);
    jwks.mode = "ok";
    nowMs += 1_000;
    await keys(k1, secretToken);
    await keys(k1, secretToken);
    assert.equal(lines.length, 2);
    assert.equal(lines[1], `info JWKS ${jwks.url.href}: keys fetched again after 3 failed fetch(es) over 4 s`);
    assert.ok(!lines.join("\n").includes("secret-"), "no token in the log");
  });

  test("auth - remote key set: contradictory options are refused", () => {
    assert.throws(
      () => createRemoteKeySet(new URL("http://127.0.0.1/"), { cacheMaxAgeMs: 60_000, staleMaxAgeMs: 1_000 }),
      {
        reason: "INVALID_OPTION",
        message: "jwks.staleMaxAgeMs: must be at least cacheMaxAgeMs (60000); got 1000",
      },
    );
    assert.throws(() => createRemoteKeySet(new URL("http://127.0.0.1/"), { failFastMs: -1 }), {
      reason: "INVALID_OPTION",
    });
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
