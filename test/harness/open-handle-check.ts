// Preloaded into every test file's process (scripts/run-tests.mjs): a file whose process is still kept alive
// (socket, server, child process, timer) a grace period after its tests and hooks fails, and what keeps it alive
// is named, instead of the runner force-closing it and hiding a leak.
import { createHook } from "node:async_hooks";
import type { ChildProcess } from "node:child_process";
import { Server, Socket } from "node:net";
import { after } from "node:test";

/**
 * How long after the file's first top-level `after` hook starts the process may stay alive: the file's own
 * top-level `after` hooks run after this one (node runs them in registration order, and a preload registers
 * first), then closes they started finish.
 */
const GRACE_MS = Number(process.env.STREAMGATE_TEST_HANDLE_GRACE_MS ?? 10_000);

type Handle = { hasRef?: () => boolean; _handle?: { hasRef?: () => boolean } | null; constructor?: { name?: string } };

/** Handles (not timers) that keep the event loop alive, less this process's own stdio. */
function refHandles(): Handle[] {
  const getHandles = (process as unknown as { _getActiveHandles?: () => Handle[] })._getActiveHandles;
  const handles = getHandles?.call(process) ?? [];
  return handles.filter((handle) => {
    if (handle === (process.stdout as unknown) || handle === (process.stderr as unknown)) return false;
    if (handle === (process.stdin as unknown)) return false;
    const hasRef = handle.hasRef ?? handle._handle?.hasRef?.bind(handle._handle);
    return hasRef === undefined ? true : hasRef.call(handle);
  });
}

function describeHandle(handle: Handle): string {
  if (handle instanceof Server) {
    const address = handle.address();
    return `server listening on ${typeof address === "string" ? address : `${address?.address}:${address?.port}`}`;
  }
  if (handle instanceof Socket) {
    if (handle.remotePort !== undefined) {
      // Accepted sockets know their server: which listener kept a connection tells a server leak from a client one.
      const server = (handle as Socket & { server?: Server | null }).server;
      const side = server
        ? `accepted by this process's server (${server.listening ? "still listening" : "closed"})`
        : "opened by this process (client)";
      // Its state says who should have ended it: a paused socket nobody reads, one whose peer already sent FIN
      // (readable false), one that never saw a byte (a connection accepted as the server was closing).
      const state = [
        handle.readyState,
        handle.isPaused() ? "paused" : "flowing",
        `read ${handle.bytesRead} B`,
        `written ${handle.bytesWritten} B`,
        `listeners ${["data", "end", "close", "timeout"].map((event) => `${event}:${handle.listenerCount(event)}`).join(" ")}`,
      ].join(", ");
      return `socket ${handle.localAddress}:${handle.localPort} -> ${handle.remoteAddress}:${handle.remotePort}, ${side}; ${state}`;
    }
    return `socket (${handle.destroyed ? "destroyed" : "not connected"})`;
  }
  const child = handle as Partial<ChildProcess>;
  if (typeof child.pid === "number" && child.spawnfile !== undefined) {
    return `child process ${child.pid} (${[child.spawnfile, ...(child.spawnargs ?? []).slice(1, 4)].join(" ")})`;
  }
  return handle.constructor?.name ?? "unknown handle";
}

/**
 * Where each live timer was created, recorded only with STREAMGATE_TEST_TRACE_TIMERS=1 (an async hook on every
 * resource costs too much to leave on): a leaked timer is then named by its creation stack.
 */
const timerSites = new Map<object, string>();
if (process.env.STREAMGATE_TEST_TRACE_TIMERS === "1") {
  createHook({
    init(_id, type, _trigger, resource) {
      if (type === "Timeout") {
        const limit = Error.stackTraceLimit;
        Error.stackTraceLimit = 30;
        const frames = (new Error().stack ?? "").split("\n").slice(2);
        Error.stackTraceLimit = limit;
        timerSites.set(
          resource,
          frames
            .filter((line) => !/\(node:|at node:/.test(line))
            .slice(0, 4)
            .join("\n"),
        );
      }
    },
    destroy() {},
  }).enable();
}

function liveTimerSites(): string[] {
  const sites: string[] = [];
  for (const [timer, site] of timerSites) {
    const state = timer as { hasRef?: () => boolean; _destroyed?: boolean };
    if (state._destroyed === true || state.hasRef?.() === false) timerSites.delete(timer);
    else sites.push(`timer created at\n${site}`);
  }
  return sites;
}

/** Resource types that are requests or timers in flight (a handle, such as a socket or a server, is named instead). */
const PENDING_TYPE = /(Req|ReqWrap|ReqCallback|Timeout|Immediate)$/;

/** Everything still open: named handles, then timers and requests in flight, counted by type. */
function leaks(): string[] {
  const named = refHandles().map(describeHandle);
  const pending = process.getActiveResourcesInfo().filter((type) => PENDING_TYPE.test(type));
  const timers = pending.filter((type) => type === "Timeout" || type === "Immediate").length;
  if (timers > 0) {
    const sites = liveTimerSites();
    if (sites.length > 0) named.push(...sites);
    else named.push(`${timers} ref'd timer(s) not cleared (STREAMGATE_TEST_TRACE_TIMERS=1 names where they were set)`);
  }
  const requests = pending.filter((type) => type !== "Timeout" && type !== "Immediate");
  if (requests.length > 0) named.push(`requests in flight: ${requests.join(", ")}`);
  return named;
}

if (process.env.NODE_TEST_CONTEXT !== undefined) {
  // A watchdog, not a check in the hook: the file's own top-level `after` hooks (its teardown) run after this one.
  // A clean file's process exits before the unref'd timer fires; a leaking one is still there to be told.
  after(() => {
    setTimeout(() => {
      const open = leaks();
      const named = open.length > 0 ? open : [`unnamed: ${process.getActiveResourcesInfo().join(", ")}`];
      const file = process.argv.at(-1) ?? "this test file";
      process.stderr.write(
        `\nopen-handle check: ${file} was still running ${GRACE_MS} ms after its tests; ` +
          `close these in an after hook:\n  - ${named.join("\n  - ")}\n`,
      );
      process.exit(1);
    }, GRACE_MS).unref();
  });
}
