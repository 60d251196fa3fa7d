// Runs the streamgate server in a child process (its own event loop, like nats-server) for benchmarks.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { get as httpGet } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findFreePort } from "../../test/harness/nats-server.js";

/** Options of {@link startStreamgateProcess}. */
export interface StreamgateProcessOptions {
  /** Repository root holding `bin/streamgate.mjs`. */
  repoRoot: string;
  /** Extra `serve` flags. Default none. */
  args?: readonly string[];
  /** Extra node flags, e.g. `--cpu-prof --cpu-prof-dir <dir>`. Default none. */
  nodeArgs?: readonly string[];
  /** How long to wait for `GET /healthz` = 200. Default 30000 ms (first start compiles TypeScript). */
  startTimeoutMs?: number;
}

/** A running streamgate child process. */
export interface StreamgateProcess {
  /** `host:port` for gRPC clients (h2c). */
  target: string;
  /** `http://127.0.0.1:<port>`. */
  url: string;
  port: number;
  pid: number;
  /** The temp data dir (removed by `stop()`). */
  dataDir: string;
  /** The last lines the server wrote to stdout/stderr. */
  logTail(): string;
  /** SIGTERM, then SIGKILL after 10 s; removes the data dir. Idempotent. */
  stop(): Promise<void>;
}

const LOG_TAIL_LINES = 40;

/**
 * Status of `GET /healthz` on a fresh connection that is closed afterwards (0 if it fails): a pooled
 * keep-alive connection (fetch's) would hold the server's drain open on SIGTERM.
 */
function healthStatus(port: number): Promise<number> {
  return new Promise((resolve) => {
    const request = httpGet({ host: "127.0.0.1", port, path: "/healthz", agent: false, timeout: 2_000 }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on("timeout", () => request.destroy());
    request.on("error", () => resolve(0));
  });
}

/** Path of the CLI entry point, or null if it does not exist yet. */
export function streamgateBinary(repoRoot: string): string | null {
  const path = join(repoRoot, "bin", "streamgate.mjs");
  return existsSync(path) ? path : null;
}

/**
 * Spawns `node bin/streamgate.mjs serve --port <free> --data-dir <tmp> --log-level warn` and resolves
 * once `GET /healthz` answers 200.
 */
export async function startStreamgateProcess(options: StreamgateProcessOptions): Promise<StreamgateProcess> {
  const binary = streamgateBinary(options.repoRoot);
  if (binary === null) throw new Error(`streamgate CLI not found at ${join(options.repoRoot, "bin/streamgate.mjs")}`);
  const port = await findFreePort();
  const dataDir = mkdtempSync(join(tmpdir(), "streamgate-bench-"));
  const args = [
    ...(options.nodeArgs ?? []),
    binary,
    "serve",
    // Loopback: auth stays off (on any other address the server refuses to start without auth).
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--data-dir",
    dataDir,
    "--log-level",
    "warn",
  ];
  args.push(...(options.args ?? []));
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: options.repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
    // Benchmarks load one server from one loopback address, i.e. one anonymous principal: the per-principal and
    // per-IP limits (README "Limits") would measure themselves, so they are off. Env, not flags, so that a
    // server root from before the limits existed still starts.
    env: {
      ...process.env,
      NODE_ENV: "production",
      STREAMGATE_MAX_CONNECTIONS_PER_IP: "0",
      STREAMGATE_MAX_CONNECTIONS_PER_PRINCIPAL: "0",
      STREAMGATE_MAX_SUBSCRIPTIONS_PER_PRINCIPAL: "0",
      STREAMGATE_PUBLISH_RATE: "0",
    },
  });
  const tail: string[] = [];
  const onOutput = (chunk: Buffer): void => {
    for (const line of chunk.toString("utf8").split("\n")) {
      if (line === "") continue;
      tail.push(line);
      if (tail.length > LOG_TAIL_LINES) tail.shift();
    }
  };
  child.stdout?.on("data", onOutput);
  child.stderr?.on("data", onOutput);
  const logTail = (): string => tail.join("\n");
  let exited = false;
  const exitPromise = new Promise<void>((resolve) => {
    child.once("exit", () => {
      exited = true;
      resolve();
    });
  });
  const killOnExit = (): void => {
    child.kill("SIGKILL");
  };
  process.once("exit", killOnExit);

  const stop = async (): Promise<void> => {
    if (!exited) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exitPromise;
      clearTimeout(timer);
    }
    process.removeListener("exit", killOnExit);
    rmSync(dataDir, { recursive: true, force: true });
  };

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`streamgate exited during startup:\n${logTail()}`);
    }
    if ((await healthStatus(port)) === 200) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`streamgate /healthz not 200 within ${options.startTimeoutMs ?? 30_000} ms:\n${logTail()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { target: `127.0.0.1:${port}`, url, port, pid: child.pid ?? 0, dataDir, logTail, stop };
}
