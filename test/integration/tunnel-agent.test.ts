// The tunnel agent end to end: grpc-js client → gRPC entry → server → agent → grpc-js backend; refusal, reconnect, reload, drain.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { Code, type StreamgateError } from "../../src/errors/index.js";
import { createLogger } from "../../src/observability/index.js";
import { createTunnelAgent, type TunnelAgent } from "../../src/tunnel/agent/index.js";
import { findFreePort } from "../harness/nats-server.js";
import { type SpawnedServer, spawnServer } from "../harness/spawn-server.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { createTestCa } from "../harness/test-ca.js";
import { EchoClient, type GrpcBackend, startGrpcBackend } from "../harness/tunnel-test-backends.js";
import { waitFor, withTimeout } from "../harness/wait-for.js";

const streamgateBin = fileURLToPath(new URL("../../bin/streamgate.mjs", import.meta.url));
const TOKEN = "agent-test-token";
const GROUP = "echo";

function serverRules(): string {
  return [
    "version: 1",
    "agents:",
    "  - name: test-agents",
    `    token: ${TOKEN}`,
    `    groups: [${GROUP}]`,
    "rules:",
    "  - name: echo",
    "    match:",
    "      service: test.Echo",
    `    group: ${GROUP}`,
    "  - name: unrouted",
    "    match:",
    "      service: test.Unrouted",
    `    group: ${GROUP}`,
    "",
  ].join("\n");
}

function agentRules(backends: GrpcBackend[]): string {
  return [
    "version: 1",
    "upstreams:",
    "  - name: echo-backends",
    "    protocol: grpc",
    "    pick: round_robin",
    `    addresses: [${backends.map((backend) => backend.address).join(", ")}]`,
    "routes:",
    "  - name: echo",
    "    match:",
    "      service: test.Echo",
    "    upstream: echo-backends",
    "",
  ].join("\n");
}

function unary(
  client: InstanceType<typeof EchoClient>,
  method: string,
  request: Buffer,
  metadata = new grpc.Metadata(),
  options: grpc.CallOptions = {},
): Promise<{ response: Buffer; headers: grpc.Metadata }> {
  return new Promise((resolve, reject) => {
    let headers = new grpc.Metadata();
    const call = (client as unknown as Record<string, (...args: unknown[]) => grpc.ClientUnaryCall>)[method]!.call(
      client,
      request,
      metadata,
      options,
      (error: grpc.ServiceError | null, response: Buffer) => (error ? reject(error) : resolve({ response, headers })),
    );
    call.on("metadata", (received: grpc.Metadata) => {
      headers = received;
    });
  });
}

describe("tunnel agent", () => {
  let dir: string;
  let backend: GrpcBackend;
  let server: TestServer;
  let client: InstanceType<typeof EchoClient>;
  const agents: TunnelAgent[] = [];

  const startAgent = async (overrides: Partial<Parameters<typeof createTunnelAgent>[0]> = {}) => {
    const agent = createTunnelAgent({
      serverUrl: server.url,
      token: TOKEN,
      group: GROUP,
      clientId: `agent-${agents.length}`,
      rulesPath: join(dir, "agent.yaml"),
      reconnect: { initialMs: 50, maxMs: 300 },
      drainTimeoutMs: 5_000,
      logger: process.env.STREAMGATE_TEST_LOG_LEVEL ? createLogger(process.env.STREAMGATE_TEST_LOG_LEVEL) : undefined,
      ...overrides,
    });
    agents.push(agent);
    await withTimeout(agent.start(), 10_000, "the agent to register");
    return agent;
  };
  const grpcEntry = () => {
    const addresses = server.server.tunnel?.addresses();
    assert.ok(addresses, "the tunnel entries listen");
    return `127.0.0.1:${addresses.grpc.port}`;
  };
  /** Waits until the server has standby streams of a registered agent (requests would otherwise wait for one). */
  const agentReady = () =>
    waitFor(() => (server.server.tunnel?.agents() ?? []).some((agent) => agent.standby > 0 && !agent.draining), {
      timeoutMs: 10_000,
      describe: () => `an agent with standby streams: ${JSON.stringify(server.server.tunnel?.agents())}`,
    });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "streamgate-agent-test-"));
    backend = await startGrpcBackend("a");
    writeFileSync(join(dir, "server.yaml"), serverRules());
    writeFileSync(join(dir, "agent.yaml"), agentRules([backend]));
    server = await startTestServer({ tunnelRulesPath: join(dir, "server.yaml"), tunnelHttpPort: 0, tunnelGrpcPort: 0 });
    await startAgent();
    await agentReady();
    client = new EchoClient(grpcEntry(), grpc.credentials.createInsecure());
  });
  after(async () => {
    client?.close();
    await Promise.all(agents.map((agent) => agent.close()));
    await server?.close();
    await backend?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("tunnel agent - a grpc-js call crosses entry, server, agent and backend with metadata and trailers", async () => {
    const metadata = new grpc.Metadata();
    metadata.set("x-echo-text", "through the tunnel");
    metadata.set("x-echo-bin", Buffer.from([0, 1, 2, 255]));
    const { response, headers } = await unary(client, "Unary", Buffer.from("ping"), metadata);
    assert.equal(response.toString(), "ping");
    assert.deepEqual(headers.get("x-echo-text"), ["through the tunnel"]);
    assert.deepEqual(headers.get("x-echo-bin"), [Buffer.from([0, 1, 2, 255])]);
    const seen = backend.log.calls.at(-1)!.metadata;
    assert.match(String(seen.get("traceparent")[0]), /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
  });

  it("tunnel agent - a backend error keeps its status, message and details", async () => {
    const error = await unary(client, "Fail", Buffer.alloc(0)).then(
      () => assert.fail("Fail must fail"),
      (caught: grpc.ServiceError) => caught,
    );
    assert.equal(error.code, grpc.status.NOT_FOUND);
    assert.equal(error.details, "no such thing: 100%");
    assert.deepEqual(error.metadata.get("grpc-status-details-bin"), [Buffer.from([8, 5, 18, 4, 110, 111, 112, 101])]);
  });

  it("tunnel agent - a deadline reaches the backend, which ends the call with DEADLINE_EXCEEDED", async () => {
    const error = await unary(client, "Sleep", Buffer.alloc(0), new grpc.Metadata(), {
      deadline: Date.now() + 400,
    }).then(
      () => assert.fail("Sleep must time out"),
      (caught: grpc.ServiceError) => caught,
    );
    assert.equal(error.code, grpc.status.DEADLINE_EXCEEDED);
  });

  it("tunnel agent - a client's cancel reaches the backend through server and agent", async () => {
    const cancelled = backend.log.cancelled;
    const arrived = backend.nextSleep();
    const call = (client as unknown as Record<string, (...args: unknown[]) => grpc.ClientUnaryCall>).Sleep!.call(
      client,
      Buffer.alloc(0),
      () => undefined,
    );
    await withTimeout(arrived, 10_000, "the Sleep call to reach the backend");
    call.cancel();
    await waitFor(() => backend.log.cancelled > cancelled, {
      timeoutMs: 10_000,
      describe: () => "the backend to see the cancel",
    });
  });

  it("tunnel agent - a request no agent route matches is UNIMPLEMENTED, naming the method", async () => {
    const error = await new Promise<grpc.ServiceError>((resolve) =>
      client.makeUnaryRequest(
        "/test.Unrouted/Call",
        (value: Buffer) => value,
        (value: Buffer) => value,
        Buffer.alloc(0),
        (caught) => resolve(caught as grpc.ServiceError),
      ),
    );
    assert.equal(error.code, grpc.status.UNIMPLEMENTED);
    assert.match(error.details, /no agent route matches gRPC method \/test\.Unrouted\/Call/);
  });

  it("tunnel agent - reports upstream health to the server", async () => {
    await waitFor(
      () =>
        (server.server.tunnel?.agents() ?? []).some((agent) =>
          agent.upstreams.some((upstream) => upstream.address === backend.address),
        ),
      { timeoutMs: 5_000, describe: () => JSON.stringify(server.server.tunnel?.agents()) },
    );
  });

  it("tunnel agent - a refused token rejects start() with UNAUTHENTICATED and the CLI exits 1 with one line", async () => {
    const refused = createTunnelAgent({
      serverUrl: server.url,
      token: "not-a-token",
      group: GROUP,
      rulesPath: join(dir, "agent.yaml"),
      reconnect: { initialMs: 50, maxMs: 100 },
    });
    const error = (await refused.start().then(
      () => assert.fail("a bad token must be refused"),
      (caught: unknown) => caught,
    )) as StreamgateError;
    assert.equal(error.code, Code.UNAUTHENTICATED);
    assert.equal(error.reason, "TUNNEL_AGENT_REFUSED");
    assert.equal(refused.status().registrations, 0);
    await refused.close();

    const child = spawn(
      process.execPath,
      [streamgateBin, "agent", "--server", server.url, "--group", GROUP, "--config", join(dir, "agent.yaml")],
      {
        stdio: ["ignore", "ignore", "pipe"],
        env: { ...process.env, STREAMGATE_AGENT_TOKEN: "wrong", STREAMGATE_LOG_LEVEL: "silent" },
      },
    );
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const [exitCode] = (await withTimeout(once(child, "exit"), 20_000, "the refused agent CLI to exit")) as [number];
    assert.equal(exitCode, 1, stderr);
    const lines = stderr.trim().split("\n");
    assert.match(lines.at(-1) ?? "", /^streamgate: UNAUTHENTICATED: the tunnel server refused the agent/);
  });

  it("tunnel agent - refused after a rules reload took its token away, a registered agent keeps retrying and comes back when the token returns", async () => {
    const serverRulesPath = join(dir, "server.yaml");
    const agent = await startAgent({ clientId: "agent-reloaded", reconnect: { initialMs: 50, maxMs: 200 } });
    const registered = () =>
      (server.server.tunnel?.agents() ?? []).some((info) => info.client_id === "agent-reloaded" && info.standby > 0);
    await waitFor(registered, { timeoutMs: 10_000, describe: () => JSON.stringify(server.server.tunnel?.agents()) });
    try {
      writeFileSync(serverRulesPath, serverRules().replace(TOKEN, "another-token"));
      await waitFor(() => /refused/.test(agent.status().lastError ?? ""), {
        timeoutMs: 10_000,
        describe: () => `the agent to be refused: ${JSON.stringify(agent.status())}`,
      });
      assert.equal(agent.status().state, "connecting", "the agent keeps trying");
      assert.equal(registered(), false);
      const before = agent.status().registrations;
      writeFileSync(serverRulesPath, serverRules());
      await waitFor(registered, {
        timeoutMs: 10_000,
        describe: () => `the agent back: ${JSON.stringify(agent.status())}`,
      });
      assert.equal(agent.status().state, "connected");
      assert.ok(agent.status().registrations > before);
    } finally {
      writeFileSync(serverRulesPath, serverRules());
      await agent.close();
    }
    // Every other agent of the suite is back too (they were refused the same way).
    await agentReady();
  });

  it("tunnel agent - the CLI agent registers, and SIGTERM drains it and exits 0", async () => {
    const child = spawn(
      process.execPath,
      [
        streamgateBin,
        "agent",
        "--server",
        server.url,
        "--group",
        GROUP,
        "--config",
        join(dir, "agent.yaml"),
        "--client-id",
        "cli-agent",
      ],
      {
        stdio: ["ignore", "ignore", "pipe"],
        env: { ...process.env, STREAMGATE_AGENT_TOKEN: TOKEN, STREAMGATE_LOG_LEVEL: "warn" },
      },
    );
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const exited = once(child, "exit");
    try {
      await waitFor(() => (server.server.tunnel?.agents() ?? []).some((agent) => agent.client_id === "cli-agent"), {
        timeoutMs: 20_000,
        describe: () => `the CLI agent to register: ${stderr}`,
      });
      child.kill("SIGTERM");
      const [exitCode] = (await withTimeout(exited, 15_000, "the CLI agent to exit after SIGTERM")) as [number];
      assert.equal(exitCode, 0, stderr);
      assert.match(stderr, /streamgate agent: registered\n/);
      assert.match(stderr, /SIGTERM, draining/);
      await waitFor(() => !(server.server.tunnel?.agents() ?? []).some((agent) => agent.client_id === "cli-agent"), {
        timeoutMs: 5_000,
        describe: () => JSON.stringify(server.server.tunnel?.agents()),
      });
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });

  it("tunnel agent - a group the token does not allow is PERMISSION_DENIED", async () => {
    const denied = createTunnelAgent({
      serverUrl: server.url,
      token: TOKEN,
      group: "someone-else",
      rulesPath: join(dir, "agent.yaml"),
    });
    const error = (await denied.start().then(
      () => assert.fail("the group must be refused"),
      (caught: unknown) => caught,
    )) as StreamgateError;
    assert.equal(error.code, Code.PERMISSION_DENIED);
    await denied.close();
  });

  it("tunnel agent - a rules file edit takes effect without a restart", async () => {
    const second = await startGrpcBackend("b");
    try {
      writeFileSync(join(dir, "agent.yaml"), agentRules([second]));
      await waitFor(
        async () => {
          const { headers } = await unary(client, "Unary", Buffer.from("?"));
          return headers.get("x-backend")[0] === "b";
        },
        { timeoutMs: 10_000, intervalMs: 100, describe: () => "calls to reach the backend of the edited rules" },
      );
    } finally {
      writeFileSync(join(dir, "agent.yaml"), agentRules([backend]));
      await waitFor(
        async () => {
          const { headers } = await unary(client, "Unary", Buffer.from("?"));
          return headers.get("x-backend")[0] === "a";
        },
        { timeoutMs: 10_000, intervalMs: 100, describe: () => "calls to go back to the first backend" },
      );
      await second.close();
    }
  });

  it("tunnel agent - drain lets live calls finish, then the agent stops taking requests", async () => {
    const draining = await startAgent({ clientId: "drainer" });
    await waitFor(() => (server.server.tunnel?.agents() ?? []).filter((agent) => agent.standby > 0).length >= 2, {
      timeoutMs: 10_000,
      describe: () => JSON.stringify(server.server.tunnel?.agents()),
    });
    // Bidi calls stay open until the client ends them; the balancer spreads them over both agents.
    const calls = Array.from({ length: 6 }, () => {
      const call = (client as unknown as { Bidi(): grpc.ClientDuplexStream<Buffer, Buffer> }).Bidi();
      const received: string[] = [];
      call.on("data", (message: Buffer) => received.push(message.toString()));
      const status = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
      call.on("error", () => undefined);
      call.write(Buffer.from("before"));
      return { call, received, status };
    });
    await waitFor(() => calls.every(({ received }) => received.length === 1), {
      timeoutMs: 10_000,
      describe: () => "every bidi call to echo its first message",
    });
    assert.ok(draining.status().inFlight > 0, `the draining agent carries calls: ${JSON.stringify(draining.status())}`);
    const drained = draining.drain();
    for (const { call } of calls) call.write(Buffer.from("during"));
    await waitFor(() => calls.every(({ received }) => received.length === 2), {
      timeoutMs: 10_000,
      describe: () => "every bidi call to keep working while its agent drains",
    });
    assert.notEqual(draining.status().state, "closed", "drain waits for the live calls");
    for (const { call } of calls) call.end();
    const statuses = await Promise.all(calls.map(({ status }) => status));
    assert.deepEqual(
      statuses.map((status) => status.code),
      calls.map(() => grpc.status.OK),
    );
    await withTimeout(drained, 10_000, "the drain to finish");
    assert.equal(draining.status().state, "closed");
    await waitFor(() => !(server.server.tunnel?.agents() ?? []).some((agent) => agent.client_id === "drainer"), {
      timeoutMs: 5_000,
      describe: () => JSON.stringify(server.server.tunnel?.agents()),
    });
    const { response } = await unary(client, "Unary", Buffer.from("still served"));
    assert.equal(response.toString(), "still served");
  });
});

describe("tunnel agent over mTLS", () => {
  it("tunnel agent - dials https:// with a private CA and a client certificate; without one it keeps retrying", async () => {
    const dir = mkdtempSync(join(tmpdir(), "streamgate-agent-tls-"));
    const ca = createTestCa();
    const serverCert = ca.issue("localhost", "DNS:localhost,IP:127.0.0.1");
    const clientCert = ca.issue("agent-tls");
    const backend = await startGrpcBackend("a");
    writeFileSync(join(dir, "server.yaml"), serverRules());
    writeFileSync(join(dir, "agent.yaml"), agentRules([backend]));
    const server = await startTestServer({
      tlsCertPath: serverCert.certPath,
      tlsKeyPath: serverCert.keyPath,
      tlsClientCaPath: ca.certPath,
      tunnelRulesPath: join(dir, "server.yaml"),
      tunnelHttpPort: 0,
      tunnelGrpcPort: 0,
    });
    assert.match(server.url, /^https:/);
    const agent = createTunnelAgent({
      serverUrl: server.url,
      token: TOKEN,
      group: GROUP,
      clientId: "tls-agent",
      rulesPath: join(dir, "agent.yaml"),
      tls: { caPath: ca.certPath, certPath: clientCert.certPath, keyPath: clientCert.keyPath },
    });
    const anonymous = createTunnelAgent({
      serverUrl: server.url,
      token: TOKEN,
      group: GROUP,
      clientId: "no-certificate",
      rulesPath: join(dir, "agent.yaml"),
      tls: { caPath: ca.certPath },
      reconnect: { initialMs: 50, maxMs: 200 },
    });
    const client = new EchoClient(
      `localhost:${server.server.tunnel!.addresses()!.grpc.port}`,
      grpc.credentials.createSsl(ca.cert, readFileSync(clientCert.keyPath), readFileSync(clientCert.certPath)),
    );
    try {
      await withTimeout(agent.start(), 10_000, "the agent to register over mTLS");
      await waitFor(() => (server.server.tunnel?.agents() ?? []).some((info) => info.standby > 0), {
        timeoutMs: 10_000,
        describe: () => JSON.stringify(server.server.tunnel?.agents()),
      });
      const { response } = await unary(client, "Unary", Buffer.from("over tls"), new grpc.Metadata(), {
        deadline: Date.now() + 5_000,
      });
      assert.equal(response.toString(), "over tls");
      void anonymous.start().catch(() => undefined);
      await waitFor(() => anonymous.status().lastError !== null, {
        timeoutMs: 10_000,
        describe: () => `the agent without a certificate to fail: ${JSON.stringify(anonymous.status())}`,
      });
      assert.equal(anonymous.status().registrations, 0);
      assert.ok(!(server.server.tunnel?.agents() ?? []).some((info) => info.client_id === "no-certificate"));
    } finally {
      client.close();
      await anonymous.close();
      await agent.close();
      await server.close();
      await backend.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("tunnel agent rotation", () => {
  it("tunnel agent - sessions rotate make-before-break while calls keep succeeding", async () => {
    const dir = mkdtempSync(join(tmpdir(), "streamgate-agent-rotate-"));
    const backend = await startGrpcBackend("a");
    writeFileSync(join(dir, "server.yaml"), serverRules());
    writeFileSync(join(dir, "agent.yaml"), agentRules([backend]));
    const server = await startTestServer({
      tunnelRulesPath: join(dir, "server.yaml"),
      tunnelHttpPort: 0,
      tunnelGrpcPort: 0,
      tunnelRotateAfterMs: 1_000,
    });
    const agent = createTunnelAgent({
      serverUrl: server.url,
      token: TOKEN,
      group: GROUP,
      clientId: "rotating",
      rulesPath: join(dir, "agent.yaml"),
    });
    const client = new EchoClient(
      `127.0.0.1:${server.server.tunnel!.addresses()!.grpc.port}`,
      grpc.credentials.createInsecure(),
    );
    try {
      await withTimeout(agent.start(), 10_000, "the agent to register");
      await waitFor(() => (server.server.tunnel?.agents() ?? []).some((info) => info.standby > 0), {
        timeoutMs: 10_000,
        describe: () => JSON.stringify(server.server.tunnel?.agents()),
      });
      let calls = 0;
      // Calls run back to back across at least two rotations; every one must succeed.
      while (agent.status().registrations < 3) {
        const { response } = await unary(client, "Unary", Buffer.from(`call-${calls}`), new grpc.Metadata(), {
          deadline: Date.now() + 5_000,
        });
        assert.equal(response.toString(), `call-${calls}`);
        calls++;
        assert.ok(calls < 5_000, `no rotation after ${calls} calls: ${JSON.stringify(agent.status())}`);
      }
      assert.ok(calls > 0);
      await waitFor(
        () => (server.server.tunnel?.agents() ?? []).filter((info) => info.client_id === "rotating").length <= 2,
        {
          timeoutMs: 10_000,
          describe: () => `rotated sessions to end: ${JSON.stringify(server.server.tunnel?.agents())}`,
        },
      );
    } finally {
      client.close();
      await agent.close();
      await server.close();
      await backend.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("tunnel agent reconnect", () => {
  it("tunnel agent - reconnects after the server process restarts on the same port, and traffic flows again", async () => {
    const dir = mkdtempSync(join(tmpdir(), "streamgate-agent-restart-"));
    const backend = await startGrpcBackend("a");
    writeFileSync(join(dir, "server.yaml"), serverRules());
    writeFileSync(join(dir, "agent.yaml"), agentRules([backend]));
    const [httpPort, grpcPort] = [await findFreePort(), await findFreePort()];
    const serverArgs = (port: number) => [
      "--port",
      String(port),
      "--data-dir",
      join(dir, "data"),
      "--drain-ms",
      "500",
      "--tunnel-rules",
      join(dir, "server.yaml"),
      "--tunnel-http-port",
      String(httpPort),
      "--tunnel-grpc-port",
      String(grpcPort),
    ];
    let server: SpawnedServer = await spawnServer(serverArgs(0));
    const port = server.port;
    const agent = createTunnelAgent({
      serverUrl: server.url,
      token: TOKEN,
      group: GROUP,
      clientId: "restarting",
      rulesPath: join(dir, "agent.yaml"),
      reconnect: { initialMs: 50, maxMs: 300 },
    });
    let client: InstanceType<typeof EchoClient> | undefined;
    try {
      await withTimeout(agent.start(), 10_000, "the agent to register");
      const call = async (text: string) => {
        client?.close();
        client = new EchoClient(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure());
        return (await unary(client, "Unary", Buffer.from(text), new grpc.Metadata(), { deadline: Date.now() + 5_000 }))
          .response;
      };
      await waitFor(async () => (await call("first").catch(() => undefined))?.toString() === "first", {
        timeoutMs: 10_000,
        intervalMs: 100,
        describe: () => "a call through the first server",
      });
      await server.kill("SIGKILL");
      await waitFor(() => agent.status().state === "connecting", {
        timeoutMs: 5_000,
        describe: () => `the agent to notice the lost session: ${JSON.stringify(agent.status())}`,
      });
      server = await spawnServer(serverArgs(port));
      await waitFor(() => agent.status().registrations >= 2, {
        timeoutMs: 10_000,
        describe: () => `the agent to register again: ${JSON.stringify(agent.status())}`,
      });
      await waitFor(async () => (await call("again").catch(() => undefined))?.toString() === "again", {
        timeoutMs: 10_000,
        intervalMs: 100,
        describe: () => "a call through the restarted server",
      });
    } finally {
      client?.close();
      await agent.close();
      await server.kill("SIGTERM");
      await backend.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("tunnel agent - an in-process server close() ends the agent's session at once, not after missed heartbeats", {
    timeout: 30_000,
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "streamgate-agent-close-"));
    const backend = await startGrpcBackend("a");
    writeFileSync(join(dir, "server.yaml"), serverRules());
    writeFileSync(join(dir, "agent.yaml"), agentRules([backend]));
    const own = await startTestServer({
      tunnelRulesPath: join(dir, "server.yaml"),
      tunnelHttpPort: 0,
      tunnelGrpcPort: 0,
      // Heartbeats far apart: noticing through missed heartbeats would take 30 s.
      tunnelHeartbeatMs: 10_000,
    });
    const agent = createTunnelAgent({
      serverUrl: own.url,
      token: TOKEN,
      group: GROUP,
      clientId: "closed-under",
      rulesPath: join(dir, "agent.yaml"),
      reconnect: { initialMs: 50, maxMs: 300 },
    });
    try {
      await withTimeout(agent.start(), 10_000, "the agent to register");
      await waitFor(() => (own.server.tunnel?.agents() ?? []).some((info) => info.standby > 0), {
        timeoutMs: 10_000,
        describe: () => "the agent's standby streams",
      });
      const closing = own.close({ allowOpenConnections: true });
      await waitFor(() => agent.status().state === "connecting" && agent.status().sessions.length === 0, {
        timeoutMs: 3_000,
        describe: () => `the agent to notice the server's close: ${JSON.stringify(agent.status())}`,
      });
      await withTimeout(closing, 10_000, "the server to close");
    } finally {
      await agent.close();
      await backend.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
