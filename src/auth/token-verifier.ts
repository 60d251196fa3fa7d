// Verifies bearer JWTs (HS256 shared secret and/or a JWKS URL) with jose, turns failures into clear reasons, and
// caches verified tokens for a short while so a client reusing one token does not pay a verification per call.
import { createHash } from "node:crypto";
import { type JWTPayload, type JWTVerifyGetKey, jwtVerify } from "jose";
import { Code, StreamgateError } from "../errors/index.js";
import { GRANTS_CLAIM, type Grants, grantsFromClaim } from "./permissions.js";
import { createRemoteKeySet, keysUnavailable, type RemoteKeySetOptions } from "./remote-key-set.js";

/** Seconds of clock skew accepted on `exp` and `nbf`: tokens from a slightly fast or slow issuer still work. */
export const AUTH_CLOCK_TOLERANCE_SECONDS = 30;

/** Algorithms accepted from the JWKS (asymmetric only: a JWKS never carries a shared secret). */
export const JWKS_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"] as const;

/** Shortest accepted HS256 secret, in bytes (RFC 7518: a key at least as long as the hash). */
export const MIN_SECRET_BYTES = 32;

export interface TokenVerifierOptions {
  /** HS256 shared secret; null = HS256 tokens are refused. */
  secret: string | null;
  /** JWKS URL for RS/PS/ES/EdDSA tokens; null = asymmetric tokens are refused. */
  jwksUrl: string | null;
  /** Required `iss`; null = not checked. */
  issuer: string | null;
  /** Accepted `aud` values (one must be in the token); empty = not checked. */
  audiences: readonly string[];
  /** The verified-token cache; defaults in {@link DEFAULT_TOKEN_CACHE_OPTIONS}. */
  cache?: Partial<TokenCacheOptions>;
  /** How the JWKS is fetched and kept; defaults in `DEFAULT_REMOTE_KEY_SET_OPTIONS`. */
  jwks?: Partial<RemoteKeySetOptions>;
  /** The clock, ms since the epoch, for the claims checks, the cache and the JWKS. Default `Date.now`. */
  now?: () => number;
}

/**
 * Bounds of the verified-token cache. Only successes are cached, and only while a fresh verification would
 * accept the token too: until `exp` itself (the clock tolerance is not stretched over cached entries; in the
 * tolerance window every call is verified again), never before `nbf` has passed, and at most `maxAgeMs`.
 */
export interface TokenCacheOptions {
  /** Verified tokens kept; the oldest is evicted first. Default 10,000 (a few MB at most). 0 turns the cache off. */
  maxEntries: number;
  /** How long one verification is reused. Default 60 s: a key removed from the JWKS stops working within it. */
  maxAgeMs: number;
}

export const DEFAULT_TOKEN_CACHE_OPTIONS: TokenCacheOptions = { maxEntries: 10_000, maxAgeMs: 60_000 };

/** What a verified token says about its bearer. */
export interface VerifiedToken {
  /** `sub`, or `unknown-subject` when the token has none. */
  subject: string;
  grants: Grants;
  /** `exp` in ms since the epoch. */
  expiresAtMs: number;
  /** `nbf` in ms since the epoch, or null when the token has none. */
  notBeforeMs: number | null;
}

export interface TokenVerifier {
  /**
   * Verifies signature, `iss`, `aud`, `exp` (required) and `nbf`.
   * @throws StreamgateError UNAUTHENTICATED with a TOKEN_* reason, or UNAVAILABLE (AUTH_KEYS_UNAVAILABLE)
   * when the JWKS cannot be fetched.
   */
  verify(token: string): Promise<VerifiedToken>;
}

function unauthenticated(reason: string, message: string): StreamgateError {
  // The detail makes REST bodies carry the reason (error.details[0].reason).
  return new StreamgateError(Code.UNAUTHENTICATED, message, { reason, details: { scheme: "Bearer" } });
}

/** Maps jose's errors to stable reasons and messages that name the problem but never echo key material. */
function toAuthError(error: unknown, options: TokenVerifierOptions): StreamgateError {
  if (error instanceof StreamgateError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  switch (code) {
    case "ERR_JWT_EXPIRED":
      return unauthenticated("TOKEN_EXPIRED", "token has expired (exp is in the past); get a new token");
    case "ERR_JWT_CLAIM_VALIDATION_FAILED": {
      const claim = (error as { claim?: string }).claim;
      if (claim === "iss") {
        return unauthenticated("TOKEN_WRONG_ISSUER", `token issuer (iss) is not the expected "${options.issuer}"`);
      }
      if (claim === "aud") {
        return unauthenticated(
          "TOKEN_WRONG_AUDIENCE",
          `token audience (aud) does not include ${options.audiences.map((audience) => `"${audience}"`).join(" or ")}`,
        );
      }
      if (claim === "nbf")
        return unauthenticated("TOKEN_NOT_YET_VALID", "token is not valid yet (nbf is in the future)");
      if (claim === "exp") {
        return unauthenticated("TOKEN_CLAIMS_INVALID", "token has no valid exp claim; tokens must expire");
      }
      return unauthenticated("TOKEN_CLAIMS_INVALID", `token claim ${claim ?? "?"} is invalid`);
    }
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return unauthenticated("TOKEN_BAD_SIGNATURE", "token signature does not verify with the server's keys");
    case "ERR_JOSE_ALG_NOT_ALLOWED":
    case "ERR_JOSE_NOT_SUPPORTED":
      return unauthenticated(
        "TOKEN_ALGORITHM_REJECTED",
        "token is signed with an algorithm this server does not accept",
      );
    case "ERR_JWKS_NO_MATCHING_KEY":
    case "ERR_JWKS_MULTIPLE_MATCHING_KEYS":
      return unauthenticated(
        "TOKEN_UNKNOWN_KEY",
        "no key of the configured JWKS matches the token's kid and algorithm",
      );
    case "ERR_JWS_INVALID":
    case "ERR_JWT_INVALID":
      return unauthenticated("TOKEN_MALFORMED", "token is not a well-formed signed JWT (header.payload.signature)");
    case "ERR_JWKS_TIMEOUT":
    case "ERR_JWKS_INVALID":
    case "ERR_JOSE_GENERIC":
      return keysUnavailable(error);
    default: {
      // Fetch failures already arrive as AUTH_KEYS_UNAVAILABLE (remote-key-set.ts); another plain Error with a
      // JWKS configured comes from a key in the set that does not import: the server's keys, not the token.
      const fromJose = typeof code === "string" && code.startsWith("ERR_J");
      if (!fromJose && options.jwksUrl !== null) return keysUnavailable(error);
      return unauthenticated("TOKEN_MALFORMED", "token could not be read as a JWT");
    }
  }
}

/**
 * A verifier without a cache: every call runs jose's `jwtVerify` (signature and claims). The JWKS is fetched
 * by {@link createRemoteKeySet} (cached 10 min, refetched at most every 30 s for an unknown `kid`).
 */
export function createJwtVerifier(options: TokenVerifierOptions): TokenVerifier {
  const now = options.now ?? Date.now;
  const secret = options.secret === null ? null : new TextEncoder().encode(options.secret);
  const jwks = options.jwksUrl === null ? null : createRemoteKeySet(new URL(options.jwksUrl), { now, ...options.jwks });
  const keyFor: JWTVerifyGetKey = async (header, token) => {
    const algorithm = header.alg ?? "";
    if (algorithm === "HS256") {
      if (secret === null) {
        throw unauthenticated(
          "TOKEN_ALGORITHM_REJECTED",
          "HS256 tokens are not accepted: no shared secret is configured",
        );
      }
      return secret;
    }
    if (jwks === null || !(JWKS_ALGORITHMS as readonly string[]).includes(algorithm)) {
      throw unauthenticated(
        "TOKEN_ALGORITHM_REJECTED",
        `tokens signed with ${JSON.stringify(algorithm.slice(0, 20))} are not accepted (expected ${[
          ...(secret === null ? [] : ["HS256"]),
          ...(jwks === null ? [] : JWKS_ALGORITHMS),
        ].join(", ")})`,
      );
    }
    return jwks(header, token);
  };

  return {
    async verify(token) {
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, keyFor, {
          issuer: options.issuer ?? undefined,
          audience: options.audiences.length === 0 ? undefined : [...options.audiences],
          clockTolerance: AUTH_CLOCK_TOLERANCE_SECONDS,
          requiredClaims: ["exp"],
          currentDate: new Date(now()),
        }));
      } catch (error) {
        throw toAuthError(error, options);
      }
      return {
        subject: typeof payload.sub === "string" && payload.sub !== "" ? payload.sub : "unknown-subject",
        grants: grantsFromClaim(payload[GRANTS_CLAIM]),
        expiresAtMs: (payload.exp ?? 0) * 1000,
        notBeforeMs: typeof payload.nbf === "number" ? payload.nbf * 1000 : null,
      };
    },
  };
}

/** A verifier with a cache in front, and the number of tokens it holds (for tests and metrics). */
export interface CachingTokenVerifier extends TokenVerifier {
  readonly cachedTokens: number;
}

interface CacheEntry {
  verified: VerifiedToken;
  /** min(exp, verified + maxAgeMs): the entry is used while now < this. */
  usableUntilMs: number;
}

/**
 * Puts a bounded cache of verified tokens in front of `verifier`, keyed by the token's SHA-256 (the cache holds
 * no bearer token). Failures are not cached: each is verified again, so a refusal always carries the reason a
 * fresh verification gives. Concurrent verifications of one token share one call to `verifier`.
 */
export function cacheVerifiedTokens(
  verifier: TokenVerifier,
  overrides: Partial<TokenCacheOptions> & { now?: () => number } = {},
): CachingTokenVerifier {
  const { maxEntries, maxAgeMs } = { ...DEFAULT_TOKEN_CACHE_OPTIONS, ...overrides };
  const now = overrides.now ?? Date.now;
  const entries = new Map<string, CacheEntry>();
  const inFlight = new Map<string, Promise<VerifiedToken>>();

  const remember = (key: string, verified: VerifiedToken, verifiedAtMs: number): void => {
    // exp, not exp + tolerance: past exp, each call is verified again and gets what a fresh verification says.
    const usableUntilMs = Math.min(verified.expiresAtMs, verifiedAtMs + maxAgeMs);
    // A token accepted before its nbf (inside the clock tolerance) is not cached until nbf has passed.
    const notYetValid = verified.notBeforeMs !== null && verified.notBeforeMs > verifiedAtMs;
    if (maxEntries <= 0 || notYetValid || verifiedAtMs >= usableUntilMs) return;
    entries.delete(key);
    while (entries.size >= maxEntries) entries.delete(entries.keys().next().value as string);
    entries.set(key, { verified, usableUntilMs });
  };

  return {
    get cachedTokens() {
      return entries.size;
    },
    verify(token) {
      if (maxEntries <= 0) return verifier.verify(token);
      const key = createHash("sha256").update(token).digest("base64url");
      const entry = entries.get(key);
      if (entry !== undefined) {
        if (now() < entry.usableUntilMs) return Promise.resolve(entry.verified);
        entries.delete(key);
      }
      const pending = inFlight.get(key);
      if (pending !== undefined) return pending;
      const verifiedAtMs = now();
      const verification = verifier.verify(token).then(
        (verified) => {
          inFlight.delete(key);
          remember(key, verified, verifiedAtMs);
          return verified;
        },
        (error: unknown) => {
          inFlight.delete(key);
          throw error;
        },
      );
      inFlight.set(key, verification);
      return verification;
    },
  };
}

/** Creates the server's verifier: {@link createJwtVerifier} behind {@link cacheVerifiedTokens}. */
export function createTokenVerifier(options: TokenVerifierOptions): CachingTokenVerifier {
  return cacheVerifiedTokens(createJwtVerifier(options), { ...options.cache, now: options.now });
}
