// Decides whether auth is on (startup policy: loopback, --insecure, configured keys) and builds its parts.
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import type { Engine } from "../engines/engine.js";
import type { EngineInterceptor } from "../engines/engine-chain.js";
import { Code, StreamgateError } from "../errors/index.js";
import type { StreamHub } from "../streams/index.js";
import { type AuthEdge, createAuthEdge } from "./auth-edge.js";
import { AUTHORIZATION_INTERCEPTOR, authorizationInterceptor, authorizeHub } from "./authorization.js";
import type { PrincipalContext } from "./principal-context.js";
import type { AuthTransport } from "./token-principal.js";
import { createTokenVerifier, MIN_SECRET_BYTES } from "./token-verifier.js";

/** The server options auth reads (a subset of ServerOptions). */
export interface AuthSettings {
  host: string;
  authSecret: string | null;
  authSecretFile: string | null;
  authJwksUrl: string | null;
  authIssuer: string | null;
  authAudience: string | null;
  insecure: boolean;
  metricsPublic: boolean;
}

/** How the server authenticates, as decided at startup. */
export const AuthMode = {
  /** Bearer tokens required (a secret or a JWKS URL is configured). */
  token: "token",
  /** No auth: the server binds a loopback address only. */
  loopback: "loopback",
  /** No auth on a reachable address, because --insecure was given. */
  insecure: "insecure",
} as const;
export type AuthMode = (typeof AuthMode)[keyof typeof AuthMode];

export interface Auth {
  readonly mode: AuthMode;
  readonly edge: AuthEdge;
  /**
   * The authorization link of the engine chain: checks grants when auth is on; intercepts nothing (every call
   * passes straight through) when it is off.
   */
  readonly interceptor: EngineInterceptor<PrincipalContext>;
  /** The hub the transports get, likewise; `policies` (the engine) adds IAM policy bindings to the checks. */
  hub(hub: StreamHub, policies?: Pick<Engine, "storedIamPolicy">): StreamHub;
}

export interface AuthHooks {
  warn(message: string): void;
  /** Info lines (a JWKS outage ending); not logged when absent. */
  info?(message: string): void;
  /** Refused requests (edge) and denied calls (resources), for `streamgate_auth_failures_total`. */
  onFailure(transport: AuthTransport | "unknown", reason: string, clientAddress?: string): void;
}

/** True for 127.0.0.0/8, ::1, ::ffff:127.x and `localhost`: addresses no other machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (bare.toLowerCase() === "localhost") return true;
  if (isIP(bare) === 4) return bare.startsWith("127.");
  if (isIP(bare) === 6) return bare === "::1" || /^::ffff:127\./i.test(bare);
  return false;
}

function readSecret(settings: AuthSettings): string | null {
  if (settings.authSecretFile === null) return settings.authSecret;
  try {
    return readFileSync(settings.authSecretFile, "utf8").trim();
  } catch (error) {
    throw new StreamgateError(
      Code.INVALID_ARGUMENT,
      `authSecretFile: cannot read ${settings.authSecretFile}: ${(error as NodeJS.ErrnoException).code ?? "error"}`,
      { reason: "INVALID_OPTION", cause: error },
    );
  }
}

/**
 * Applies the startup policy and builds the edge and the authorizing wrappers.
 * @throws StreamgateError FAILED_PRECONDITION (AUTH_NOT_CONFIGURED) for a non-loopback host with neither keys
 * nor `insecure`; INVALID_ARGUMENT (INVALID_OPTION) for an unreadable or too short secret.
 */
export function createAuth(settings: AuthSettings, hooks: AuthHooks): Auth {
  const secret = readSecret(settings);
  if (secret !== null && Buffer.byteLength(secret) < MIN_SECRET_BYTES) {
    throw new StreamgateError(
      Code.INVALID_ARGUMENT,
      `authSecret: the HS256 secret must be at least ${MIN_SECRET_BYTES} bytes (it is ${Buffer.byteLength(secret)})`,
      { reason: "INVALID_OPTION" },
    );
  }
  const configured = secret !== null || settings.authJwksUrl !== null;
  let mode: AuthMode = AuthMode.token;
  if (!configured) {
    if (isLoopbackHost(settings.host)) {
      mode = AuthMode.loopback;
      hooks.warn(
        `AUTH IS OFF: no --auth-secret or --auth-jwks-url, so every request is allowed; acceptable only because the server binds the loopback address ${settings.host}`,
      );
    } else if (settings.insecure) {
      mode = AuthMode.insecure;
      hooks.warn(
        `AUTH IS OFF ON A REACHABLE ADDRESS (${settings.host}) because --insecure was given: anyone who can connect may publish, read and delete everything`,
      );
    } else {
      throw new StreamgateError(
        Code.FAILED_PRECONDITION,
        `refusing to serve ${settings.host} without authentication: set --auth-secret / --auth-secret-file (STREAMGATE_AUTH_SECRET) or --auth-jwks-url, bind a loopback address (--host 127.0.0.1), or pass --insecure (STREAMGATE_INSECURE=1) to run open`,
        { reason: "AUTH_NOT_CONFIGURED" },
      );
    }
  }
  const verifier =
    mode === AuthMode.token
      ? createTokenVerifier({
          secret,
          jwksUrl: settings.authJwksUrl,
          issuer: settings.authIssuer,
          audiences: (settings.authAudience ?? "")
            .split(",")
            .map((audience) => audience.trim())
            .filter((audience) => audience !== ""),
          // One warn line when the JWKS starts failing, one info line when it is back.
          jwks: { logger: { warn: (message) => hooks.warn(message), info: (message) => hooks.info?.(message) } },
        })
      : null;
  const edge = createAuthEdge({ verifier, metricsPublic: settings.metricsPublic, onFailure: hooks.onFailure });
  const denied = (transport: string) => hooks.onFailure(transport as AuthTransport, "PERMISSION_DENIED");
  return {
    mode,
    edge,
    interceptor:
      verifier === null ? { name: AUTHORIZATION_INTERCEPTOR, intercept: () => ({}) } : authorizationInterceptor(denied),
    hub: (hub, policies) => (verifier === null ? hub : authorizeHub(hub, denied, policies ?? null)),
  };
}
