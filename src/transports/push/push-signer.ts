// Signs push OIDC tokens (RS256 JWTs) with an in-memory RSA key and publishes the public key as a JWKS.
import { randomUUID } from "node:crypto";
import { exportJWK, generateKeyPair, type JWK, type KeyLike, SignJWT } from "jose";

/** Lifetime of a push token, as in Pub/Sub (1 hour). */
export const PUSH_TOKEN_TTL_SECONDS = 3600;

/** What the push worker needs to authenticate a push request. */
export interface PushSigner {
  /** Key id of the current signing key (the JWT `kid` header). */
  readonly kid: string;
  /**
   * A signed JWT: iss = the server's issuer, aud = `audience`, sub = email = `serviceAccountEmail`,
   * iat now, exp now + 1 h.
   */
  sign(claims: { serviceAccountEmail: string; audience: string }): Promise<string>;
  /** The public keys, as served at GET /.well-known/jwks.json (waits for the key on first use). */
  jwks(): Promise<{ keys: JWK[] }>;
}

/**
 * Uses a fresh RSA-2048 key pair (in memory only), generated lazily on first use so that server
 * startup does not wait ~200 ms for it. After a restart the key is new: tokens signed before it no
 * longer verify against the JWKS, and receivers that cache the JWKS fetch it again when they meet
 * the unknown `kid` (jose's createRemoteJWKSet does this).
 */
export function createPushSigner(options: { issuer: string }): PushSigner {
  const kid = randomUUID();
  let keys: Promise<{ privateKey: KeyLike; publicJwk: JWK }> | null = null;
  const load = () => {
    keys ??= generateKeyPair("RS256", { modulusLength: 2048 }).then(async ({ privateKey, publicKey }) => ({
      privateKey,
      publicJwk: { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" },
    }));
    return keys;
  };
  return {
    kid,
    async sign({ serviceAccountEmail, audience }) {
      const { privateKey } = await load();
      return new SignJWT({ email: serviceAccountEmail, email_verified: true })
        .setProtectedHeader({ alg: "RS256", kid, typ: "JWT" })
        .setIssuer(options.issuer)
        .setAudience(audience)
        .setSubject(serviceAccountEmail)
        .setIssuedAt()
        .setExpirationTime(`${PUSH_TOKEN_TTL_SECONDS}s`)
        .sign(privateKey);
    },
    async jwks() {
      const { publicJwk } = await load();
      return { keys: [{ ...publicJwk }] };
    },
  };
}
