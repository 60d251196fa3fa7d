// Starts real `nats-server` processes (JetStream on, temp store, loopback ports) for tests and benchmarks.
import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { peersRequired } from "./peers.js";

/** Message of the error thrown when the binary cannot be found; tests match on it to decide skip vs fail. */
export const NATS_SERVER_NOT_FOUND = "nats-server not found: install it with apt-get install -y nats-server";

/** The `max_payload` of test servers started without their own config: room for a 10 MB message and its headers. */
export const TEST_MAX_PAYLOAD = "12MB";

/** Route settings that join one server to a cluster. */
export interface NatsClusterRouteOptions {
  /** Cluster name shared by every member. */
  name: string;
  /** Port this server listens on for routes (loopback). */
  port: number;
  /** Route URLs of the other members (`nats://127.0.0.1:<port>`). */
  routes: readonly string[];
}

/** Options of {@link startNatsServer}. */
export interface NatsServerOptions {
  /** Enable JetStream with a file store in a temp dir. Default `true`: our engine and benches need it. */
  jetstream?: boolean;
  /** Join a cluster; used by {@link startNatsCluster}. Default: standalone. */
  cluster?: NatsClusterRouteOptions;
  /** Server name (`--server_name`); required and unique per member in a JetStream cluster. Default: generated. */
  serverName?: string;
  /**
   * Extra command-line arguments appended as given. Default none. Without a `-c` among them the
   * server reads a config raising `max_payload` to {@link TEST_MAX_PAYLOAD} (as docs/jetstream.md
   * tells operators to), so streamgate's default 10 MB message size starts on it.
   */
  args?: readonly string[];
  /** How long to wait for the server to accept connections. Default 15000 ms (a cluster elects a leader first). */
  startTimeoutMs?: number;
  /** Path of the binary. Default `$NATS_SERVER_BIN`, else `nats-server` on `PATH`, `/usr/sbin` or `/usr/local/bin`. */
  binary?: string;
}

/** A running `nats-server`. */
export interface NatsServer {
  /** Client URL, `nats://127.0.0.1:<port>`. */
  url: string;
  /** Client port. */
  port: number;
  /** HTTP monitoring base URL (`/healthz`, `/varz`, `/jsz`). */
  monitorUrl: string;
  /** JetStream store directory (a temp dir removed by `stop()`); empty when JetStream is off. */
  storeDir: string;
  /** Process id. */
  pid: number;
  /** The last log lines, for error messages. */
  logTail(): string;
  /**
   * Sends `signal` (default `SIGTERM`), waits for exit (SIGKILL after 5 s) and removes the store dir.
   * Idempotent.
   */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** A running cluster of `nats-server`s. */
export interface NatsCluster {
  /** The members, in start order. */
  servers: readonly NatsServer[];
  /** Every member's client URL; give them all to a client so it can fail over. */
  urls: readonly string[];
  /** Stops every member. */
  stop(): Promise<void>;
}

const LOG_TAIL_LINES = 40;
const STOP_GRACE_MS = 5_000;
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Kills children left running when the process exits (a crashed test or bench must not leak servers). */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const child of live) child.kill("SIGKILL");
  });
}

/** Finds the `nats-server` binary or throws {@link NATS_SERVER_NOT_FOUND}. */
export function findNatsServerBinary(explicit?: string): string {
  const candidates: string[] = [];
  const fromEnv = explicit ?? process.env.NATS_SERVER_BIN;
  if (fromEnv !== undefined && fromEnv !== "") candidates.push(fromEnv);
  else {
    // Debian installs to /usr/sbin, which is not on a non-root user's PATH.
    const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/usr/local/bin", "/usr/bin"];
    for (const dir of dirs) if (dir !== "") candidates.push(join(dir, "nats-server"));
  }
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // try the next one
    }
  }
  throw new Error(NATS_SERVER_NOT_FOUND);
}

/** Returns a port that was free on 127.0.0.1 a moment ago (bind port 0, read it, close). */
export async function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("could not read a free port"))));
    });
  });
}

/** Resolves once a TCP connection to the port receives the server's `INFO` greeting. */
async function waitForInfo(port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: "127.0.0.1", port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`nats-server on port ${port} sent no INFO within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once("data", (chunk: Buffer) => {
      clearTimeout(timer);
      socket.destroy();
      if (chunk.toString("latin1").startsWith("INFO ")) resolve();
      else reject(new Error(`unexpected greeting from nats-server on port ${port}`));
    });
    socket.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/**
 * Starts `nats-server` on a random loopback port (JetStream on by default, file store in a temp dir)
 * and resolves once it accepts client connections.
 *
 * Ports come from the server itself (`-p -1`, `-m -1`, read back from its log), so there is no race
 * with other processes picking the same port.
 *
 * @throws Error `nats-server not found: …` when the binary is missing; other errors carry the log tail.
 */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const binary = findNatsServerBinary(options.binary);
  const jetstream = options.jetstream ?? true;
  const startTimeoutMs = options.startTimeoutMs ?? 15_000;
  const storeDir = jetstream ? mkdtempSync(join(tmpdir(), "streamgate-nats-")) : "";
  const args = ["-a", "127.0.0.1", "-p", "-1", "-m", "-1"];
  if (jetstream) args.push("-js", "-sd", storeDir);
  if (options.serverName !== undefined) args.push("--server_name", options.serverName);
  if (options.cluster !== undefined) {
    const { name, port, routes } = options.cluster;
    args.push("--cluster_name", name, "--cluster", `nats://127.0.0.1:${port}`);
    if (routes.length > 0) args.push("--routes", routes.join(","));
  }
  const extra = options.args ?? [];
  const configDir = extra.includes("-c") ? "" : mkdtempSync(join(tmpdir(), "streamgate-nats-conf-"));
  if (configDir !== "") {
    writeFileSync(join(configDir, "nats-server.conf"), `max_payload: ${TEST_MAX_PAYLOAD}\n`);
    args.push("-c", join(configDir, "nats-server.conf"));
  }
  args.push(...extra);

  installExitHook();
  const child = spawn(binary, args, { stdio: ["ignore", "ignore", "pipe"] });
  live.add(child);
  const tail: string[] = [];
  const logTail = (): string => tail.join("\n");
  let clientPort = 0;
  let monitorPort = 0;
  let exited = false;
  const exitPromise = new Promise<void>((resolve) => {
    child.once("exit", () => {
      exited = true;
      live.delete(child);
      resolve();
    });
  });

  const ready = new Promise<void>((resolve, reject) => {
    let buffered = "";
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (text: string) => {
      buffered += text;
      let newline = buffered.indexOf("\n");
      while (newline >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        tail.push(line);
        if (tail.length > LOG_TAIL_LINES) tail.shift();
        const client = /Listening for client connections on [^\s]+:(\d+)/.exec(line);
        if (client) clientPort = Number(client[1]);
        const monitor = /Starting http monitor on [^\s]+:(\d+)/.exec(line);
        if (monitor) monitorPort = Number(monitor[1]);
        if (line.includes("Server is ready")) resolve();
        newline = buffered.indexOf("\n");
      }
    });
    child.once("error", reject);
    void exitPromise.then(() => reject(new Error(`nats-server exited during startup:\n${logTail()}`)));
  });

  const stop = async (signal: NodeJS.Signals = "SIGTERM"): Promise<void> => {
    if (!exited) {
      child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
      await exitPromise;
      clearTimeout(timer);
    }
    if (storeDir !== "") rmSync(storeDir, { recursive: true, force: true });
    if (configDir !== "") rmSync(configDir, { recursive: true, force: true });
  };

  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`nats-server not ready within ${startTimeoutMs} ms:\n${logTail()}`)),
        startTimeoutMs,
      );
    });
    await Promise.race([ready, timeout]);
    if (clientPort === 0) throw new Error(`could not read nats-server's client port from its log:\n${logTail()}`);
    await Promise.race([waitForInfo(clientPort, startTimeoutMs), timeout]);
  } catch (error) {
    await stop("SIGKILL");
    // With the server's own words (e.g. a route port taken between findFreePort and its bind).
    const message = String(error instanceof Error ? error.message : error);
    throw message.includes(logTail()) || logTail() === ""
      ? error
      : new Error(`${message}\nnats-server log:\n${logTail()}`, { cause: error });
  } finally {
    clearTimeout(timer);
  }

  return {
    url: `nats://127.0.0.1:${clientPort}`,
    port: clientPort,
    monitorUrl: `http://127.0.0.1:${monitorPort}`,
    storeDir,
    pid: child.pid ?? 0,
    logTail,
    stop,
  };
}

/** Polls each member's `/healthz` until all report JetStream healthy (a meta leader is elected). */
async function waitForClusterHealthy(servers: readonly NatsServer[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const server of servers) {
    for (;;) {
      const response = await fetch(`${server.monitorUrl}/healthz`).catch(() => undefined);
      if (response?.ok) break;
      if (Date.now() > deadline) {
        throw new Error(`nats cluster not healthy within ${timeoutMs} ms:\n${server.logTail()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/**
 * Starts a JetStream cluster of `size` members (default 3) routed over loopback and resolves once
 * every member reports healthy (JetStream meta leader elected).
 */
export async function startNatsCluster(
  size = 3,
  options: Omit<NatsServerOptions, "cluster" | "serverName"> = {},
): Promise<NatsCluster> {
  // Route ports are chosen before the members bind them (each must know the others'): another process may take
  // one in between. That, and only that, is tried again with fresh ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startNatsClusterOnce(size, options);
    } catch (error) {
      if (attempt >= 3 || !String(error instanceof Error ? error.message : error).includes("address already in use"))
        throw error;
    }
  }
}

async function startNatsClusterOnce(
  size: number,
  options: Omit<NatsServerOptions, "cluster" | "serverName">,
): Promise<NatsCluster> {
  const routePorts: number[] = [];
  for (let i = 0; i < size; i++) routePorts.push(await findFreePort());
  const name = `streamgate-${process.pid}-${Date.now().toString(36)}`;
  const started = await Promise.allSettled(
    routePorts.map((port, i) =>
      startNatsServer({
        ...options,
        serverName: `${name}-n${i + 1}`,
        cluster: {
          name,
          port,
          routes: routePorts.filter((other) => other !== port).map((other) => `nats://127.0.0.1:${other}`),
        },
      }),
    ),
  );
  const servers = started.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
  const stop = async (): Promise<void> => {
    await Promise.all(servers.map((server) => server.stop()));
  };
  const failure = started.find((result): result is PromiseRejectedResult => result.status === "rejected");
  if (failure !== undefined) {
    await stop();
    throw failure.reason;
  }
  try {
    await waitForClusterHealthy(servers, options.startTimeoutMs ?? 15_000);
  } catch (error) {
    await stop();
    throw error;
  }
  return { servers, urls: servers.map((server) => server.url), stop };
}

/**
 * Starts a test file's nats peer (`startNatsServer`, `startNatsCluster`, …). When nats-server is not installed,
 * resolves `missing` (the skip reason) instead, unless peers are required (CI=true), where the error is thrown.
 */
export async function startNatsPeer<T>(start: () => Promise<T>): Promise<{ peer: T | null; missing: string | false }> {
  try {
    return { peer: await start(), missing: false };
  } catch (error) {
    if (!String(error).includes(NATS_SERVER_NOT_FOUND) || peersRequired()) throw error;
    return { peer: null, missing: `SKIPPED: ${String(error)}` };
  }
}
