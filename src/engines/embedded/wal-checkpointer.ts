// Checkpoints the embedded engine's WAL on a worker thread, so copying it into the database file (and the fsyncs
// that go with it) never stalls the event loop.
//
// SQLite's automatic checkpoint runs inside the COMMIT that pushes the WAL past 1,000 pages, on the thread that
// commits: at 5,000 msg/s (1,000 Publish calls/s) that was every 250–450 ms, each time 17–60 ms of page copying and
// three fsyncs (strace of the bench's server) during which no Publish was answered and no message delivered — the
// periodic stall behind the StreamingPull latency p99. Here a second connection on a worker thread runs PASSIVE
// checkpoints (which never block the writer) every CHECKPOINT_INTERVAL_MS, or IDLE_INTERVAL_MS while nothing is
// written; the writer's own automatic checkpoint stays as a backstop at BACKSTOP_PAGES, reached only if the worker
// stops keeping up.
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import type Database from "better-sqlite3";

/** How often the worker checkpoints while the writer writes … */
const CHECKPOINT_INTERVAL_MS = 100;

/** … and how often it looks while the WAL is empty (an idle server wakes once a second, not ten times). */
const IDLE_INTERVAL_MS = 1_000;

/**
 * Checkpoints in a row while the writer keeps appending: the WAL is rewound only when a write begins with every
 * frame copied, so one pass rarely suffices under a steady stream of commits; a few quick ones catch up.
 */
const CATCH_UP_PASSES = 4;

/** WAL size (pages) at which the writer checkpoints on its own thread after all (SQLite's default is 1,000). */
const BACKSTOP_PAGES = 10_000;

/** How long {@link WalCheckpointer.stop} waits for the worker's last checkpoint before terminating it. */
const STOP_TIMEOUT_MS = 5_000;

// The worker: plain CommonJS evaluated in place (no separate file to resolve from sources or dist/). Its connection
// syncs as the writer's does (the checkpoint's fsyncs are what make it durable), and reports failures once.
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.driver);
const db = new Database(workerData.path, { timeout: 1000, fileMustExist: true });
db.pragma("synchronous = " + workerData.synchronous);
const checkpoint = db.prepare("PRAGMA wal_checkpoint(PASSIVE)");
let failed = false;
let timer;
let last = "";
/** Checkpoints; true when the WAL changed since the last look (the writer is writing). */
function run() {
  let written = false;
  try {
    for (let pass = 0; pass < workerData.catchUpPasses; pass++) {
      const result = checkpoint.get();
      const seen = result.log + "/" + result.checkpointed;
      written ||= seen !== last;
      last = seen;
      if (result.busy !== 0 || result.checkpointed >= result.log) break;
    }
  } catch (error) {
    if (!failed) parentPort.postMessage({ error: String(error && error.message || error) });
    failed = true;
  }
  return written;
}
function schedule(delayMs) {
  timer = setTimeout(() => schedule(run() ? workerData.intervalMs : workerData.idleIntervalMs), delayMs);
}
schedule(workerData.intervalMs);
parentPort.on("message", () => {
  clearTimeout(timer);
  run();
  db.close();
  parentPort.close();
});
`;

/** A running background checkpointer of one database file. */
export class WalCheckpointer {
  private readonly worker: Worker;
  private readonly exited: Promise<void>;
  private stopping: Promise<void> | null = null;

  /**
   * @param db The writer's connection (its automatic checkpoint becomes the backstop).
   * @param path The database file.
   * @param synchronous The writer's `PRAGMA synchronous` (NORMAL or FULL).
   */
  constructor(db: Database.Database, path: string, synchronous: "NORMAL" | "FULL") {
    db.pragma(`wal_autocheckpoint = ${BACKSTOP_PAGES}`);
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        driver: createRequire(import.meta.url).resolve("better-sqlite3"),
        path,
        synchronous,
        intervalMs: CHECKPOINT_INTERVAL_MS,
        idleIntervalMs: IDLE_INTERVAL_MS,
        catchUpPasses: CATCH_UP_PASSES,
      },
      // Loaders of the parent (tsx in a checkout) are not needed for the CommonJS above.
      execArgv: [],
    });
    this.worker.unref();
    this.worker.on("message", (message: { error?: string }) => {
      if (message.error !== undefined) {
        process.emitWarning(
          `streamgate: WAL checkpoints on the worker thread failed (${message.error}); the writer checkpoints every ${BACKSTOP_PAGES} pages instead`,
        );
      }
    });
    this.exited = new Promise((resolve) => {
      this.worker.once("exit", () => resolve());
      this.worker.once("error", (error) => {
        process.emitWarning(`streamgate: the WAL checkpoint worker failed: ${String(error)}`);
      });
    });
  }

  /** Runs a last checkpoint and ends the worker (terminated if it has not finished in 5 s). Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.worker.postMessage("stop");
      const timer = setTimeout(() => void this.worker.terminate(), STOP_TIMEOUT_MS);
      await this.exited;
      clearTimeout(timer);
    })();
    return this.stopping;
  }
}
