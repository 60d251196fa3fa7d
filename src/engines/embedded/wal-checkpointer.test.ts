// The embedded engine's data dir lock and its WAL checkpoints on a worker thread (real SQLite files).
import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Code, StreamgateError } from "../../errors/index.js";
import { eventually, message } from "../contract/contract-helpers.js";
import { createEmbeddedEngine, DATABASE_FILE_NAME, type EmbeddedEngine } from "./index.js";

describe("embedded engine - data dir lock and background WAL checkpoints", () => {
  let dataDir = "";
  const engines: EmbeddedEngine[] = [];

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "streamgate-wal-"));
  });
  after(async () => {
    for (const engine of engines) await engine.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("a second engine on a data dir in use is refused with DATA_DIR_LOCKED, and opens once the first closes", async () => {
    const first = await createEmbeddedEngine({ dataDir });
    engines.push(first);
    await first.createTopic({ name: "projects/p/topics/locked" });
    await assert.rejects(createEmbeddedEngine({ dataDir }), (error: unknown) => {
      assert.ok(error instanceof StreamgateError);
      assert.equal(error.code, Code.FAILED_PRECONDITION);
      assert.equal(error.reason, "DATA_DIR_LOCKED");
      assert.match(error.message, /is in use by another streamgate process/);
      return true;
    });
    await first.close();
    const second = await createEmbeddedEngine({ dataDir });
    engines.push(second);
    assert.equal((await second.getTopic("projects/p/topics/locked")).name, "projects/p/topics/locked");
    await second.close();
  });

  it("committed pages reach the database file without the writer checkpointing (the worker does)", async () => {
    const engine = await createEmbeddedEngine({ dataDir });
    engines.push(engine);
    const topic = "projects/p/topics/checkpointed";
    await engine.createTopic({ name: topic });
    const databaseFile = join(dataDir, DATABASE_FILE_NAME);
    const sizeBefore = statSync(databaseFile).size;
    // About 2 MiB: far below the writer's own checkpoint threshold (10,000 pages), so only the worker can have
    // copied these pages into the database file.
    const payload = "x".repeat(2_000);
    for (let batch = 0; batch < 10; batch++) {
      await engine.publish(
        topic,
        Array.from({ length: 100 }, (_, i) => message(`${batch}-${i}-${payload}`)),
      );
    }
    await eventually(
      () => statSync(databaseFile).size > sizeBefore + 1_000_000,
      `the database file to grow by the checkpointed pages (was ${sizeBefore} B)`,
    );
    await engine.close();
  });
});
