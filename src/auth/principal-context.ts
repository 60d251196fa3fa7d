// Who is making the current request: set once per request at the edge, read by authorization and limits.
import { AsyncLocalStorage } from "node:async_hooks";

/** The caller of a request, as the edge authenticated it. */
export interface Principal {
  /**
   * Stable key for limits and logs: the token's `sub` (prefixed with its issuer when several are
   * trusted), or `anonymous@<ip>` when auth is off.
   */
  readonly id: string;
  /** False when auth is off (every action allowed); true for a verified token. */
  readonly authenticated: boolean;
  /** The client's address (socket remote address, not X-Forwarded-For unless trusted). */
  readonly remoteAddress: string;
}

const current = new AsyncLocalStorage<Principal>();

/** Runs `work` with `principal` as the current principal (for everything `work` starts, sync or async). */
export function runAsPrincipal<T>(principal: Principal, work: () => T): T {
  return current.run(principal, work);
}

/** Runs `work` as the principal it was made for; see {@link principalRunner}. */
export type PrincipalRunner = (work: () => void) => void;

/**
 * A function that runs work as `principal`, for a principal that serves many requests (a connection's anonymous
 * one). runAsPrincipal makes two new async-context frames per call (entering and restoring); the runner enters one
 * frame made here, once: it holds `principal` and the async context current now (a connection's, when made on the
 * connection's first request).
 */
export function principalRunner(principal: Principal): PrincipalRunner {
  return current.run(principal, () => AsyncLocalStorage.snapshot());
}

/** The principal of the request being handled, or undefined outside a request (internal work). */
export function currentPrincipal(): Principal | undefined {
  return current.getStore();
}

/**
 * What the engine chain's interceptors read of the request: its principal, read from the async context each time
 * the field is read (so a call that does not ask costs nothing).
 */
export interface PrincipalContext {
  readonly principal: Principal | undefined;
}

/** The {@link PrincipalContext} of the current request. */
export const principalContext: PrincipalContext = {
  get principal() {
    return current.getStore();
  },
};
