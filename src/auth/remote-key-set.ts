// Fetches and caches the JWKS at --auth-jwks-url, with one deadline over the whole fetch (headers and body).
import {
  createLocalJWKSet,
  errors,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWSHeaderParameters,
  type KeyLike,
} from "jose";
import { Code, StreamgateError } from "../errors/index.js";

/** Where a key set reports that fetching starts failing and that it works again: transitions only, never per request. */
export interface RemoteKeySetLogger {
  warn(message: string): void;
  info(message: string): void;
}

/**
 * How the key set is fetched and kept. jose's `createRemoteJWKSet` is not used: its timeout is a socket idle
 * timeout that stops applying once the response headers arrive, so a JWKS server that sends headers and then
 * stalls (or trickles its body) left every request waiting on the shared fetch until that server hung up.
 */
export interface RemoteKeySetOptions {
  /** Deadline for one fetch: connect, headers and body. Default 5,000 ms (jose's default), so a JWKS outage answers every waiting request within it. */
  fetchTimeoutMs: number;
  /** Largest accepted key set. Default 1 MiB: real key sets are a few KiB; a bigger body is not one. */
  maxBytes: number;
  /**
   * How long a fetched key set is used before it is fetched again. Default 10 min (jose's default). The refetch
   * runs in the background: tokens whose `kid` the set has keep verifying meanwhile, and never wait on the JWKS.
   */
  cacheMaxAgeMs: number;
  /** Shortest time between refetches caused by a token with an unknown `kid`. Default 30 s: made-up kids cannot hammer the identity provider. */
  cooldownMs: number;
  /**
   * After a failed fetch, how long requests that need keys the cached set lacks are refused at once with
   * AUTH_KEYS_UNAVAILABLE; the first one after it fetches again and waits for that fetch, while the others are
   * still refused at once until it succeeds (joining it would make them wait up to `fetchTimeoutMs` again when
   * the JWKS server stalls). Default 5,000 ms, the fetch deadline: during an outage each server waits on the
   * JWKS with at most one request and fetches at most once per 5 s (gentle on an identity provider that is
   * coming back), and keys are back within 5 s of its recovery, less than a client's backoff after a 503.
   */
  failFastMs: number;
  /**
   * Longest a key set is used, counted from the fetch that got it, while refetches fail; past it the set is
   * dropped and JWKS tokens get AUTH_KEYS_UNAVAILABLE until a fetch succeeds. Default 24 h: it rides out an
   * identity provider outage of hours (signing keys rotate over weeks, and an issuer that is down issues no
   * tokens with new keys), but bounds how long a key removed from the JWKS while we cannot see it (a leaked
   * key, or someone blocking our fetches) still verifies. At least `cacheMaxAgeMs`.
   */
  staleMaxAgeMs: number;
  /** Where the start (warn) and end (info) of a JWKS outage are logged, once each. Default null: not logged. */
  logger: RemoteKeySetLogger | null;
  /** The clock, ms since the epoch. Default `Date.now`. */
  now: () => number;
}

export const DEFAULT_REMOTE_KEY_SET_OPTIONS: RemoteKeySetOptions = {
  fetchTimeoutMs: 5_000,
  maxBytes: 1024 * 1024,
  cacheMaxAgeMs: 10 * 60_000,
  cooldownMs: 30_000,
  failFastMs: 5_000,
  staleMaxAgeMs: 24 * 60 * 60_000,
  logger: null,
  now: Date.now,
};

/**
 * Fills defaults and rejects contradictions.
 * @throws StreamgateError INVALID_ARGUMENT (INVALID_OPTION) for a negative or non-finite duration or size, a zero
 * fetch deadline or size, or `staleMaxAgeMs` below `cacheMaxAgeMs`.
 */
export function resolveRemoteKeySetOptions(overrides: Partial<RemoteKeySetOptions> = {}): RemoteKeySetOptions {
  const options = { ...DEFAULT_REMOTE_KEY_SET_OPTIONS, ...overrides };
  const invalid = (option: string, message: string) =>
    new StreamgateError(Code.INVALID_ARGUMENT, `jwks.${option}: ${message}`, { reason: "INVALID_OPTION" });
  for (const option of [
    "fetchTimeoutMs",
    "maxBytes",
    "cacheMaxAgeMs",
    "cooldownMs",
    "failFastMs",
    "staleMaxAgeMs",
  ] as const) {
    const value = options[option];
    if (!Number.isFinite(value) || value < 0) throw invalid(option, `must be a finite number >= 0 (got ${value})`);
  }
  if (options.fetchTimeoutMs === 0) throw invalid("fetchTimeoutMs", "must be above 0");
  if (options.maxBytes === 0) throw invalid("maxBytes", "must be above 0");
  if (options.staleMaxAgeMs < options.cacheMaxAgeMs) {
    throw invalid(
      "staleMaxAgeMs",
      `must be at least cacheMaxAgeMs (${options.cacheMaxAgeMs}); got ${options.staleMaxAgeMs}`,
    );
  }
  return options;
}

/** UNAVAILABLE: the JWKS could not be fetched. The server's problem, not the token's: the client should retry, not get a new token. */
export function keysUnavailable(cause: unknown): StreamgateError {
  return new StreamgateError(Code.UNAVAILABLE, "the keys that verify tokens (JWKS) cannot be fetched; retry", {
    reason: "AUTH_KEYS_UNAVAILABLE",
    details: { scheme: "Bearer" },
    cause,
  });
}

async function fetchKeySet(url: URL, options: RemoteKeySetOptions): Promise<JSONWebKeySet> {
  const signal = AbortSignal.timeout(options.fetchTimeoutMs);
  try {
    const response = await fetch(url, { signal, redirect: "manual", headers: { accept: "application/json" } });
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new Error(`GET ${url.href} answered HTTP ${response.status}, expected 200`);
    }
    const declared = Number(response.headers.get("content-length") ?? 0);
    if (declared > options.maxBytes) {
      await response.body?.cancel();
      throw new Error(`GET ${url.href}: the key set is larger than ${options.maxBytes} bytes`);
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    const reader = response.body?.getReader();
    for (let read = await reader?.read(); read !== undefined && !read.done; read = await reader?.read()) {
      size += read.value.byteLength;
      if (size > options.maxBytes) {
        await reader?.cancel();
        throw new Error(`GET ${url.href}: the key set is larger than ${options.maxBytes} bytes`);
      }
      chunks.push(read.value);
    }
    return JSON.parse(Buffer.concat(chunks).toString("utf8")) as JSONWebKeySet;
  } catch (error) {
    if (signal.aborted)
      throw new Error(`GET ${url.href} did not complete within ${options.fetchTimeoutMs} ms`, { cause: error });
    throw error;
  }
}

/** An error and its causes in one line, for the log (it never holds a token: the fetch sees none). */
function describeError(error: unknown): string {
  const parts: string[] = [];
  for (let current = error; current !== undefined && current !== null && parts.length < 3; ) {
    parts.push(current instanceof Error ? current.message : String(current));
    current = current instanceof Error ? current.cause : undefined;
  }
  const line = parts.join(": ");
  return line.length > 500 ? `${line.slice(0, 500)}…` : line;
}

/** A key function for jose's `jwtVerify`. */
export type RemoteKeySet = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<KeyLike>;

type LocalKeySet = ReturnType<typeof createLocalJWKSet>;

/** Fetches failing since the last success. */
interface Outage {
  sinceMs: number;
  lastFailedAtMs: number;
  failedFetches: number;
  lastError: unknown;
}

/**
 * A key function for jose's `jwtVerify` over the JWKS at `url`: fetched on first use, refetched in the background
 * after `cacheMaxAgeMs`, and (at most every `cooldownMs`) for a token whose `kid` it lacks. Concurrent callers
 * share one fetch. While fetches fail, the last fetched set stays in use (up to `staleMaxAgeMs`) and requests
 * that need a fetch are refused at once (see `failFastMs`).
 * @throws StreamgateError UNAVAILABLE (AUTH_KEYS_UNAVAILABLE) when the key set cannot be fetched or is not
 * one; jose's JWKSNoMatchingKey when no key matches the token.
 */
export function createRemoteKeySet(url: URL, overrides: Partial<RemoteKeySetOptions> = {}): RemoteKeySet {
  const options = resolveRemoteKeySetOptions(overrides);
  const { now, logger } = options;
  let local: LocalKeySet | undefined;
  let fetchedAtMs = Number.NEGATIVE_INFINITY;
  let pending: Promise<LocalKeySet> | undefined;
  let outage: Outage | undefined;

  const fetchNow = (): Promise<LocalKeySet> => {
    pending = fetchKeySet(url, options)
      // Throws JWKSInvalid for a body that is JSON but not a key set.
      .then((json) => createLocalJWKSet(json))
      .then(
        (fetched) => {
          local = fetched;
          fetchedAtMs = now();
          if (outage !== undefined) {
            logger?.info(
              `JWKS ${url.href}: keys fetched again after ${outage.failedFetches} failed fetch(es) over ${Math.round((fetchedAtMs - outage.sinceMs) / 1000)} s`,
            );
            outage = undefined;
          }
          return fetched;
        },
        (error: unknown) => {
          const failedAtMs = now();
          if (outage === undefined) {
            outage = { sinceMs: failedAtMs, lastFailedAtMs: failedAtMs, failedFetches: 1, lastError: error };
            logger?.warn(
              `JWKS ${url.href}: fetching the keys fails (${describeError(error)}); tokens that need a fetch get AUTH_KEYS_UNAVAILABLE (the last fetched key set, if any, stays in use); retried at most every ${options.failFastMs} ms`,
            );
          } else {
            outage.lastFailedAtMs = failedAtMs;
            outage.failedFetches++;
            outage.lastError = error;
          }
          throw keysUnavailable(error);
        },
      )
      .finally(() => {
        pending = undefined;
      });
    return pending;
  };

  /** Inside the fail-fast window, or a retry after a failure is under way. */
  const refusingAtOnce = (): boolean =>
    outage !== undefined && (pending !== undefined || now() < outage.lastFailedAtMs + options.failFastMs);

  /** The set for a request that cannot go on without a fetch. */
  const fetchForRequest = (): Promise<LocalKeySet> => {
    if (refusingAtOnce()) return Promise.reject(keysUnavailable(outage?.lastError));
    return pending ?? fetchNow();
  };

  return async (header, token) => {
    if (local !== undefined && now() >= fetchedAtMs + options.staleMaxAgeMs) {
      local = undefined;
      logger?.warn(
        `JWKS ${url.href}: the last fetched key set is older than ${options.staleMaxAgeMs} ms and no longer used; every JWKS token gets AUTH_KEYS_UNAVAILABLE until a fetch succeeds`,
      );
    }
    let keys = local;
    if (keys === undefined) keys = await fetchForRequest();
    else if (now() >= fetchedAtMs + options.cacheMaxAgeMs && pending === undefined && !refusingAtOnce()) {
      // A failure is recorded (and logged) by fetchNow; this request goes on with the set it has.
      fetchNow().catch(() => {});
    }
    try {
      return await keys(header, token);
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey) || now() < fetchedAtMs + options.cooldownMs) throw error;
      return (await fetchForRequest())(header, token);
    }
  };
}
