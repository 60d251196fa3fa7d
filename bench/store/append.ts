// Micro benchmark of the embedded store's write path: Publish batches of 100 × 256 B into a temp SQLite file, CPU µs per message.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { MessageInput } from "../../src/broker/types.js";
import { createEmbeddedEngine } from "../../src/engines/embedded/index.js";
import type { BenchContext, Benchmark } from "../lib/benchmark.js";
import { makeFigure } from "../lib/report.js";
import { median, round } from "../lib/stats.js";

const MESSAGE_BYTES = 256;
const BATCH_MESSAGES = 100;
/** Batches committed before measuring: the statement cache, the page cache and the JIT warm up. */
const WARMUP_BATCHES = 200;
/** Batches measured per repetition at scale 1 (200,000 messages, ~1 s of CPU). */
const MEASURED_BATCHES = 2_000;
/** The end-to-end target for Publish 100 × 256 B (server CPU per message, every layer included). */
const END_TO_END_TARGET_MICROSECONDS = 5;

interface Sample {
  cpuMicrosecondsPerMessage: number;
  /** Share of that CPU spent in the kernel (WAL writes). */
  systemShare: number;
  messagesPerSecond: number;
}

function batchOf(size: number): MessageInput[] {
  const data = new Uint8Array(MESSAGE_BYTES).fill(97);
  return Array.from({ length: size }, () => ({ data, attributes: {}, orderingKey: "" }));
}

function sampleOf(since: NodeJS.CpuUsage, elapsedMs: number, messages: number): Sample {
  const used = process.cpuUsage(since);
  const cpu = used.user + used.system;
  return {
    cpuMicrosecondsPerMessage: cpu / messages,
    systemShare: used.system / cpu,
    messagesPerSecond: messages / (elapsedMs / 1000),
  };
}

/** streamgate: the embedded engine's publish() (validation, group commit, multi-row insert, counters, commit). */
async function measureEngine(batches: number): Promise<Sample> {
  const dataDir = mkdtempSync(join(tmpdir(), "streamgate-bench-store-"));
  const engine = await createEmbeddedEngine({ dataDir });
  try {
    const topic = "projects/bench/topics/append";
    await engine.createTopic({ name: topic });
    const batch = batchOf(BATCH_MESSAGES);
    for (let index = 0; index < WARMUP_BATCHES; index++) await engine.publish(topic, batch);
    const cpu = process.cpuUsage();
    const started = performance.now();
    for (let index = 0; index < batches; index++) await engine.publish(topic, batch);
    const elapsedMs = performance.now() - started;
    return sampleOf(cpu, elapsedMs, batches * BATCH_MESSAGES);
  } finally {
    await engine.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * Anchor: better-sqlite3 alone on the same table and pragmas, one transaction per batch with one
 * prepared single-row INSERT per message plus the counters UPDATE: what the store did per message
 * before multi-row inserts, without any of streamgate's bookkeeping.
 */
function measureRowByRow(batches: number): Sample {
  const dataDir = mkdtempSync(join(tmpdir(), "streamgate-bench-sqlite-"));
  const db = new Database(join(dataDir, "anchor.sqlite"));
  try {
    db.pragma("locking_mode = EXCLUSIVE");
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.pragma("cache_size = -32768");
    db.exec(`
      CREATE TABLE topics (id INTEGER PRIMARY KEY, next_offset INTEGER NOT NULL, bytes INTEGER NOT NULL) STRICT;
      CREATE TABLE messages (
        topic_id INTEGER NOT NULL, message_offset INTEGER NOT NULL, publish_time INTEGER NOT NULL,
        ordering_key TEXT NOT NULL, attributes TEXT, data BLOB NOT NULL, size INTEGER NOT NULL,
        PRIMARY KEY (topic_id, message_offset)
      ) STRICT, WITHOUT ROWID;
      INSERT INTO topics VALUES (1, 0, 0);`);
    const insert = db.prepare(
      "INSERT INTO messages (topic_id, message_offset, publish_time, ordering_key, attributes, data, size) VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    const update = db.prepare("UPDATE topics SET next_offset = ?, bytes = ? WHERE id = 1");
    const data = Buffer.alloc(MESSAGE_BYTES, 97);
    let offset = 0;
    const commit = db.transaction(() => {
      const now = Date.now();
      for (let index = 0; index < BATCH_MESSAGES; index++) insert.run(1, offset++, now, "", null, data, MESSAGE_BYTES);
      update.run(offset, offset * MESSAGE_BYTES);
    });
    for (let index = 0; index < WARMUP_BATCHES; index++) commit();
    const cpu = process.cpuUsage();
    const started = performance.now();
    for (let index = 0; index < batches; index++) commit();
    const elapsedMs = performance.now() - started;
    return sampleOf(cpu, elapsedMs, batches * BATCH_MESSAGES);
  } finally {
    db.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export const storeAppendBenchmark: Benchmark = {
  name: "store-append",
  title: "Embedded store: Publish 100 × 256 B batches into SQLite, CPU per message (in process, no transport)",
  maxDurationMs: 180_000,
  async run(context: BenchContext) {
    const batches = Math.max(100, Math.round(MEASURED_BATCHES * context.scale));
    const own: Sample[] = [];
    const anchor: Sample[] = [];
    for (let repetition = 0; repetition < context.repetitions; repetition++) {
      anchor.push(measureRowByRow(batches));
      if (!context.anchorOnly) own.push(await measureEngine(batches));
      context.log(
        `store-append: rep ${repetition + 1}: streamgate ${round(own.at(-1)?.cpuMicrosecondsPerMessage ?? Number.NaN)} µs/msg, row-by-row sqlite ${round(anchor.at(-1)!.cpuMicrosecondsPerMessage)} µs/msg`,
      );
    }
    const cpuFigure = makeFigure({
      name: "CPU per message, Publish 100 × 256 B",
      unit: "µs",
      higherIsBetter: false,
      samples: own.map((sample) => sample.cpuMicrosecondsPerMessage),
      anchorName: "better-sqlite3, one INSERT per row",
      anchorSamples: anchor.map((sample) => sample.cpuMicrosecondsPerMessage),
      target: null,
      median,
    });
    const rateFigure = makeFigure({
      name: "Publish rate, 100 × 256 B, one batch at a time",
      unit: "msg/s",
      higherIsBetter: true,
      samples: own.map((sample) => sample.messagesPerSecond),
      anchorName: "better-sqlite3, one INSERT per row",
      anchorSamples: anchor.map((sample) => sample.messagesPerSecond),
      target: null,
      median,
    });
    return {
      parameters: {
        messageBytes: MESSAGE_BYTES,
        batchMessages: BATCH_MESSAGES,
        warmupBatches: WARMUP_BATCHES,
        measuredBatches: batches,
        synchronous: "NORMAL (default)",
      },
      figures: [cpuFigure, rateFigure],
      details: {
        systemCpuShare: `streamgate ${round(median(own.map((sample) => sample.systemShare)) * 100, 1)} %, anchor ${round(median(anchor.map((sample) => sample.systemShare)) * 100, 1)} % of the CPU in the kernel`,
        shareOfEndToEndTarget: `${round((cpuFigure.value / END_TO_END_TARGET_MICROSECONDS) * 100, 1)} % of the ${END_TO_END_TARGET_MICROSECONDS} µs/msg end-to-end target`,
      },
      notes: [
        "In-process: engine.publish() awaited one batch at a time (one group commit per batch), CPU from process.cpuUsage() (user + system) over the measured batches.",
        "The anchor is better-sqlite3 alone doing the old write shape (one prepared single-row INSERT per message, one transaction per batch) with none of streamgate's validation or bookkeeping.",
      ],
    };
  },
};
