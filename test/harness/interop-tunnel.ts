// Tunnel test stack: the interop backend, a streamgate server with tunnel rules (gRPC and HTTP entries)
// and a real agent whose rules point at the backend; plus the rules files, shared with bench/tunnel.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { createTunnelAgent, type TunnelAgent } from "../../src/tunnel/agent/index.js";
import type { AgentInfo, TunnelStats } from "../../src/tunnel/server/index.js";
import { type InteropBackend, startInteropBackend } from "./interop-backend.js";
import type { InteropTarget } from "./interop-cases.js";
import { type HttpBackend, startHttpBackend } from "./interop-http-backend.js";
import { findFreePort } from "./nats-server.js";
import { type RunningNginx, startNginx } from "./nginx.js";
import { startTestServer, type TestServer, type TestServerOptions } from "./start-test-server.js";
import { delay } from "./wait-for.js";

const streamgateBin = fileURLToPath(new URL("../../bin/streamgate.mjs", import.meta.url));

/** Written rules files and the credentials an agent needs to join. */
export interface TunnelRulesFiles {
  serverRulesPath: string;
  agentRulesPath: string;
  /** Agent token the server rules accept for `group`. */
  token: string;
  group: string;
}

export interface TunnelRulesOptions {
  /** Folder to write `server-rules.yaml` and `agent-rules.yaml` into. */
  dir: string;
  /** Port of the gRPC backend (h2c) on 127.0.0.1. */
  grpcBackendPort: number;
  /** Port of an HTTP/1.1 backend on 127.0.0.1 for non-gRPC requests (SSE, WebSocket); none when omitted. */
  httpBackendPort?: number;
  /** Default "interop". */
  group?: string;
  /** Default "interop-agent-token". */
  token?: string;
}

/**
 * Writes the server rules (one agent token for the group; gRPC `streamgate.interop.v1.*` → group, and with
 * an HTTP backend every other request → group) and the agent rules (gRPC service → the backend, the rest →
 * the HTTP backend).
 */
export function writeTunnelRules(options: TunnelRulesOptions): TunnelRulesFiles {
  const group = options.group ?? "interop";
  const token = options.token ?? "interop-agent-token";
  const http = options.httpBackendPort;
  const serverRules = [
    "version: 1",
    "agents:",
    "  - name: interop-agents",
    `    token: ${token}`,
    `    groups: [${group}]`,
    "rules:",
    "  - name: interop-grpc",
    "    match:",
    '      service: "streamgate.interop.v1.*"',
    `    group: ${group}`,
    ...(http === undefined
      ? []
      : ["  - name: interop-http", "    match:", "      pathPrefix: /", `    group: ${group}`]),
    "",
  ].join("\n");
  const agentRules = [
    "version: 1",
    "upstreams:",
    "  - name: grpc-backend",
    "    protocol: grpc",
    `    addresses: [h2c://127.0.0.1:${options.grpcBackendPort}]`,
    ...(http === undefined
      ? []
      : ["  - name: http-backend", "    protocol: http", `    addresses: [http://127.0.0.1:${http}]`]),
    "routes:",
    "  - name: grpc",
    "    match:",
    '      service: "streamgate.interop.v1.*"',
    "    upstream: grpc-backend",
    ...(http === undefined
      ? []
      : ["  - name: http", "    match:", "      pathPrefix: /", "    upstream: http-backend"]),
    "",
  ].join("\n");
  const serverRulesPath = join(options.dir, "server-rules.yaml");
  const agentRulesPath = join(options.dir, "agent-rules.yaml");
  writeFileSync(serverRulesPath, serverRules);
  writeFileSync(agentRulesPath, agentRules);
  return { serverRulesPath, agentRulesPath, token, group };
}

/** A `streamgate agent` child process (kill -9 tests). */
export interface AgentProcess {
  clientId: string;
  pid: number;
  /** Everything it wrote to stdout/stderr so far. */
  output(): string;
  /** Sends `signal` (default SIGTERM) and resolves once it exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Spawns `bin/streamgate.mjs agent` against `serverUrl`; it registers on its own (see waitForAgents). */
export function spawnAgentProcess(options: {
  serverUrl: string;
  rules: TunnelRulesFiles;
  clientId: string;
  extraArgs?: string[];
}): AgentProcess {
  const child: ChildProcess = spawn(
    process.execPath,
    [
      streamgateBin,
      "agent",
      "--server",
      options.serverUrl,
      "--token",
      options.rules.token,
      "--group",
      options.rules.group,
      "--config",
      options.rules.agentRulesPath,
      "--client-id",
      options.clientId,
      ...(options.extraArgs ?? []),
    ],
    {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, STREAMGATE_LOG_LEVEL: process.env.STREAMGATE_TEST_LOG_LEVEL ?? "warn" },
    },
  );
  let output = "";
  child.stdout!.setEncoding("utf8");
  child.stderr!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => {
    output += chunk;
  });
  child.stderr!.on("data", (chunk: string) => {
    output += chunk;
  });
  const exited = once(child, "exit");
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  return {
    clientId: options.clientId,
    pid: child.pid ?? 0,
    output: () => output,
    async kill(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
      process.removeListener("exit", killOnExit);
    },
  };
}

/** An agent running in the test process (createTunnelAgent). */
export interface InProcessAgent {
  clientId: string;
  agent: TunnelAgent;
  close(): Promise<void>;
}

export interface TunnelStackOptions {
  /** Also start the node:http backend (SSE, WebSocket) and route non-gRPC requests to it. Default false. */
  http?: boolean;
  /** Largest gRPC message on every hop (server, agent, backend). Default 4 MiB. */
  maxMessageBytes?: number;
  /** Agents started in the test process at once. Default 1. */
  agents?: number;
  /** Agents reach the server directly (default) or through nginx (deploy/nginx/streamgate.conf: TLS, HTTP/2, grpc_pass). */
  via?: "direct" | "nginx";
  /** Extra server options. */
  server?: TestServerOptions;
  /**
   * CA file that agents and `grpcTarget()` trust when the server serves TLS (`server.tlsCertPath`, which also
   * covers the entries): agents then dial `https://`. Default none. With via "nginx", agents trust nginx instead.
   */
  serverCaPath?: string;
  /** The backend keeps a record of every call (tests look calls up by id). Default true; soaks turn it off. */
  recordCalls?: boolean;
}

/** Backend, server with tunnel rules, agents: one tunnel end to end on 127.0.0.1. */
export interface TunnelStack {
  backend: InteropBackend;
  http: HttpBackend | null;
  server: TestServer;
  /** nginx between agents and server (via: "nginx"), else null. */
  nginx: RunningNginx | null;
  rules: TunnelRulesFiles;
  /** `127.0.0.1:<port>` of the gRPC entry. */
  grpcEntry: string;
  /** `http://127.0.0.1:<port>` of the HTTP entry (`https://` when the server serves TLS). */
  httpEntryUrl: string;
  /** The URL agents dial (the server's main port, or nginx). */
  agentServerUrl: string;
  agents: InProcessAgent[];
  /** The gRPC entry as an interop target. */
  grpcTarget(): InteropTarget;
  /** Starts one more in-process agent (default rules: the stack's), waits until it takes requests. */
  startAgent(clientId?: string, rules?: TunnelRulesFiles): Promise<InProcessAgent>;
  /** Writes agent rules pointing at another gRPC backend (same token and group), for a second agent. */
  agentRulesFor(grpcBackendPort: number, name: string): TunnelRulesFiles;
  /** Waits until the sessions of `clientIds` are registered with standby streams (and no others, if `exact`). */
  waitForAgents(clientIds: string[], timeoutMs: number, exact?: boolean): Promise<void>;
  agentInfos(): AgentInfo[];
  tunnelStats(): TunnelStats;
  close(): Promise<void>;
}

/** Starts the interop backend (and the HTTP backend), the server with tunnel rules, and the agents. */
export async function startTunnelStack(options: TunnelStackOptions = {}): Promise<TunnelStack> {
  const dir = mkdtempSync(join(tmpdir(), "streamgate-tunnel-stack-"));
  const maxMessageBytes = options.maxMessageBytes ?? 4 * 1024 * 1024;
  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async () => {
    for (const step of cleanups.reverse()) await step().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const backend = await startInteropBackend({ maxMessageBytes, recordCalls: options.recordCalls ?? true });
    cleanups.push(() => backend.close());
    const http = options.http === true ? await startHttpBackend() : null;
    if (http !== null) cleanups.push(() => http.close());
    const rules = writeTunnelRules({
      dir,
      grpcBackendPort: backend.port,
      ...(http === null ? {} : { httpBackendPort: http.port }),
    });
    const grpcPort = await findFreePort();
    const httpPort = await findFreePort();
    const server = await startTestServer({
      tunnelRulesPath: rules.serverRulesPath,
      tunnelGrpcPort: grpcPort,
      tunnelHttpPort: httpPort,
      tunnelMaxMessageBytes: maxMessageBytes,
      ...options.server,
    });
    // The entries' client connections and nginx's pooled upstream connections close on their own schedule.
    cleanups.push(() => server.close({ allowOpenConnections: true }));
    const nginx = options.via === "nginx" ? await startNginx({ upstreamPort: server.port }) : null;
    if (nginx !== null) cleanups.push(() => nginx.stop());
    const agentServerUrl = nginx === null ? server.url : nginx.url;
    // Agents dialing nginx trust its self-signed certificate (CN localhost, SAN 127.0.0.1).
    const caPath = nginx === null ? (options.serverCaPath ?? null) : join(dir, "nginx-ca.pem");
    if (nginx !== null) writeFileSync(caPath!, nginx.cert);
    // The entries serve TLS with the server's certificate when it has one.
    const entryTls = (options.server?.tlsCertPath ?? null) !== null;
    const entryCa = entryTls && options.serverCaPath !== undefined ? readFileSync(options.serverCaPath) : null;
    const agents: InProcessAgent[] = [];
    cleanups.push(async () => {
      for (const agent of agents) await agent.close();
    });
    let agentCount = 0;

    const tunnel = () => {
      if (server.server.tunnel === null) throw new Error("the server started without its tunnel");
      return server.server.tunnel;
    };
    const stack: TunnelStack = {
      backend,
      http,
      server,
      nginx,
      rules,
      grpcEntry: `127.0.0.1:${grpcPort}`,
      httpEntryUrl: `${entryTls ? "https" : "http"}://127.0.0.1:${httpPort}`,
      agentServerUrl,
      agents,
      grpcTarget: () => ({
        name: nginx === null ? "tunnel" : "tunnel, nginx between agent and server",
        address: `127.0.0.1:${grpcPort}`,
        ...(entryCa === null ? {} : { credentials: grpc.credentials.createSsl(entryCa) }),
        // Receive limit only: grpc-js does not limit sends, so an oversized message reaches the tunnel.
        channelOptions: { "grpc.max_receive_message_length": maxMessageBytes },
      }),
      async startAgent(clientId = `agent-${++agentCount}`, agentRules = rules) {
        const agent = createTunnelAgent({
          serverUrl: agentServerUrl,
          token: agentRules.token,
          group: agentRules.group,
          clientId,
          rulesPath: agentRules.agentRulesPath,
          maxMessageBytes,
          ...(caPath === null ? {} : { tls: { caPath } }),
        });
        await agent.start();
        const entry: InProcessAgent = {
          clientId,
          agent,
          close: async () => {
            const index = agents.indexOf(entry);
            if (index >= 0) agents.splice(index, 1);
            await agent.close();
          },
        };
        agents.push(entry);
        await stack.waitForAgents([clientId], 10_000);
        return entry;
      },
      agentRulesFor(grpcBackendPort, name) {
        const into = mkdtempSync(join(dir, `${name}-`));
        return writeTunnelRules({ dir: into, grpcBackendPort, group: rules.group, token: rules.token });
      },
      async waitForAgents(clientIds, timeoutMs, exact = false) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const infos = tunnel().agents();
          const ready = (id: string) =>
            infos.some((info) => info.client_id === id && info.standby > 0 && info.healthy && !info.draining);
          const others = infos.filter((info) => !clientIds.includes(info.client_id));
          if (clientIds.every(ready) && (!exact || others.length === 0)) return;
          if (Date.now() > deadline)
            throw new Error(
              `agents ${clientIds.join(", ")} not ready within ${timeoutMs} ms; the server has ${JSON.stringify(infos)}`,
            );
          await delay(25);
        }
      },
      agentInfos: () => tunnel().agents(),
      tunnelStats: () => tunnel().stats(),
      close: cleanup,
    };
    for (let index = 0; index < (options.agents ?? 1); index += 1) await stack.startAgent();
    return stack;
  } catch (error) {
    await cleanup();
    throw error;
  }
}
