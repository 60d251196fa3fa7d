// Reads a process's CPU time from /proc, to report server CPU per message next to throughput.
import { readdirSync, readFileSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ; 100 on Linux everywhere we run). */
const CLOCK_TICKS_PER_SECOND = 100;

/**
 * User + system CPU milliseconds consumed so far by `pid` (10 ms resolution); null when /proc is
 * unavailable (not Linux) or the process is gone.
 */
export function processCpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may contain spaces; fields after it start past the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const userTicks = Number(fields[11]);
    const systemTicks = Number(fields[12]);
    if (!Number.isFinite(userTicks) || !Number.isFinite(systemTicks)) return null;
    return ((userTicks + systemTicks) * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

/** CPU milliseconds of this process (user + system, microsecond resolution). */
export function ownCpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

/** Measures CPU used by a server process and by this (client) process across an async section. */
export async function measureCpu<T>(
  serverPid: number,
  section: () => Promise<T>,
): Promise<{ result: T; serverCpuMs: number | null; clientCpuMs: number }> {
  const serverBefore = processCpuMs(serverPid);
  const clientBefore = ownCpuMs();
  const result = await section();
  const serverAfter = processCpuMs(serverPid);
  const clientCpuMs = ownCpuMs() - clientBefore;
  const serverCpuMs = serverBefore !== null && serverAfter !== null ? serverAfter - serverBefore : null;
  return { result, serverCpuMs, clientCpuMs };
}

/**
 * Milliseconds the main thread of `pid` (a Node process's event loop) has spent runnable but waiting for a CPU,
 * from /proc/<pid>/task/<pid>/schedstat; null when unavailable. Around a phase, divided by its wall time, it says
 * how much of the time the machine, not the process's own work, held the event loop up.
 */
export function runQueueWaitMs(pid: number): number | null {
  try {
    const waitedNs = Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, "utf8").split(" ")[1]);
    return Number.isFinite(waitedNs) ? waitedNs / 1e6 : null;
  } catch {
    return null;
  }
}

/**
 * On-CPU milliseconds of every thread of `pid` so far, from /proc/<pid>/task/<tid>/schedstat (nanosecond
 * resolution, unlike /proc/<pid>/stat's 10 ms ticks); null when unavailable. Threads that ended are not counted.
 */
export function processCpuPreciseMs(pid: number): number | null {
  try {
    let totalNs = 0;
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      totalNs += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0]);
    }
    return Number.isFinite(totalNs) ? totalNs / 1e6 : null;
  } catch {
    return null;
  }
}

/** On-CPU milliseconds of the main thread (a Node process's event loop) of `pid`, from its schedstat; null when unavailable. */
export function mainThreadCpuMs(pid: number): number | null {
  try {
    const onCpuNs = Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, "utf8").split(" ")[0]);
    return Number.isFinite(onCpuNs) ? onCpuNs / 1e6 : null;
  } catch {
    return null;
  }
}
