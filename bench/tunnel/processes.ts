// Child processes of bench/tunnel: the gRPC backend, load workers, bare node:http2 relays (floor reference) and
// the tunnel (streamgate serve with tunnel rules + streamgate agent), each in its own process like a real deployment.
import { type ChildProcess, fork, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeTunnelRules } from "../../test/harness/interop-tunnel.js";
import { findFreePort } from "../../test/harness/nats-server.js";
import { forkForMessage } from "../fanout/child.js";
import { type StreamgateProcess, startStreamgateProcess, streamgateBinary } from "../lib/streamgate-process.js";
import type { WorkerReply, WorkerTask } from "./client-worker.js";

/** The backend child: resolves once it listens. */
export async function startBackendProcess(
  repoRoot: string,
): Promise<{ port: number; pid: number; stop(): Promise<void> }> {
  const { child, message } = forkForMessage<{ port: number }>(
    repoRoot,
    join(repoRoot, "bench/tunnel/backend-process.ts"),
    [],
    30_000,
  );
  const { port } = await message;
  return { port, pid: child.pid ?? 0, stop: () => stopChild(child) };
}

/** A bare node:http2 relay child (bench/tunnel/relay-process.ts) to `target` (`host:port`): resolves once it listens. */
export async function startRelayProcess(
  repoRoot: string,
  target: string,
  nodeArgs: readonly string[] = [],
): Promise<{ port: number; pid: number; stop(): Promise<void> }> {
  const { child, message } = forkForMessage<{ port: number }>(
    repoRoot,
    join(repoRoot, "bench/tunnel/relay-process.ts"),
    [target],
    30_000,
    nodeArgs,
  );
  const { port } = await message;
  return { port, pid: child.pid ?? 0, stop: () => stopChild(child) };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  if (child.connected) child.disconnect();
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}

/** A load worker: `run(task)` sends one task and resolves with its reply. */
export interface LoadWorker {
  pid: number;
  run(task: WorkerTask): Promise<WorkerReply>;
  stop(): Promise<void>;
}

export function startLoadWorker(repoRoot: string): LoadWorker {
  const child = fork(join(repoRoot, "bench/tunnel/client-worker.ts"), [], {
    cwd: repoRoot,
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  child.once("exit", () => process.removeListener("exit", killOnExit));
  return {
    pid: child.pid ?? 0,
    run(task) {
      return new Promise((resolve, reject) => {
        const onExit = (code: number | null) => reject(new Error(`load worker exited with ${code}`));
        child.once("exit", onExit);
        child.once("message", (reply: WorkerReply) => {
          child.off("exit", onExit);
          if (reply.kind === "failed") reject(new Error(`load worker: ${reply.error}`));
          else resolve(reply);
        });
        child.send(task);
      });
    },
    stop: () => stopChild(child),
  };
}

/** streamgate serve (tunnel server) + streamgate agent, both child processes. */
export interface TunnelProcesses {
  server: StreamgateProcess;
  /** `127.0.0.1:<port>` of the gRPC entry. */
  grpcEntry: string;
  agentPid: number;
  /** The agent's output so far (last lines). */
  agentLog(): string;
  /** How the agent process ended, or null while it runs. */
  agentExit(): string | null;
  stop(): Promise<void>;
}

export function getJson(port: number, path: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: "127.0.0.1", port, path, agent: false, timeout: 2_000 }, (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        text += chunk;
      });
      response.on("end", () => {
        try {
          resolve(JSON.parse(text));
        } catch (error) {
          reject(error);
        }
      });
    });
    request.on("timeout", () => request.destroy(new Error("timeout")));
    request.on("error", reject);
    request.end();
  });
}

/** Starts the tunnel server and one agent for the backend on `backendPort`; resolves once the agent is registered. */
export async function startTunnelProcesses(options: {
  repoRoot: string;
  serverRoot: string;
  backendPort: number;
  maxMessageBytes?: number;
  nodeArgs?: readonly string[];
}): Promise<TunnelProcesses> {
  const binary = streamgateBinary(options.serverRoot);
  if (binary === null) throw new Error(`streamgate CLI not found in ${options.serverRoot}`);
  const dir = mkdtempSync(join(tmpdir(), "streamgate-bench-tunnel-"));
  const rules = writeTunnelRules({ dir, grpcBackendPort: options.backendPort });
  const grpcPort = await findFreePort();
  const httpPort = await findFreePort();
  const server = await startStreamgateProcess({
    repoRoot: options.serverRoot,
    nodeArgs: options.nodeArgs,
    args: [
      "--tunnel-rules",
      rules.serverRulesPath,
      "--tunnel-grpc-port",
      String(grpcPort),
      "--tunnel-http-port",
      String(httpPort),
      // The agent's one HTTP/2 connection carries every tunnel stream (10,000 idle ones in the memory phase).
      "--max-streams-per-connection",
      "20000",
      ...(options.maxMessageBytes === undefined ? [] : ["--tunnel-max-message-bytes", String(options.maxMessageBytes)]),
    ],
  });
  const agent = spawn(
    process.execPath,
    [
      // The agent gets the same node flags (e.g. --cpu-prof) as the server.
      ...(options.nodeArgs ?? []),
      binary,
      "agent",
      "--server",
      server.url,
      "--token",
      rules.token,
      "--group",
      rules.group,
      "--config",
      rules.agentRulesPath,
      "--client-id",
      "bench-agent",
      "--max-concurrent-streams",
      "12000",
      "--log-level",
      "warn",
    ],
    { cwd: options.serverRoot, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NODE_ENV: "production" } },
  );
  const tail: string[] = [];
  const onOutput = (chunk: Buffer): void => {
    for (const line of chunk.toString("utf8").split("\n")) {
      if (line === "") continue;
      tail.push(line);
      if (tail.length > 40) tail.shift();
    }
  };
  agent.stdout?.on("data", onOutput);
  agent.stderr?.on("data", onOutput);
  const killOnExit = () => agent.kill("SIGKILL");
  process.once("exit", killOnExit);
  const agentExited = once(agent, "exit");

  const stop = async (): Promise<void> => {
    if (agent.exitCode === null && agent.signalCode === null) {
      agent.kill("SIGTERM");
      const timer = setTimeout(() => agent.kill("SIGKILL"), 5_000);
      await agentExited;
      clearTimeout(timer);
    }
    process.removeListener("exit", killOnExit);
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 30_000;
  for (;;) {
    const agents = (await getJson(server.port, "/v1/tunnel/agents").catch(() => null)) as {
      agents?: { standby?: number }[];
    } | null;
    if ((agents?.agents ?? []).some((entry) => (entry.standby ?? 0) > 0)) break;
    if (agent.exitCode !== null || Date.now() > deadline) {
      const log = tail.join("\n");
      await stop();
      throw new Error(`the agent did not register within 30 s:\n${log}\nserver:\n${server.logTail()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    server,
    grpcEntry: `127.0.0.1:${grpcPort}`,
    agentPid: agent.pid ?? 0,
    agentLog: () => tail.join("\n"),
    agentExit: () =>
      agent.exitCode === null && agent.signalCode === null
        ? null
        : `exit code ${agent.exitCode}, signal ${agent.signalCode}`,
    stop,
  };
}
