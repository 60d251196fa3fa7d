// Runs the engine contract over the embedded engine (a real SQLite file per test), plus embedded-only tests.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runEngineContract } from "../engine.contract.js";
import { createEmbeddedEngine } from "./index.js";

runEngineContract("embedded", async () => {
  const dataDir = await mkdtemp(join(tmpdir(), "streamgate-contract-"));
  const engine = await createEmbeddedEngine({ dataDir });
  return {
    engine,
    async cleanup() {
      await engine.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
});
