// Server CPU per message of Publish (100 × 256 B) through gRPC (issue 12's target: ≤ 5 µs, embedded engine), beside
// the floor: bare node:http2 + better-sqlite3 storing the same request durably (floor-server.ts), in the same run.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { PublishRequestSchema, TopicSchema } from "../../src/gen/google/pubsub/v1/pubsub_pb.js";
import { grpcFrame, unaryCall } from "../grpc-cpu/grpc-call.js";
import type { BenchContext, Benchmark } from "../lib/benchmark.js";
import { processCpuMs } from "../lib/process-cpu.js";
import { makeFigure } from "../lib/report.js";
import { median, round } from "../lib/stats.js";
import { startStreamgateProcess } from "../lib/streamgate-process.js";

export const PUBLISH_TOPIC = "projects/bench/topics/publish-batch";
export const PUBLISH_PATH = "/google.pubsub.v1.Publisher/Publish";
/** Issue 12's target: server CPU per message of Publish 100 × 256 B. */
const TARGET_MICROSECONDS = 5;
/** Calls measured per repetition at scale 1 (200,000 messages). */
const MEASURED_CALLS = 2_000;

/** A server under load: its port and the pid whose CPU is read. */
export interface PublishServer {
  name: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** Creates the topic and writes the framed PublishRequest of `messages` × 256 B to `file` (h2load's body). */
export async function writePublishRequest(port: number, messages: number, file: string): Promise<Buffer> {
  const topic = await unaryCall(
    port,
    "/google.pubsub.v1.Publisher/CreateTopic",
    grpcFrame(toBinary(TopicSchema, create(TopicSchema, { name: PUBLISH_TOPIC }))),
  );
  if (topic.status !== "0" && topic.status !== "6") throw new Error(`CreateTopic: grpc-status ${topic.status}`);
  const request = create(PublishRequestSchema, {
    topic: PUBLISH_TOPIC,
    messages: Array.from({ length: messages }, (_, index) => ({ data: new Uint8Array(256).fill(97 + (index % 26)) })),
  });
  const frame = grpcFrame(toBinary(PublishRequestSchema, request));
  writeFileSync(file, frame);
  const first = await unaryCall(port, PUBLISH_PATH, frame);
  if (first.status !== "0") throw new Error(`Publish: grpc-status ${first.status} ${first.message}`);
  return frame;
}

/** `count` Publish calls by h2load (a C client) over one h2c connection, 16 in flight; throws unless all succeed. */
export function runPublishCalls(port: number, body: string, count: number): void {
  const output = execFileSync(
    "h2load",
    [
      ...["-n", String(count), "-c", "1", "-t", "1", "-m", "16"],
      ...["-H", "content-type: application/grpc", "-H", "te: trailers", "-d", body],
      `http://127.0.0.1:${port}${PUBLISH_PATH}`,
    ],
    { encoding: "utf8" },
  );
  const done = /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded/.exec(output);
  if (done === null || Number(done[2]) !== count) throw new Error(`h2load: not every call succeeded\n${output}`);
}

/** Server CPU µs per message over `calls` Publish calls of `messages` each (after a warm-up of a quarter as many). */
export function cpuPerMessage(server: PublishServer, body: string, calls: number, messages: number): number {
  runPublishCalls(server.port, body, Math.max(100, Math.round(calls / 4)));
  const before = processCpuMs(server.pid);
  runPublishCalls(server.port, body, calls);
  const after = processCpuMs(server.pid);
  if (before === null || after === null) throw new Error(`${server.name}: no CPU figures for pid ${server.pid}`);
  return ((after - before) * 1000) / (calls * messages);
}

/** The floor server (floor-server.ts) in a child process. */
export async function startPublishFloor(): Promise<PublishServer> {
  const child: ChildProcess = spawn(process.execPath, [join(import.meta.dirname, "floor-server.ts")], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`publish floor server exited (${code}) before listening`)));
    child.stdout?.once("data", (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
  });
  return {
    name: "bare node:http2 + better-sqlite3",
    port,
    pid: child.pid!,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.removeAllListeners("exit");
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

/** One measurement: start the server, write the request, measure, stop. */
async function measure(start: () => Promise<PublishServer>, calls: number, messages: number): Promise<number> {
  const server = await start();
  const dir = mkdtempSync(join(tmpdir(), "publish-batch-"));
  try {
    const body = join(dir, "request.bin");
    await writePublishRequest(server.port, messages, body);
    return cpuPerMessage(server, body, calls, messages);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await server.stop();
  }
}

export const publishBatchBenchmark: Benchmark = {
  name: "publish-batch",
  title: "Publish 100 × 256 B through gRPC: server CPU per message (embedded engine)",
  maxDurationMs: 300_000,
  async run(context: BenchContext) {
    const calls = Math.max(200, Math.round(MEASURED_CALLS * context.scale));
    const messages = 100;
    const startStreamgate = async (): Promise<PublishServer> => {
      const server = await startStreamgateProcess({
        repoRoot: context.serverRoot,
        nodeArgs: context.cpuProfileDir === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", context.cpuProfileDir],
      });
      return { name: "streamgate", port: server.port, pid: server.pid, stop: () => server.stop() };
    };
    const own: number[] = [];
    const anchor: number[] = [];
    // Anchor and streamgate alternate, one fresh server each, so load on the machine falls on both alike.
    for (let repetition = 0; repetition < context.repetitions; repetition++) {
      anchor.push(await measure(startPublishFloor, calls, messages));
      if (!context.anchorOnly) own.push(await measure(startStreamgate, calls, messages));
      context.log(
        `publish-batch: rep ${repetition + 1}: streamgate ${round(own.at(-1) ?? Number.NaN, 2)} µs/msg, floor ${round(anchor.at(-1)!, 2)} µs/msg`,
      );
    }
    return {
      parameters: { messagesPerCall: messages, messageBytes: 256, callsPerRepetition: calls, inFlight: 16 },
      figures: [
        makeFigure({
          name: "server CPU per message, Publish 100 × 256 B",
          unit: "µs",
          higherIsBetter: false,
          samples: own,
          anchorName: "bare node:http2 + better-sqlite3 (floor)",
          anchorSamples: anchor,
          target: { kind: "valueBelow", value: TARGET_MICROSECONDS },
          median,
        }),
      ],
      details: {},
      notes: [
        `h2load (a C client) sends ${calls} identical framed PublishRequests over one h2c connection, 16 in flight, after a warm-up of a quarter as many; CPU (user + system, every thread) from /proc/<pid>/stat around them.`,
        `Issue 12's target is ≤ ${TARGET_MICROSECONDS} µs; the table's "<" is the runner's only upper-bound kind.`,
        "The floor stores the same 100 messages durably (same table and pragmas, multi-row INSERTs, commit before the answer) with no validation, protobuf library, interceptors or group commit.",
      ],
    };
  },
};
