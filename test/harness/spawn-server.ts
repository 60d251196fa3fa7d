// Runs `streamgate serve` as a child process (for kill -9, SIGTERM and restart tests) and finds its port.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const bin = fileURLToPath(new URL("../../bin/streamgate.mjs", import.meta.url));

export interface SpawnedServer {
  url: string;
  hostPort: string;
  port: number;
  child: ChildProcess;
  /** Everything the process wrote to stderr so far. */
  stderr(): string;
  /** Sends `signal` and resolves with the exit code/signal. */
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Spawns the server with `args` (e.g. ["--data-dir", dir]) on 127.0.0.1, port 0 unless given. A given port
 * (a restart on the same port) is retried for up to 10 s while it is in use: on a shared machine another
 * process's connection can hold that port number for a moment after the previous server exited.
 */
export async function spawnServer(args: string[], timeoutMs = 60_000): Promise<SpawnedServer> {
  const fixedPort = args.includes("--port");
  const retryUntil = Date.now() + 10_000;
  for (;;) {
    try {
      return await spawnServerOnce(args, timeoutMs);
    } catch (error) {
      const inUse = /EADDRINUSE/.test((error as Error).message);
      if (!fixedPort || !inUse || Date.now() > retryUntil) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

async function spawnServerOnce(args: string[], timeoutMs: number): Promise<SpawnedServer> {
  const fullArgs = [bin, "serve", "--host", "127.0.0.1", ...(args.includes("--port") ? [] : ["--port", "0"]), ...args];
  const child = spawn(process.execPath, fullArgs, {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, STREAMGATE_LOG_LEVEL: process.env.STREAMGATE_TEST_LOG_LEVEL ?? "warn" },
  });
  let stderr = "";
  child.stderr!.setEncoding("utf8");
  const exited = once(child, "exit").then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
  }));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      const state = processState(child.pid);
      // A child left running would keep the test process alive forever after the test fails.
      child.kill("SIGKILL");
      reject(new Error(`server did not start in ${timeoutMs} ms (${state}):\n${stderr}`));
    }, timeoutMs);
    child.stderr!.on("data", (chunk: string) => {
      stderr += chunk;
      const match = /listening on (https?:\/\/[^\s]+)/.exec(stderr);
      if (match !== null) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`server exited early (code ${code}, signal ${signal}):\n${stderr}`));
    });
  });
  const parsed = new URL(url);
  return {
    url,
    hostPort: parsed.host,
    port: Number(parsed.port),
    child,
    stderr: () => stderr,
    async kill(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** State and CPU time of a process from /proc (Linux), to tell a stalled start from a slow one. */
function processState(pid: number | undefined): string {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    const wchan = readFileSync(`/proc/${pid}/wchan`, "utf8");
    return `state ${fields[0]}, ${ticks} CPU ticks, waiting in ${wchan || "-"}`;
  } catch {
    return "process state unavailable";
  }
}
