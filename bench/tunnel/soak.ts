// Tunnel leak soak: `node --expose-gc --import tsx bench/tunnel/soak.ts [--requests 100000] [--concurrency 64]`.
// Runs the mixed workload of test/harness/interop-chaos.ts (random client cancels, backend failures,
// missed deadlines, unary and bidi) through the gRPC entry and one agent, then checks that the tunnel
// server's in-flight and pending counts, the agent's in-flight count and the backend's open calls all
// return to 0. Prints progress, the outcome counts, RSS before/after, and exits 1 on a leak.
import { parseArgs } from "node:util";
import { createInteropClients } from "../../test/harness/interop-cases.js";
import { runChaos } from "../../test/harness/interop-chaos.js";
import { startTunnelStack } from "../../test/harness/interop-tunnel.js";
import { waitFor } from "../../test/harness/wait-for.js";

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "100000" },
    concurrency: { type: "string", default: "64" },
    seed: { type: "string", default: "1" },
  },
});
const requests = Number(values.requests);
const concurrency = Number(values.concurrency);
const log = (line: string) => process.stderr.write(`${line}\n`);
const mib = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MiB`;
/** V8 heap in use after a full collection (with --expose-gc; else as it is): what a leak grows. */
const heap = () => {
  (globalThis as { gc?: () => void }).gc?.();
  return `heap ${mib(process.memoryUsage().heapUsed)}${"gc" in globalThis ? " after GC" : ""}`;
};

// No call log in the backend: it would grow with every request and hide what the tunnel itself holds.
const stack = await startTunnelStack({ recordCalls: false });
// Several client connections, as real clients would be (see runChaos).
const clients = Array.from({ length: 8 }, () => createInteropClients(stack.grpcTarget()));
let exitCode = 0;
try {
  const rssBefore = process.memoryUsage().rss;
  log(`soak: ${requests} requests, ${concurrency} in flight; RSS ${mib(rssBefore)}, ${heap()}`);
  const report = await runChaos(clients, {
    requests,
    concurrency,
    seed: Number(values.seed),
    progressEvery: Math.max(1_000, Math.round(requests / 10)),
    onProgress: (done) =>
      log(
        `  ${done} done, server ${JSON.stringify(stack.tunnelStats())}, RSS ${mib(process.memoryUsage().rss)}, ${heap()}`,
      ),
  });
  log(`outcomes: ${JSON.stringify(report.outcomes)}`);
  log(
    `${report.requests} requests in ${Math.round(report.elapsedMs / 1000)} s (${Math.round(report.requests / (report.elapsedMs / 1000))}/s), unexpected ${report.unexpected} ${report.unexpectedSamples.join("; ")}`,
  );
  if (report.unexpected > 0) exitCode = 1;
  await waitFor(
    () => {
      const stats = stack.tunnelStats();
      return (
        stats.inFlight === 0 &&
        stats.pending === 0 &&
        stack.agents[0]!.agent.status().inFlight === 0 &&
        stack.backend.stats().active === 0
      );
    },
    { timeoutMs: 15_000, describe: () => "pending work did not drain" },
  ).catch((error: Error) => {
    exitCode = 1;
    log(`LEAK: ${error.message}`);
  });
  log(
    `after: server ${JSON.stringify(stack.tunnelStats())}, agent ${JSON.stringify(stack.agents[0]!.agent.status())}, backend ${JSON.stringify(stack.backend.stats())}, RSS ${mib(process.memoryUsage().rss)} (was ${mib(rssBefore)}), ${heap()}`,
  );
} finally {
  for (const set of clients) set.close();
  await stack.close();
}
process.exitCode = exitCode;
