// An AbortSignal that aborts when its parent does or when a time limit passes, on a timer it owns and clears.
//
// Why not `AbortSignal.any([parent, AbortSignal.timeout(ms)])`: on Node 20 the timeout signal inside such a
// composite is held only weakly, so a garbage collection before it fires drops it and the deadline never
// comes (seen as a tunnel request that waited 10 s for a TLS handshake past its 200 ms deadline, only in the
// full test suite, where collections are frequent). An explicit timer is exact on every runtime and is
// released at once by `dispose()` instead of living until it fires.

/** A signal bounded by a parent and a deadline; call `dispose()` once the guarded work is over. */
export interface DeadlineSignal {
  /** Aborts with the parent's reason, or with a `TimeoutError` DOMException when the time limit passes. */
  readonly signal: AbortSignal;
  /** True once the time limit (not the parent) aborted `signal`. */
  readonly timedOut: boolean;
  /** Clears the timer and detaches from the parent; `signal` stays as it is. */
  dispose(): void;
}

/**
 * A signal that aborts when `parent` aborts or after `timeoutMs` (clamped to ≥ 0), whichever comes first.
 * The timer is unref'd: like `AbortSignal.timeout`, a pending deadline does not keep the process alive.
 */
export function createDeadlineSignal(parent: AbortSignal | undefined, timeoutMs: number): DeadlineSignal {
  const controller = new AbortController();
  let timedOut = false;
  const onParentAbort = () => {
    clearTimeout(timer);
    controller.abort(parent?.reason);
  };
  const timer = setTimeout(
    () => {
      timedOut = true;
      parent?.removeEventListener("abort", onParentAbort);
      controller.abort(new DOMException(`the operation timed out after ${timeoutMs} ms`, "TimeoutError"));
    },
    Math.max(0, timeoutMs),
  );
  timer.unref();
  if (parent?.aborted) onParentAbort();
  else parent?.addEventListener("abort", onParentAbort, { once: true });
  return {
    signal: controller.signal,
    get timedOut() {
      return timedOut;
    },
    dispose() {
      clearTimeout(timer);
      parent?.removeEventListener("abort", onParentAbort);
    },
  };
}
