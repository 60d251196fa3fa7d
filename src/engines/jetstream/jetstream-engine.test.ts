// Runs the engine contract over the JetStream engine against a real nats-server (one per file, a namespace per test).

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, describe, it } from "node:test";
import { NATS_SERVER_NOT_FOUND, type NatsServer, startNatsServer } from "../../../test/harness/nats-server.js";
import { Code } from "../../errors/index.js";
import { assertCode, eventually } from "../contract/contract-helpers.js";
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
    it("jetstream - an IAM policy set on one instance is read and compare-and-set on another", async () => {
      const namespace = `i${randomBytes(4).toString("hex")}`;
      const first = await createJetStreamEngine({ natsUrl: url, namespace });
      const second = await createJetStreamEngine({ natsUrl: url, namespace });
      try {
        const topic = "projects/iam/topics/shared";
        await first.createTopic({ name: topic });
        const bindings = [{ role: "roles/pubsub.publisher", members: ["user:bob"] }];
        const set = await first.setIamPolicy(topic, { version: 1, bindings, expectedEtag: new Uint8Array() });
        await eventually(() => second.storedIamPolicy(topic) !== null, "the second instance sees the policy");
        assert.deepEqual(await second.getIamPolicy(topic), set);
        const next = await second.setIamPolicy(topic, { version: 1, bindings: [], expectedEtag: set.etag });
        await eventually(() => first.storedIamPolicy(topic)?.bindings.length === 0, "the first sees the change");
        await assertCode(first.setIamPolicy(topic, { version: 1, bindings, expectedEtag: set.etag }), Code.ABORTED);
        assert.deepEqual((await first.getIamPolicy(topic)).etag, next.etag);
      } finally {
        await first.destroy();
        await first.close();
        await second.close();
      }
    });
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
