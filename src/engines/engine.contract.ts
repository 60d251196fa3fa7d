// The engine conformance suite: every engine (embedded, jetstream) must pass it, through the Engine interface only.
import assert from "node:assert/strict";
import { describe } from "node:test";
import { Code } from "../errors/index.js";
import {
  assertCode,
  engineTest,
  type MakeEngine,
  message,
  topicWithSubscription,
} from "./contract/contract-helpers.js";
import { deliveryContract } from "./contract/delivery.contract.js";
import { exactlyOnceContract } from "./contract/exactly-once.contract.js";
import { iamContract } from "./contract/iam.contract.js";
import { orderingContract } from "./contract/ordering.contract.js";
import { schemaContract } from "./contract/schemas.contract.js";
import { seekContract } from "./contract/seek.contract.js";
import { streamContract } from "./contract/streams.contract.js";
import { subscriptionContract } from "./contract/subscriptions.contract.js";
import { topicContract } from "./contract/topics.contract.js";
import type { DeliveryStream, Engine } from "./engine.js";

export type { MakeEngine } from "./contract/contract-helpers.js";

/**
 * Runs the conformance suite against one engine. `makeEngine` opens a fresh, empty engine for each
 * test; `cleanup` closes it and removes what it stored.
 */
export function runEngineContract(
  name: string,
  makeEngine: () => Promise<{ engine: Engine; cleanup(): Promise<void> }>,
): void {
  describe(`${name} engine contract`, () => {
    topicContract(makeEngine);
    subscriptionContract(makeEngine);
    deliveryContract(makeEngine);
    orderingContract(makeEngine);
    exactlyOnceContract(makeEngine);
    streamContract(makeEngine);
    seekContract(makeEngine);
    schemaContract(makeEngine);
    iamContract(makeEngine);
    lifecycleContract(makeEngine);
  });
}

function lifecycleContract(makeEngine: MakeEngine): void {
  describe("lifecycle", () => {
    engineTest(makeEngine, "close - ends open streams and pending pulls, then refuses calls", async (engine) => {
      const { subscription } = await topicWithSubscription(engine, "close");
      assert.equal(await engine.ready(), true);
      const signal = new AbortController().signal;
      const stream: DeliveryStream = engine.openStream(subscription, {
        ackDeadlineSeconds: 10,
        maxOutstandingMessages: 10,
        maxOutstandingBytes: 0,
        clientId: "close",
        signal,
      });
      const ended = (async () => {
        for await (const _ of stream) {
          // nothing is published; the loop only ends when the engine closes
        }
      })();
      const pending = engine.pull(subscription, { maxMessages: 1, waitMs: 30_000, signal });
      await new Promise((resolve) => setTimeout(resolve, 20));
      await engine.close();
      await ended;
      assert.deepEqual(await pending, []);
      assert.equal(await engine.ready(), false);
      await assertCode(
        engine.publish(`${subscription}`.replace("subscriptions", "topics"), [message("x")]),
        Code.UNAVAILABLE,
      );
      await engine.close();
    });
  });
}
