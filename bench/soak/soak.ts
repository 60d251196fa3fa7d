// `npm run soak`: mixed load with random disconnects against `streamgate serve` in a child process for N minutes,
// sampling its RSS and open file descriptors; writes bench/results/soak.{json,md} and a verdict ("flat" or not).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startStreamgateProcess } from "../lib/streamgate-process.js";
import { startLoad } from "./load.js";
import { heapUsedBytes, openFileDescriptors, type ProcessSample, residentBytes } from "./process-stats.js";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "30" },
    "sample-seconds": { type: "string" },
    rate: { type: "string", default: "200" },
    "rss-tolerance": { type: "string", default: "0.25" },
    "fd-slack": { type: "string", default: "8" },
    out: { type: "string", default: join(repoRoot, "bench/results") },
  },
});
const minutes = Number(values.minutes);
if (!(minutes > 0)) throw new Error(`--minutes must be > 0, got ${values.minutes}`);
const durationMs = minutes * 60_000;
/** Default: 10 s, but at least 12 samples on a short run. */
const sampleMs = Number(values["sample-seconds"] ?? Math.min(10, (minutes * 60) / 12)) * 1000;
/** The first 20% of the run (at most 5 min) is warm-up: JIT, caches, SQLite pages, client pools. */
const warmupMs = Math.min(5 * 60_000, durationMs * 0.2);
const rssTolerance = Number(values["rss-tolerance"]);
const fdSlack = Number(values["fd-slack"]);

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;

async function createResources(url: string, topic: string, subscription: string): Promise<void> {
  for (const [path, body] of [
    [`/v1/${topic}`, { messageRetentionDuration: "600s" }],
    [`/v1/${subscription}`, { topic, ackDeadlineSeconds: 30 }],
  ] as const) {
    const response = await fetch(`${url}${path}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    if (response.status !== 200) throw new Error(`PUT ${path}: HTTP ${response.status} ${await response.text()}`);
  }
}

async function main(): Promise<void> {
  const server = await startStreamgateProcess({ repoRoot, args: ["--heartbeat-ms", "5000"] });
  const sample = async (atSeconds: number, published: number, delivered: number): Promise<ProcessSample> => ({
    atSeconds,
    rssBytes: residentBytes(server.pid) ?? Number.NaN,
    heapUsedBytes: await heapUsedBytes(server.url),
    openFds: openFileDescriptors(server.pid) ?? Number.NaN,
    published,
    delivered,
  });
  try {
    const topic = "projects/soak/topics/mixed";
    const subscription = "projects/soak/subscriptions/workers";
    await createResources(server.url, topic, subscription);
    await delay(1_000);
    const baseline = await sample(0, 0, 0);
    console.log(
      `soak: server pid ${server.pid} at ${server.url}; ${minutes} min, sample every ${sampleMs / 1000} s; baseline RSS ${mb(baseline.rssBytes)} MB, ${baseline.openFds} fds`,
    );

    const load = startLoad({
      url: server.url,
      hostPort: server.target,
      topic,
      subscription,
      rate: Number(values.rate),
      sseClients: 8,
      wsClients: 8,
      grpcEventClients: 4,
      pullClients: 2,
      disconnectChance: 0.05,
    });
    const started = Date.now();
    const samples: ProcessSample[] = [];
    while (Date.now() - started < durationMs) {
      await delay(Math.min(sampleMs, durationMs - (Date.now() - started)));
      const current = await sample((Date.now() - started) / 1000, load.counters.published, load.counters.delivered);
      samples.push(current);
      const c = load.counters;
      console.log(
        `soak ${current.atSeconds.toFixed(0).padStart(5)} s: RSS ${mb(current.rssBytes)} MB, heap ${mb(current.heapUsedBytes)} MB, ${current.openFds} fds, ` +
          `published ${c.published}, delivered ${c.delivered}, reconnects ${c.reconnects}, errors ${c.errors}, order violations ${c.orderViolations}`,
      );
    }
    const counters = { ...load.counters };
    await load.stop();
    // Closed clients: the server's sockets go once it sees the FIN/RST; wait (bounded) for the fd count to settle.
    let afterClose = await sample(durationMs / 1000, counters.published, counters.delivered);
    for (let waited = 0; waited < 15_000 && afterClose.openFds > baseline.openFds + fdSlack; waited += 500) {
      await delay(500);
      afterClose = await sample((Date.now() - started) / 1000, counters.published, counters.delivered);
    }

    const warm = samples.filter((s) => s.atSeconds * 1000 >= warmupMs);
    // RSS follows the garbage collector's sawtooth: compare its floors (the lowest sample of the first and
    // of the last third after warm-up), which show what stays retained; a leak raises the floor.
    const third = Math.max(1, Math.floor(warm.length / 3));
    const plateauSamples = warm.slice(0, third);
    const endSamples = warm.slice(-third);
    const floor = (xs: number[]) => Math.min(...xs.filter((x) => Number.isFinite(x)));
    const plateauRss = floor(plateauSamples.map((s) => s.rssBytes));
    const endRss = floor(endSamples.map((s) => s.rssBytes));
    const heap = {
      plateauMb: mb(floor(plateauSamples.map((s) => s.heapUsedBytes))),
      endMb: mb(floor(endSamples.map((s) => s.heapUsedBytes))),
      maxMb: mb(Math.max(...samples.map((s) => s.heapUsedBytes).filter((x) => Number.isFinite(x)))),
    };
    const maxRss = Math.max(...samples.map((s) => s.rssBytes));
    const rssFlat = endRss <= plateauRss * (1 + rssTolerance);
    const fdsFlat = afterClose.openFds <= baseline.openFds + fdSlack;
    const seconds = durationMs / 1000;
    const result = {
      name: "soak",
      date: new Date().toISOString(),
      minutes,
      sampleSeconds: sampleMs / 1000,
      warmupSeconds: warmupMs / 1000,
      load: {
        rateMessagesPerSecond: Number(values.rate),
        sseClients: 8,
        wsClients: 8,
        grpcEventClients: 4,
        pullClients: 2,
        disconnectChancePerSecond: 0.05,
      },
      rss: {
        startMb: mb(baseline.rssBytes),
        plateauFloorMb: mb(plateauRss),
        endFloorMb: mb(endRss),
        maxMb: mb(maxRss),
        tolerance: rssTolerance,
      },
      heapUsed: heap,
      fds: {
        baseline: baseline.openFds,
        max: Math.max(...samples.map((s) => s.openFds)),
        endUnderLoad: samples.at(-1)?.openFds ?? null,
        afterClientsClosed: afterClose.openFds,
        slack: fdSlack,
      },
      throughput: {
        publishedPerSecond: Math.round(counters.published / seconds),
        deliveredPerSecond: Math.round(counters.delivered / seconds),
      },
      counters,
      verdict:
        rssFlat && fdsFlat
          ? "flat"
          : `not flat (${rssFlat ? "" : "RSS grew"}${!rssFlat && !fdsFlat ? ", " : ""}${fdsFlat ? "" : "fds did not return to baseline"})`,
      samples: samples.map((s) => ({ ...s, rssMb: mb(s.rssBytes) })),
    };
    mkdirSync(values.out!, { recursive: true });
    writeFileSync(join(values.out!, "soak.json"), `${JSON.stringify(result, null, 2)}\n`);
    const markdown = [
      `# Soak (${minutes} min, ${result.date})`,
      "",
      `Load: ${result.load.rateMessagesPerSecond} msg/s published (2 REST + 2 gRPC publishers, batches of 10), 2 StreamingPull subscribers acking, 8 SSE + 8 WebSocket + 4 gRPC Events/Subscribe live streams; each client disconnects with probability ${result.load.disconnectChancePerSecond}/s (half abrupt) and resumes from its last offset.`,
      "",
      "| figure | value |",
      "| --- | --- |",
      `| RSS start / early floor / end floor / max | ${result.rss.startMb} / ${result.rss.plateauFloorMb} / ${result.rss.endFloorMb} / ${result.rss.maxMb} MB |`,
      `| V8 heap used: early floor / end floor / max | ${heap.plateauMb} / ${heap.endMb} / ${heap.maxMb} MB |`,
      `| open fds baseline / max under load / after clients closed | ${result.fds.baseline} / ${result.fds.max} / ${result.fds.afterClientsClosed} |`,
      `| published / delivered | ${result.throughput.publishedPerSecond} / ${result.throughput.deliveredPerSecond} msg/s |`,
      `| reconnects / errors / order violations | ${counters.reconnects} / ${counters.errors} / ${counters.orderViolations} |`,
      `| verdict | **${result.verdict}** (RSS floor of the last third within ${rssTolerance * 100}% of the first third's after ${result.warmupSeconds} s warm-up; fds back to baseline + ${fdSlack}) |`,
      "",
      ...(counters.errorSamples.length > 0
        ? ["Errors (first ones):", "", ...counters.errorSamples.map((e) => `- ${e}`), ""]
        : []),
    ].join("\n");
    writeFileSync(join(values.out!, "soak.md"), markdown);
    console.log(`\n${markdown}\nwrote ${join(values.out!, "soak.json")} and soak.md`);
    if (result.verdict !== "flat" || counters.orderViolations > 0) process.exitCode = 1;
  } finally {
    await server.stop();
  }
}

await main();
