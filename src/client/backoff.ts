// Exponential backoff with jitter, and an abortable sleep.
import type { ReconnectOptions } from "./types.js";

export interface ResolvedReconnectOptions {
  initialDelayMs: number;
  maxDelayMs: number;
  jitter: number;
}

export const defaultReconnectOptions: ResolvedReconnectOptions = {
  initialDelayMs: 250,
  maxDelayMs: 30_000,
  jitter: 0.5,
};

export function resolveReconnectOptions(options: ReconnectOptions = {}): ResolvedReconnectOptions {
  const resolved = { ...defaultReconnectOptions, ...options };
  if (!(resolved.initialDelayMs >= 0) || !(resolved.maxDelayMs >= resolved.initialDelayMs)) {
    throw new RangeError("reconnect: need 0 <= initialDelayMs <= maxDelayMs");
  }
  if (!(resolved.jitter >= 0 && resolved.jitter <= 1)) throw new RangeError("reconnect.jitter must be from 0 to 1");
  return resolved;
}

/** Delay before retry number `attempt` (0-based). */
export function backoffDelayMs(options: ResolvedReconnectOptions, attempt: number): number {
  const base = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** Math.min(attempt, 30));
  return Math.round(base * (1 - options.jitter * Math.random()));
}

/** Resolves after `ms`, or at once when `signal` aborts (it does not reject). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
