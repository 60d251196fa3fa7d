// Runs the engine contract over the JetStream engine against a real nats-server (one per file, a namespace per test).
import { randomBytes } from "node:crypto";
import { after, describe, it } from "node:test";
import { NATS_SERVER_NOT_FOUND, type NatsServer, startNatsServer } from "../../../test/harness/nats-server.js";
import { runEngineContract } from "../engine.contract.js";
import { createJetStreamEngine } from "./index.js";

let server: NatsServer | null = null;
let missing = "";
try {
  server = await startNatsServer();
} catch (error) {
  if (!String(error).includes(NATS_SERVER_NOT_FOUND) || process.env.CI === "true") throw error;
  missing = String(error);
}

if (server === null) {
  describe("jetstream engine contract", () => {
    it("jetstream - needs nats-server", { skip: `SKIPPED: ${missing}` }, () => {});
  });
} else {
  const nats = server;
  const url = nats.url;
  // Stopped by a suite's `after`, which runs before the file's own end: the open-handle check's root-level
  // hook is registered first (preloaded) and so runs before any root-level `after` of this file.
  describe("jetstream engine", () => {
    after(() => nats.stop());
    runEngineContract("jetstream", async () => {
      const namespace = `c${randomBytes(4).toString("hex")}`;
      const engine = await createJetStreamEngine({ natsUrl: url, namespace });
      return {
        engine,
        async cleanup() {
          // A test may close its engine itself: open another on the namespace to remove what it stored.
          const owner = (await engine.ready()) ? engine : await createJetStreamEngine({ natsUrl: url, namespace });
          await owner.destroy();
          await owner.close();
          await engine.close();
        },
      };
    });
  });
}
