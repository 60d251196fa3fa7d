// JetStream-only: subscription expiration (last activity shared through the catalog, swept by every instance) and subscription message retention.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { startNatsPeer, startNatsServer } from "../../../test/harness/nats-server.js";
import type { SubscriptionName, TopicName } from "../../broker/types.js";
import { Code, StreamgateError } from "../../errors/index.js";
import { createJetStreamEngine, type JetStreamEngine } from "./index.js";

const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;
const never = new AbortController().signal;

const { peer: server, missing } = await startNatsPeer(() => startNatsServer());

const topic = (id: string) => `projects/exp/topics/${id}` as TopicName;
const subscription = (id: string) => `projects/exp/subscriptions/${id}` as SubscriptionName;

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function exists(engine: JetStreamEngine, name: SubscriptionName): Promise<boolean> {
  try {
    await engine.getSubscription(name);
    return true;
  } catch (error) {
    if (error instanceof StreamgateError && error.code === Code.NOT_FOUND) return false;
    throw error;
  }
}

describe("jetstream engine: expiration and subscription retention", { skip: missing }, () => {
  let offset = 0;
  const now = () => Date.now() + offset;
  const namespace = `x${randomBytes(4).toString("hex")}`;
  let first: JetStreamEngine;
  let second: JetStreamEngine;

  before(async () => {
    const options = {
      natsUrl: server!.url,
      namespace,
      now,
      expirationSweepIntervalMs: 50,
      activityWriteIntervalMs: 1_000,
    };
    first = await createJetStreamEngine(options);
    second = await createJetStreamEngine(options);
  });

  after(async () => {
    await first?.destroy();
    await first?.close();
    await second?.close();
    await server?.stop();
  });

  it("idle subscriptions expire on every instance, active and ttl-less ones stay", async () => {
    await first.createTopic({ name: topic("expiry") });
    const base = { topic: topic("expiry"), expirationTtlMs: DAY_MS };
    await first.createSubscription({ ...base, name: subscription("idle") });
    await first.createSubscription({ ...base, name: subscription("busy") });
    await first.createSubscription({ ...base, name: subscription("forever"), expirationTtlMs: null });
    await eventually(async () => exists(second, subscription("busy")), "the other instance sees the subscriptions");

    offset += DAY_MS / 2;
    // Activity on the second instance reaches the first through the catalog record.
    await second.pull(subscription("busy"), { maxMessages: 1, waitMs: 0, signal: never });
    await new Promise((resolve) => setTimeout(resolve, 300)); // the activity write reaches the catalog

    offset += DAY_MS / 2 + 1;
    await eventually(
      async () => !(await exists(first, subscription("idle"))) && !(await exists(second, subscription("idle"))),
      "expiration of the idle subscription on both instances",
    );
    assert.equal(await exists(first, subscription("busy")), true, "activity half a day ago keeps it");
    assert.equal(await exists(second, subscription("busy")), true);

    offset += DAY_MS;
    await eventually(async () => !(await exists(first, subscription("busy"))), "expiration of the once-busy one");
    assert.equal((await first.getSubscription(subscription("forever"))).expirationTtlMs, null);
    assert.equal((await second.getSubscription(subscription("forever"))).expirationTtlMs, null);
  });

  it("an open stream keeps its subscription alive", async () => {
    await first.createTopic({ name: topic("streamed") });
    const name = subscription("streamed");
    await first.createSubscription({ name, topic: topic("streamed"), expirationTtlMs: DAY_MS });
    await eventually(async () => exists(second, name), "the other instance sees the subscription");
    const abort = new AbortController();
    second.openStream(name, {
      ackDeadlineSeconds: 10,
      maxOutstandingMessages: 10,
      maxOutstandingBytes: 0,
      clientId: "c",
      signal: abort.signal,
    });
    // Two days in half-day steps: the stream's instance refreshes the shared activity time meanwhile.
    for (let step = 0; step < 4; step++) {
      offset += DAY_MS / 2;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    assert.equal(await exists(first, name), true, "the stream's instance refreshed its activity");
    abort.abort();
  });

  it("messages older than the subscription's message_retention_duration are not delivered", async () => {
    await first.createTopic({ name: topic("retained") });
    const name = subscription("retained");
    await first.createSubscription({
      name,
      topic: topic("retained"),
      messageRetentionDurationMs: 10 * MINUTE_MS,
      expirationTtlMs: null,
    });
    // Publish times are JetStream's (real) clock; the engine's clock runs `offset` ahead of it.
    offset = 0;
    await first.publish(topic("retained"), [{ data: Buffer.from("old"), attributes: {}, orderingKey: "" }]);
    offset = 11 * MINUTE_MS;
    assert.deepEqual(await first.pull(name, { maxMessages: 10, waitMs: 0, signal: never }), []);
    offset = 0;
    await first.publish(topic("retained"), [{ data: Buffer.from("fresh"), attributes: {}, orderingKey: "" }]);
    const received = await first.pull(name, { maxMessages: 10, waitMs: 1_000, signal: never });
    assert.deepEqual(
      received.map((message) => Buffer.from(message.message.data).toString()),
      ["fresh"],
    );
  });
});
