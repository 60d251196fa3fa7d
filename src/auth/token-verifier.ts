// Verifies bearer JWTs (HS256 shared secret and/or a JWKS URL) with jose and turns failures into clear reasons.
import { createRemoteJWKSet, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from "jose";
import { Code, StreamgateError } from "../errors/index.js";
import { GRANTS_CLAIM, type Grants, grantsFromClaim } from "./permissions.js";

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
}

/** What a verified token says about its bearer. */
export interface VerifiedToken {
  /** `sub`, or `unknown-subject` when the token has none. */
  subject: string;
  grants: Grants;
  /** `exp` in ms since the epoch. */
  expiresAtMs: number;
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
      // A network failure fetching the JWKS (connection refused, DNS) is a plain Error, not one of jose's.
      const fromJose = typeof code === "string" && code.startsWith("ERR_J");
      if (!fromJose && options.jwksUrl !== null) return keysUnavailable(error);
      return unauthenticated("TOKEN_MALFORMED", "token could not be read as a JWT");
    }
  }
}

function keysUnavailable(cause: unknown): StreamgateError {
  return new StreamgateError(Code.UNAVAILABLE, "the keys that verify tokens (JWKS) cannot be fetched; retry", {
    reason: "AUTH_KEYS_UNAVAILABLE",
    details: { scheme: "Bearer" },
    cause,
  });
}

/** Creates a verifier; `createRemoteJWKSet` caches the key set and refetches on an unknown `kid` (30 s cooldown). */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const secret = options.secret === null ? null : new TextEncoder().encode(options.secret);
  const jwks =
    options.jwksUrl === null
      ? null
      : createRemoteJWKSet(new URL(options.jwksUrl), {
          timeoutDuration: 5_000,
          cooldownDuration: 30_000,
          cacheMaxAge: 10 * 60_000,
        });
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
        }));
      } catch (error) {
        throw toAuthError(error, options);
      }
      return {
        subject: typeof payload.sub === "string" && payload.sub !== "" ? payload.sub : "unknown-subject",
        grants: grantsFromClaim(payload[GRANTS_CLAIM]),
        expiresAtMs: (payload.exp ?? 0) * 1000,
      };
    },
  };
}
