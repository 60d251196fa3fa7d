// The principal of a request that presented a verified token: its grants and the transport it came on.
import type { Grants } from "./permissions.js";
import type { Principal } from "./principal-context.js";

/** Transports as labelled in `streamgate_auth_failures_total{transport}`. */
export const AuthTransport = {
  grpc: "grpc",
  grpcWeb: "grpc-web",
  connect: "connect",
  rest: "rest",
  sse: "sse",
  websocket: "websocket",
  http: "http",
} as const;
export type AuthTransport = (typeof AuthTransport)[keyof typeof AuthTransport];

/** A principal authenticated by a bearer token. */
export interface TokenPrincipal extends Principal {
  readonly authenticated: true;
  readonly grants: Grants;
  /** How the request arrived; labels denials in the metrics. */
  readonly transport: AuthTransport;
  /** `exp` of the token, ms since the epoch. */
  readonly expiresAtMs: number;
}

/** Whether `principal` carries verified grants. */
export function isTokenPrincipal(principal: Principal): principal is TokenPrincipal {
  return principal.authenticated && "grants" in principal;
}
