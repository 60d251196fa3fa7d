// Two agents in one group, one of them a `streamgate agent` child process that is killed with SIGKILL
// mid-stream: its in-flight calls fail with UNAVAILABLE promptly, new calls go to the other agent, and the
// restarted agent receives traffic again. Each agent has its own backend, so the backend tells who served.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { type EchoMessage, type InteropBackend, startInteropBackend } from "../harness/interop-backend.js";
import { createInteropClients, type InteropClients } from "../harness/interop-cases.js";
import { type AgentProcess, spawnAgentProcess, startTunnelStack, type TunnelStack } from "../harness/interop-tunnel.js";
import { waitFor, withTimeout } from "../harness/wait-for.js";

type UnaryFn = (
  request: EchoMessage,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: EchoMessage) => void,
) => grpc.ClientUnaryCall;
type StreamFn = (
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
) => grpc.ClientDuplexStream<EchoMessage, EchoMessage>;

const message = (sequence: number, delayMs = 0): EchoMessage => ({
  body: Buffer.from(`m${sequence}`),
  sequence,
  delayMs,
  failCode: 0,
});

function unary(clients: InteropClients, request: EchoMessage): Promise<grpc.status> {
  return new Promise((resolve) => {
    (clients.echo as unknown as { Unary: UnaryFn }).Unary.call(
      clients.echo,
      request,
      new grpc.Metadata(),
      { deadline: Date.now() + 15_000 },
      (error) => resolve(error === null ? grpc.status.OK : error.code),
    );
  });
}

/** A long-lived bidi stream: echoes count, final status. */
function openStream(clients: InteropClients) {
  const call = (clients.echo as unknown as { Stream: StreamFn }).Stream.call(clients.echo, new grpc.Metadata(), {
    deadline: Date.now() + 60_000,
  });
  const state = { echoes: 0, status: null as grpc.StatusObject | null, endedAt: 0 };
  call.on("data", () => {
    state.echoes += 1;
  });
  call.on("error", () => {});
  call.on("status", (status: grpc.StatusObject) => {
    state.status = status;
    state.endedAt = Date.now();
  });
  return { call, state };
}

describe("tunnel failover", () => {
  let stack: TunnelStack;
  let backendB: InteropBackend;
  let agentB: AgentProcess | null = null;
  let clients: InteropClients;

  before(async () => {
    // Agent "a" runs in this process against the stack's backend; agent "b" is a child process with its own.
    stack = await startTunnelStack({ agents: 0 });
    await stack.startAgent("a");
    backendB = await startInteropBackend();
    clients = createInteropClients(stack.grpcTarget());
  });
  after(async () => {
    clients?.close();
    await agentB?.kill("SIGKILL");
    await stack?.close();
    await backendB?.close();
  });

  const spawnB = () =>
    spawnAgentProcess({
      serverUrl: stack.agentServerUrl,
      rules: stack.agentRulesFor(backendB.port, "b"),
      clientId: "b",
    });

  test("tunnel failover - a killed agent's calls fail with UNAVAILABLE fast, others move on, the restarted agent serves again", async () => {
    agentB = spawnB();
    await stack.waitForAgents(["a", "b"], 20_000).catch((error: Error) => {
      throw new Error(`${error.message}\nagent b output:\n${agentB?.output()}`);
    });

    // Open streams until several of them run through agent b (balancing spreads them over both agents).
    const streams: ReturnType<typeof openStream>[] = [];
    await waitFor(
      () => {
        if (streams.length < 60) {
          const stream = openStream(clients);
          stream.call.write(message(streams.length));
          streams.push(stream);
        }
        return backendB.stats().active >= 5 && stack.backend.stats().active >= 5;
      },
      { timeoutMs: 15_000, describe: () => `b ${backendB.stats().active}, a ${stack.backend.stats().active} streams` },
    );
    await waitFor(() => streams.every((stream) => stream.state.echoes >= 1), {
      timeoutMs: 10_000,
      describe: () => "every stream echoed its first message",
    });
    const onB = backendB.stats().active;
    const onA = stack.backend.stats().active;

    const killedAt = Date.now();
    await agentB.kill("SIGKILL");
    // Every stream that ran through b ends with UNAVAILABLE within 5 s; the ones through a stay open.
    await waitFor(() => streams.filter((stream) => stream.state.status !== null).length >= onB, {
      timeoutMs: 5_000,
      describe: () => `${streams.filter((stream) => stream.state.status !== null).length} of ${onB} streams ended`,
    });
    const ended = streams.filter((stream) => stream.state.status !== null);
    assert.equal(ended.length, onB, "streams through agent a ended too");
    for (const stream of ended) {
      assert.equal(stream.state.status!.code, grpc.status.UNAVAILABLE, stream.state.status!.details);
      assert.ok(
        stream.state.endedAt - killedAt < 5_000,
        `a stream ended ${stream.state.endedAt - killedAt} ms after the kill`,
      );
    }
    const alive = streams.filter((stream) => stream.state.status === null);
    assert.equal(alive.length, onA);
    for (const stream of alive) stream.call.write(message(1_000));
    await waitFor(() => alive.every((stream) => stream.state.echoes >= 2), {
      timeoutMs: 5_000,
      describe: () => "streams through agent a stopped echoing after b died",
    });

    // New calls all succeed, through a.
    const startedOnA = stack.backend.stats().started;
    const startedOnB = backendB.stats().started;
    const codes = await Promise.all(Array.from({ length: 30 }, (_, index) => unary(clients, message(index))));
    assert.deepEqual(
      codes.filter((code) => code !== grpc.status.OK).map((code) => grpc.status[code]),
      [],
      "calls failed after one agent of the group died",
    );
    assert.equal(stack.backend.stats().started - startedOnA, 30);
    assert.equal(backendB.stats().started, startedOnB);

    // Agent b comes back and takes requests again.
    agentB = spawnB();
    await stack.waitForAgents(["a", "b"], 20_000);
    const beforeRestartCalls = backendB.stats().started;
    // Concurrent slow calls: fewest-outstanding balancing must use both agents.
    const again = await withTimeout(
      Promise.all(Array.from({ length: 40 }, (_, index) => unary(clients, message(index, 100)))),
      15_000,
      "calls after b restarted",
    );
    assert.ok(
      again.every((code) => code === grpc.status.OK),
      again.map((code) => grpc.status[code]).join(","),
    );
    assert.ok(backendB.stats().started > beforeRestartCalls, "the restarted agent b received no call");

    for (const stream of alive) stream.call.end();
    await waitFor(() => alive.every((stream) => stream.state.status !== null), {
      timeoutMs: 5_000,
      describe: () => "streams through agent a did not end",
    });
    for (const stream of alive) assert.equal(stream.state.status!.code, grpc.status.OK);
  });
});
