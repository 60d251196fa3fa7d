// No leak after many requests with random client cancels, backend failures and missed deadlines: the
// tunnel server's in-flight and pending counts, the agent's in-flight count and the backend's open calls
// all return to 0, and the standby pool is refilled. (bench/tunnel/soak.ts runs 100,000.)
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createInteropClients, type InteropClients } from "../harness/interop-cases.js";
import { runChaos } from "../harness/interop-chaos.js";
import { startTunnelStack, type TunnelStack } from "../harness/interop-tunnel.js";
import { waitFor } from "../harness/wait-for.js";

/** 5,000 keeps the file under 60 s on a loaded 2-core machine; STREAMGATE_TUNNEL_LEAK_REQUESTS=20000 for more. */
const REQUESTS = Number(process.env.STREAMGATE_TUNNEL_LEAK_REQUESTS ?? 5_000);
const CLIENT_CONNECTIONS = 8;

describe("tunnel leak", () => {
  let stack: TunnelStack;
  let clients: InteropClients[] = [];
  before(async () => {
    stack = await startTunnelStack();
    // Several client connections, as many clients would be. Either way the agent's one connection to the
    // backend carries every cancel: its reset budget moves it to fresh sessions (see STREAM_RESET_BUDGET).
    clients = Array.from({ length: CLIENT_CONNECTIONS }, () => createInteropClients(stack.grpcTarget()));
  });
  after(async () => {
    for (const set of clients) set.close();
    await stack?.close();
  });

  test(`tunnel leak - ${REQUESTS} requests with random cancels, failures and deadlines leave nothing pending`, async () => {
    const report = await runChaos(clients, { requests: REQUESTS, concurrency: 64, seed: 4 });
    assert.equal(report.requests, REQUESTS);
    assert.equal(
      report.unexpected,
      0,
      `unexpected outcomes: ${report.unexpectedSamples.join("; ")} (${JSON.stringify(report.outcomes)})`,
    );
    await waitFor(
      () => {
        const stats = stack.tunnelStats();
        const agent = stack.agents[0]!.agent.status();
        return (
          stats.inFlight === 0 && stats.pending === 0 && agent.inFlight === 0 && stack.backend.stats().active === 0
        );
      },
      {
        timeoutMs: 10_000,
        describe: () =>
          `server ${JSON.stringify(stack.tunnelStats())}, agent ${JSON.stringify(stack.agents[0]!.agent.status())}, backend ${JSON.stringify(stack.backend.stats())}`,
      },
    );
    // Every tunnel stream left is a standby again (none stuck busy), and the pool is refilled.
    await waitFor(
      () => stack.tunnelStats().streams === stack.tunnelStats().standby && stack.tunnelStats().standby > 0,
      {
        timeoutMs: 10_000,
        describe: () => JSON.stringify(stack.tunnelStats()),
      },
    );
    // Still serving after all that.
    const after = await runChaos(clients, { requests: 50, concurrency: 8, seed: 5 });
    assert.equal(after.unexpected, 0, after.unexpectedSamples.join("; "));
  });
});
