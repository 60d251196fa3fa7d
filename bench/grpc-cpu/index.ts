// Server CPU per unary gRPC call (GetTopic, Publish 1 message, Acknowledge 1 id): streamgate's lean path and connect-node, against a bare node:http2 floor, driven by h2load.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, type DescMessage, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import {
  AcknowledgeRequestSchema,
  GetTopicRequestSchema,
  PublishRequestSchema,
  PullRequestSchema,
  PullResponseSchema,
  SubscriptionSchema,
  TopicSchema,
} from "../../src/gen/google/pubsub/v1/pubsub_pb.js";
import type { BenchContext, Benchmark } from "../lib/benchmark.js";
import { processCpuMs } from "../lib/process-cpu.js";
import { type Figure, makeFigure } from "../lib/report.js";
import { median, round } from "../lib/stats.js";
import { startStreamgateProcess } from "../lib/streamgate-process.js";
import { grpcFrame, unaryCall } from "./grpc-call.js";

/** Calls measured per server, method and repetition at scale 1 (~1 s of server CPU on connect; /proc ticks are 10 ms). */
export const MEASURED_CALLS = 20_000;
/** Calls before measuring: JIT, caches, SQLite statements. */
const WARMUP_CALLS = 5_000;
/** Concurrent streams on h2load's one connection: enough to keep the server busy, as a client library pipelines. */
const CONCURRENT_STREAMS = 16;
/** The target: server CPU per unary call at most this many times the bare node:http2 floor. */
const FLOOR_RATIO_TARGET = 2;

const PROJECT = "bench-grpc-cpu";
const TOPIC = `projects/${PROJECT}/topics/cpu`;
const SUBSCRIPTION = `projects/${PROJECT}/subscriptions/cpu`;
const PUBLISHER = "/google.pubsub.v1.Publisher";
const SUBSCRIBER = "/google.pubsub.v1.Subscriber";

/** A measured method: its path and the framed request h2load sends on every call. */
export interface Method {
  name: string;
  path: string;
  frame: Buffer;
}

export interface Server {
  name: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** A serialized request built from its init shape. */
function encode<Desc extends DescMessage>(schema: Desc, init: MessageInitShape<Desc>): Uint8Array {
  return toBinary(schema, create(schema, init));
}

function checkH2load(): string | null {
  try {
    return execFileSync("h2load", ["--version"], { encoding: "utf8" }).trim().split("\n")[0] ?? "h2load";
  } catch {
    return null;
  }
}

export async function startFloor(): Promise<Server> {
  const child: ChildProcess = spawn(process.execPath, [join(import.meta.dirname, "floor-server.ts")], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once("error", reject);
    child.stdout?.once("data", (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
  });
  return {
    name: "bare node:http2",
    port,
    pid: child.pid!,
    stop: () =>
      new Promise((resolve) => {
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

async function startStreamgate(context: BenchContext, grpcPath: "lean" | "connect"): Promise<Server> {
  const server = await startStreamgateProcess({
    repoRoot: context.serverRoot,
    args: ["--grpc-path", grpcPath],
    nodeArgs: context.cpuProfileDir === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", context.cpuProfileDir],
  });
  return { name: `streamgate (${grpcPath})`, port: server.port, pid: server.pid, stop: () => server.stop() };
}

async function expectOk(port: number, path: string, frame: Buffer) {
  const result = await unaryCall(port, path, frame);
  if (result.status !== "0") throw new Error(`${path}: grpc-status ${result.status} ${result.message}`);
  return result;
}

/** Creates the topic and subscription and returns the three measured methods (the ack id is a real, pulled one). */
export async function prepare(port: number): Promise<Method[]> {
  const topicFrame = grpcFrame(encode(TopicSchema, { name: TOPIC }));
  await unaryCall(port, `${PUBLISHER}/CreateTopic`, topicFrame);
  await unaryCall(
    port,
    `${SUBSCRIBER}/CreateSubscription`,
    grpcFrame(encode(SubscriptionSchema, { name: SUBSCRIPTION, topic: TOPIC, ackDeadlineSeconds: 600 })),
  );
  const publish = grpcFrame(
    encode(PublishRequestSchema, { topic: TOPIC, messages: [{ data: new Uint8Array(256).fill(97) }] }),
  );
  await expectOk(port, `${PUBLISHER}/Publish`, publish);
  const pulled = await expectOk(
    port,
    `${SUBSCRIBER}/Pull`,
    grpcFrame(encode(PullRequestSchema, { subscription: SUBSCRIPTION, maxMessages: 1 })),
  );
  const ackId = fromBinary(PullResponseSchema, pulled.body.subarray(5)).receivedMessages[0]?.ackId;
  if (ackId === undefined) throw new Error("prepare: Pull returned no message to take an ack id from");
  return [
    {
      name: "GetTopic",
      path: `${PUBLISHER}/GetTopic`,
      frame: grpcFrame(encode(GetTopicRequestSchema, { topic: TOPIC })),
    },
    { name: "Publish (1 × 256 B)", path: `${PUBLISHER}/Publish`, frame: publish },
    {
      name: "Acknowledge (1 id)",
      path: `${SUBSCRIBER}/Acknowledge`,
      frame: grpcFrame(encode(AcknowledgeRequestSchema, { subscription: SUBSCRIPTION, ackIds: [ackId] })),
    },
  ];
}

function h2load(port: number, method: Method, calls: number, dir: string): void {
  const body = join(dir, "request.bin");
  writeFileSync(body, method.frame);
  const output = execFileSync(
    "h2load",
    [
      "-n",
      String(calls),
      "-c",
      "1",
      "-t",
      "1",
      "-m",
      String(CONCURRENT_STREAMS),
      "-H",
      "content-type: application/grpc",
      "-H",
      "te: trailers",
      "-d",
      body,
      `http://127.0.0.1:${port}${method.path}`,
    ],
    { encoding: "utf8" },
  );
  const done = /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded/.exec(output);
  if (done === null || Number(done[2]) !== calls)
    throw new Error(`h2load ${method.path}: not every call succeeded\n${output}`);
}

/** Server CPU microseconds per call of `method` over `calls` calls (after a warm-up). */
export function cpuPerCall(server: Server, method: Method, calls: number, dir: string): number {
  h2load(server.port, method, Math.max(1_000, Math.round(WARMUP_CALLS * (calls / MEASURED_CALLS))), dir);
  const before = processCpuMs(server.pid);
  h2load(server.port, method, calls, dir);
  const after = processCpuMs(server.pid);
  if (before === null || after === null) throw new Error("grpc-cpu: /proc/<pid>/stat is not readable (Linux only)");
  return ((after - before) * 1000) / calls;
}

export const grpcCpuBenchmark: Benchmark = {
  name: "grpc-cpu",
  title: "Server CPU per unary gRPC call: lean path and connect-node vs a bare node:http2 floor",
  maxDurationMs: 10 * 60_000,
  async run(context) {
    const version = checkH2load();
    if (version === null) throw new Error("grpc-cpu needs h2load (Debian package nghttp2-client)");
    const calls = Math.max(2_000, Math.round(MEASURED_CALLS * context.scale));
    const dir = mkdtempSync(join(tmpdir(), "streamgate-bench-grpc-cpu-"));
    const servers: Server[] = [];
    try {
      servers.push(await startFloor());
      if (!context.anchorOnly)
        servers.push(await startStreamgate(context, "connect"), await startStreamgate(context, "lean"));
      const [floor, connectServer, leanServer] = servers as [Server, Server | undefined, Server | undefined];
      // Each streamgate server gets its own topic and ack id; the floor answers any path, so it takes the first list.
      const perServer = new Map<Server, Method[]>();
      for (const server of [connectServer, leanServer])
        if (server !== undefined) perServer.set(server, await prepare(server.port));
      const measured = perServer.values().next().value ?? [
        { name: "echo", path: "/bench.Echo/Call", frame: grpcFrame(new Uint8Array()) },
      ];
      perServer.set(floor, measured);
      for (const [server, list] of perServer)
        for (const method of list) await expectOk(server.port, method.path, method.frame);

      const samples = new Map<string, number[]>();
      const add = (key: string, value: number) => samples.set(key, [...(samples.get(key) ?? []), round(value, 1)]);
      for (let repetition = 0; repetition < context.repetitions; repetition++) {
        for (const [index, method] of measured.entries()) {
          // Paired: the floor, connect and lean back to back for each method, so a noisy moment hits all three.
          add(`floor ${method.name}`, cpuPerCall(floor, method, calls, dir));
          for (const server of [connectServer, leanServer]) {
            if (server === undefined) continue;
            const own = perServer.get(server)![index]!;
            add(`${server.name} ${method.name}`, cpuPerCall(server, own, calls, dir));
          }
          context.log(`grpc-cpu: repetition ${repetition + 1}, ${method.name} done`);
        }
      }
      const figures: Figure[] = [];
      for (const method of measured) {
        const floorSamples = samples.get(`floor ${method.name}`) ?? [];
        const floorMedian = median(floorSamples);
        for (const path of ["lean", "connect"] as const) {
          const own = samples.get(`streamgate (${path}) ${method.name}`);
          if (own === undefined) continue;
          figures.push(
            makeFigure({
              name: `${method.name}, server CPU per call, ${path} path`,
              unit: "µs",
              higherIsBetter: false,
              samples: own,
              anchorName: "bare node:http2 answering a gRPC frame",
              anchorSamples: floorSamples,
              target:
                path === "lean" ? { kind: "valueBelow", value: round(FLOOR_RATIO_TARGET * floorMedian, 1) } : null,
              median,
            }),
          );
        }
      }
      return {
        parameters: { calls, concurrentStreams: CONCURRENT_STREAMS, repetitions: context.repetitions, client: version },
        figures,
        details: Object.fromEntries(samples),
        notes: [
          "Server CPU = utime + stime of the server process from /proc/<pid>/stat around the measured calls (10 ms ticks), divided by the calls; h2load (a C client) on one h2c connection.",
          `Target: the lean path at most ${FLOOR_RATIO_TARGET}× the bare node:http2 floor measured in the same run (the value column's target is that product).`,
          "Acknowledge repeats one real ack id (acknowledging an acked id is OK in Pub/Sub); GetTopic and Acknowledge read, Publish writes one 256 B message to the embedded store.",
        ],
      };
    } finally {
      for (const server of servers) await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
