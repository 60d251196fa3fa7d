// Server CPU per message of Publish (100 × 256 B), issue 12's publish target (≤ 5 µs): h2load (a C client) sends the
// same framed PublishRequest over one h2c connection, CPU from /proc/<pid>/stat around the measured calls.
//
//   node --import tsx bench/publish-batch.ts [--calls 2000] [--reps 3] [--server-root DIR] [--cpu-prof DIR]
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { create, toBinary } from "@bufbuild/protobuf";
import { PublishRequestSchema, TopicSchema } from "../src/gen/google/pubsub/v1/pubsub_pb.js";
import { grpcFrame, unaryCall } from "./grpc-cpu/grpc-call.js";
import { processCpuMs } from "./lib/process-cpu.js";
import { median, round } from "./lib/stats.js";
import { startStreamgateProcess } from "./lib/streamgate-process.js";

const { values } = parseArgs({
  options: {
    calls: { type: "string", default: "2000" },
    reps: { type: "string", default: "3" },
    messages: { type: "string", default: "100" },
    "server-root": { type: "string", default: "." },
    "cpu-prof": { type: "string" },
  },
});
const calls = Number(values.calls);
const perCall = Number(values.messages);
const TOPIC = "projects/bench/topics/publish-batch";
const PATH = "/google.pubsub.v1.Publisher/Publish";

const server = await startStreamgateProcess({
  repoRoot: resolve(values["server-root"]),
  nodeArgs: values["cpu-prof"] === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", resolve(values["cpu-prof"])],
});
const dir = mkdtempSync(join(tmpdir(), "publish-batch-"));
try {
  await unaryCall(
    server.port,
    "/google.pubsub.v1.Publisher/CreateTopic",
    grpcFrame(toBinary(TopicSchema, create(TopicSchema, { name: TOPIC }))),
  );
  const messages = Array.from({ length: perCall }, (_, index) => ({
    data: new Uint8Array(256).fill(97 + (index % 26)),
  }));
  const body = join(dir, "request.bin");
  writeFileSync(
    body,
    grpcFrame(toBinary(PublishRequestSchema, create(PublishRequestSchema, { topic: TOPIC, messages }))),
  );
  const first = await unaryCall(
    server.port,
    PATH,
    grpcFrame(toBinary(PublishRequestSchema, create(PublishRequestSchema, { topic: TOPIC, messages }))),
  );
  if (first.status !== "0") throw new Error(`Publish: grpc-status ${first.status} ${first.message}`);
  const run = (count: number) => {
    const output = execFileSync(
      "h2load",
      [
        "-n",
        String(count),
        "-c",
        "1",
        "-t",
        "1",
        "-m",
        "16",
        "-H",
        "content-type: application/grpc",
        "-H",
        "te: trailers",
        "-d",
        body,
        `http://127.0.0.1:${server.port}${PATH}`,
      ],
      { encoding: "utf8" },
    );
    const done = /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded/.exec(output);
    if (done === null || Number(done[2]) !== count) throw new Error(`h2load: not every call succeeded\n${output}`);
  };
  run(Math.max(100, Math.round(calls / 4)));
  const samples: number[] = [];
  for (let rep = 0; rep < Number(values.reps); rep++) {
    const before = processCpuMs(server.pid)!;
    run(calls);
    const after = processCpuMs(server.pid)!;
    const micros = ((after - before) * 1000) / (calls * perCall);
    samples.push(micros);
    console.log(
      `rep ${rep + 1}: ${round(micros, 2)} µs server CPU per message (${calls} × Publish ${perCall} × 256 B)`,
    );
  }
  console.log(
    `median ${round(median(samples), 2)} µs per message; load average ${loadavg()
      .map((load) => load.toFixed(1))
      .join(" ")}`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
  await server.stop();
}
