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
  /** How long a fetched key set is used before it is fetched again. Default 10 min (jose's default). */
  cacheMaxAgeMs: number;
  /** Shortest time between refetches caused by a token with an unknown `kid`. Default 30 s: made-up kids cannot hammer the identity provider. */
  cooldownMs: number;
  /** The clock, ms since the epoch. Default `Date.now`. */
  now: () => number;
}

export const DEFAULT_REMOTE_KEY_SET_OPTIONS: RemoteKeySetOptions = {
  fetchTimeoutMs: 5_000,
  maxBytes: 1024 * 1024,
  cacheMaxAgeMs: 10 * 60_000,
  cooldownMs: 30_000,
  now: Date.now,
};

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

/** A key function for jose's `jwtVerify`. */
export type RemoteKeySet = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<KeyLike>;

/**
 * A key function for jose's `jwtVerify` over the JWKS at `url`: fetched on first use, refetched after
 * `cacheMaxAgeMs` or (at most every `cooldownMs`) for a token whose `kid` it lacks. Concurrent callers share
 * one fetch.
 * @throws StreamgateError UNAVAILABLE (AUTH_KEYS_UNAVAILABLE) when the key set cannot be fetched or is not
 * one; jose's JWKSNoMatchingKey when no key matches the token.
 */
export function createRemoteKeySet(url: URL, overrides: Partial<RemoteKeySetOptions> = {}): RemoteKeySet {
  const options = { ...DEFAULT_REMOTE_KEY_SET_OPTIONS, ...overrides };
  let local: ReturnType<typeof createLocalJWKSet> | undefined;
  let fetchedAtMs = Number.NEGATIVE_INFINITY;
  let pending: Promise<void> | undefined;

  const reload = (): Promise<void> => {
    pending ??= fetchKeySet(url, options)
      .then((json) => {
        // Throws JWKSInvalid for a body that is JSON but not a key set.
        local = createLocalJWKSet(json);
        fetchedAtMs = options.now();
      })
      .catch((error: unknown) => {
        throw keysUnavailable(error);
      })
      .finally(() => {
        pending = undefined;
      });
    return pending;
  };

  return async (header, token) => {
    if (local === undefined || options.now() >= fetchedAtMs + options.cacheMaxAgeMs) await reload();
    try {
      return await local!(header, token);
    } catch (error) {
      if (error instanceof errors.JWKSNoMatchingKey && options.now() >= fetchedAtMs + options.cooldownMs) {
        await reload();
        return local!(header, token);
      }
      throw error;
    }
  };
}
