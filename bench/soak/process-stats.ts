// Reads a process's resident memory and open file descriptors from /proc (Linux), for the soak run.
import { readdirSync, readFileSync } from "node:fs";

/** One sample of the server process. */
export interface ProcessSample {
  /** Seconds since the load started (negative: before). */
  atSeconds: number;
  rssBytes: number;
  /** V8 heap in use, from the server's own /metrics (`streamgate_nodejs_heap_size_used_bytes`); NaN if absent. */
  heapUsedBytes: number;
  openFds: number;
  /** Messages published and live/pull deliveries counted by the clients so far. */
  published: number;
  delivered: number;
}

/** VmRSS of `pid` in bytes, or null when /proc is not readable (not Linux, process gone). */
export function residentBytes(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match === null ? null : Number(match[1]) * 1024;
  } catch {
    return null;
  }
}

/** Entries of /proc/PID/fd (sockets, the SQLite files, pipes…), or null when not readable. */
export function openFileDescriptors(pid: number): number | null {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

/** `streamgate_nodejs_heap_size_used_bytes` from the server's /metrics, or NaN. */
export async function heapUsedBytes(url: string): Promise<number> {
  try {
    const response = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) });
    const text = await response.text();
    const match = /^streamgate_nodejs_heap_size_used_bytes (\d+(?:\.\d+)?(?:e\+?\d+)?)$/m.exec(text);
    return match === null ? Number.NaN : Number(match[1]);
  } catch {
    return Number.NaN;
  }
}
