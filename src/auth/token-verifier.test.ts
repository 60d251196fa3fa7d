// The verified-token cache: reuse without calling jose again, never past exp or before nbf, bounded, failures not kept.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { SignJWT } from "jose";
import { StreamgateError } from "../errors/index.js";
import {
  AUTH_CLOCK_TOLERANCE_SECONDS,
  cacheVerifiedTokens,
  createJwtVerifier,
  type TokenVerifier,
  type TokenVerifierOptions,
} from "./token-verifier.js";

const SECRET = "token-verifier-test-secret-0123456789abcdef";
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

/** A clock the test moves; jose checks claims against it too (currentDate). */
function testClock() {
  let nowMs = T0;
  return { now: () => nowMs, set: (ms: number) => (nowMs = ms), advance: (ms: number) => (nowMs += ms) };
}

function sign(claims: { exp?: number; nbf?: number; sub?: string }, secret = SECRET): Promise<string> {
  const jwt = new SignJWT({ streamgate: { publish: ["orders"] } })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(claims.sub ?? "alice");
  if (claims.exp !== undefined) jwt.setExpirationTime(claims.exp);
  if (claims.nbf !== undefined) jwt.setNotBefore(claims.nbf);
  return jwt.sign(new TextEncoder().encode(secret));
}
const seconds = (ms: number) => Math.floor(ms / 1000);

/** The real jose verifier, counting its calls; and the cache in front of it on the same clock. */
function setup(cache: { maxEntries?: number; maxAgeMs?: number } = {}) {
  const clock = testClock();
  const options: TokenVerifierOptions = { secret: SECRET, jwksUrl: null, issuer: null, audiences: [], now: clock.now };
  const jose = createJwtVerifier(options);
  let joseCalls = 0;
  const counting: TokenVerifier = {
    verify(token) {
      joseCalls++;
      return jose.verify(token);
    },
  };
  const cached = cacheVerifiedTokens(counting, { ...cache, now: clock.now });
  return { clock, jose, cached, calls: () => joseCalls };
}

async function outcome(verifier: TokenVerifier, token: string): Promise<string> {
  try {
    const verified = await verifier.verify(token);
    return `ok ${verified.subject}`;
  } catch (error) {
    assert.ok(error instanceof StreamgateError);
    return `${error.reason}: ${error.message}`;
  }
}

describe("auth - verified-token cache", () => {
  test("auth - token cache: a second verification of the same token does not call jose again", async () => {
    const { cached, calls } = setup();
    const token = await sign({ exp: seconds(T0) + 600 });
    const first = await cached.verify(token);
    const second = await cached.verify(token);
    assert.equal(calls(), 1);
    assert.deepEqual(second, first);
    assert.equal(first.subject, "alice");
    assert.equal(cached.cachedTokens, 1);
  });

  test("auth - token cache: concurrent verifications of one token share one jose call", async () => {
    const { cached, calls } = setup();
    const token = await sign({ exp: seconds(T0) + 600 });
    await Promise.all(Array.from({ length: 20 }, () => cached.verify(token)));
    assert.equal(calls(), 1);
  });

  test("auth - token cache: an entry is reused for at most maxAgeMs, then verified again", async () => {
    const { cached, calls, clock } = setup({ maxAgeMs: 60_000 });
    const token = await sign({ exp: seconds(T0) + 3600 });
    await cached.verify(token);
    clock.advance(59_999);
    await cached.verify(token);
    assert.equal(calls(), 1);
    clock.advance(1);
    await cached.verify(token);
    assert.equal(calls(), 2);
  });

  test("auth - token cache: an expired cached token is refused with the same reason and message as a fresh one", async () => {
    const { cached, jose, calls, clock } = setup({ maxAgeMs: 60_000 });
    const exp = seconds(T0) + 20;
    const token = await sign({ exp });
    assert.equal(await outcome(cached, token), "ok alice");
    assert.equal(calls(), 1);
    // Past exp but inside the clock tolerance: a fresh verification still accepts; the cache does not answer
    // for it (each call goes to jose) and does not keep the result.
    clock.set(exp * 1000);
    assert.equal(await outcome(cached, token), "ok alice");
    assert.equal(await outcome(cached, token), "ok alice");
    assert.equal(calls(), 3);
    assert.equal(cached.cachedTokens, 0);
    // Past exp + tolerance: refused exactly as a fresh verification refuses it.
    clock.set((exp + AUTH_CLOCK_TOLERANCE_SECONDS) * 1000);
    const fresh = await outcome(jose, token);
    assert.match(fresh, /^TOKEN_EXPIRED: /);
    assert.equal(await outcome(cached, token), fresh);
  });

  test("auth - token cache: the cache never answers past exp, even with a long max age", async () => {
    const { cached, calls, clock } = setup({ maxAgeMs: 3_600_000 });
    const exp = seconds(T0) + 10;
    const token = await sign({ exp });
    await cached.verify(token);
    clock.set(exp * 1000 - 1);
    await cached.verify(token);
    assert.equal(calls(), 1);
    clock.set(exp * 1000);
    await cached.verify(token);
    assert.equal(calls(), 2);
  });

  test("auth - token cache: a token whose nbf is in the future is never cached as valid", async () => {
    const { cached, calls, clock } = setup();
    // 5 minutes ahead: refused, and refused again (failures are not cached).
    const later = await sign({ exp: seconds(T0) + 3600, nbf: seconds(T0) + 300 });
    assert.match(await outcome(cached, later), /^TOKEN_NOT_YET_VALID: token is not valid yet/);
    assert.match(await outcome(cached, later), /^TOKEN_NOT_YET_VALID: /);
    assert.equal(calls(), 2);
    // 20 s ahead: accepted inside the clock tolerance, but not cached until nbf has passed.
    const soon = await sign({ exp: seconds(T0) + 3600, nbf: seconds(T0) + 20, sub: "bob" });
    assert.equal(await outcome(cached, soon), "ok bob");
    assert.equal(await outcome(cached, soon), "ok bob");
    assert.equal(calls(), 4);
    assert.equal(cached.cachedTokens, 0);
    clock.set((seconds(T0) + 20) * 1000);
    await cached.verify(soon);
    await cached.verify(soon);
    assert.equal(calls(), 5);
    assert.equal(cached.cachedTokens, 1);
    // The 5-minute token once its time has come: verified, then cached.
    clock.set((seconds(T0) + 300) * 1000);
    assert.equal(await outcome(cached, later), "ok alice");
    assert.equal(await outcome(cached, later), "ok alice");
    assert.equal(calls(), 6);
  });

  test("auth - token cache: failures are not cached", async () => {
    const { cached, calls } = setup();
    const forged = await sign({ exp: seconds(T0) + 600 }, `${SECRET}-other`);
    for (let i = 0; i < 3; i++) assert.match(await outcome(cached, forged), /^TOKEN_BAD_SIGNATURE: /);
    assert.match(await outcome(cached, "not-a-jwt"), /^TOKEN_MALFORMED: /);
    assert.match(await outcome(cached, "not-a-jwt"), /^TOKEN_MALFORMED: /);
    assert.equal(calls(), 5);
    assert.equal(cached.cachedTokens, 0);
  });

  test("auth - token cache: bounded; the oldest entry is evicted first", async () => {
    const { cached, calls } = setup({ maxEntries: 3 });
    const tokens = await Promise.all(
      ["a", "b", "c", "d"].map((sub) => sign({ exp: seconds(T0) + 600, sub: `client-${sub}` })),
    );
    for (const token of tokens) await cached.verify(token);
    assert.equal(cached.cachedTokens, 3);
    assert.equal(calls(), 4);
    await cached.verify(tokens[3]!);
    await cached.verify(tokens[1]!);
    assert.equal(calls(), 4, "the three newest are still cached");
    await cached.verify(tokens[0]!);
    assert.equal(calls(), 5, "the oldest was evicted");
    assert.equal(cached.cachedTokens, 3);
  });

  test("auth - token cache: maxEntries 0 turns it off", async () => {
    const { cached, calls } = setup({ maxEntries: 0 });
    const token = await sign({ exp: seconds(T0) + 600 });
    await cached.verify(token);
    await cached.verify(token);
    assert.equal(calls(), 2);
  });
});
