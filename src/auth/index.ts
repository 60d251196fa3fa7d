// Authentication (bearer JWT at the edge) and authorization (per-resource grants) for every transport.
export { type AuthEdge, TOKEN_COOKIE, TOKEN_QUERY_PARAMETER, tokenOf } from "./auth-edge.js";
export { AUTHORIZATION_INTERCEPTOR, authorizationInterceptor, authorizeHub } from "./authorization.js";
export { type Auth, AuthMode, type AuthSettings, createAuth, isLoopbackHost } from "./create-auth.js";
export { allows, allowsAny, GRANTS_CLAIM, type Grants, grantsFromClaim, noGrants, Permission } from "./permissions.js";
export {
  currentPrincipal,
  type Principal,
  type PrincipalContext,
  principalContext,
  runAsPrincipal,
} from "./principal-context.js";
export { AuthTransport, isTokenPrincipal, type TokenPrincipal } from "./token-principal.js";
export {
  AUTH_CLOCK_TOLERANCE_SECONDS,
  createJwtVerifier,
  createTokenVerifier,
  JWKS_ALGORITHMS,
  MIN_SECRET_BYTES,
  type TokenVerifier,
} from "./token-verifier.js";
