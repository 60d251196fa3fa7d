// Helpers shared by the engine contract suite: engine lifecycle per test, names, waits, error asserts.
import assert from "node:assert/strict";
import { it } from "node:test";
import type { MessageInput, ReceivedMessage, SubscriptionName, TopicName } from "../../broker/types.js";
import { type Code, codeName, StreamgateError } from "../../errors/index.js";
import type { Engine } from "../engine.js";

/** Opens a fresh engine for one test and disposes of it afterwards. */
export type MakeEngine = () => Promise<{ engine: Engine; cleanup(): Promise<void> }>;

/** The project every contract resource lives in. */
export const PROJECT = "contract";

let counter = 0;

/** A unique topic name in {@link PROJECT} (or `project`). */
export function topicName(label: string, project = PROJECT): TopicName {
  return `projects/${project}/topics/${label}-${process.pid}-${++counter}`;
}

/** A unique subscription name in {@link PROJECT} (or `project`). */
export function subscriptionName(label: string, project = PROJECT): SubscriptionName {
  return `projects/${project}/subscriptions/${label}-${process.pid}-${++counter}`;
}

/** A unique snapshot name in {@link PROJECT}. */
export function snapshotName(label: string): string {
  return `projects/${PROJECT}/snapshots/${label}-${process.pid}-${++counter}`;
}

/** A message whose data is `text`. */
export function message(text: string, attributes: Record<string, string> = {}, orderingKey = ""): MessageInput {
  return { data: new TextEncoder().encode(text), attributes, orderingKey };
}

/** The data of a received message as text. */
export function text(received: ReceivedMessage): string {
  return new TextDecoder().decode(received.message.data);
}

/** Declares a test that gets a fresh engine, cleaned up even when the test fails. */
export function engineTest(makeEngine: MakeEngine, title: string, body: (engine: Engine) => Promise<void>): void {
  it(title, async () => {
    const { engine, cleanup } = await makeEngine();
    try {
      await body(engine);
    } finally {
      await cleanup();
    }
  });
}

/** Asserts that `action` rejects (or throws) a StreamgateError with `code`, optionally mentioning `mentions`. */
export async function assertCode(
  action: Promise<unknown> | (() => unknown),
  code: Code,
  mentions?: string,
): Promise<void> {
  let outcome: unknown;
  try {
    await (typeof action === "function" ? action() : action);
  } catch (error) {
    outcome = error;
  }
  if (!(outcome instanceof StreamgateError)) {
    assert.fail(
      `expected StreamgateError ${codeName(code)}, got ${outcome === undefined ? "success" : String(outcome)}`,
    );
  }
  assert.equal(codeName(outcome.code), codeName(code), `wrong code; message: ${outcome.message}`);
  if (mentions !== undefined)
    assert.ok(outcome.message.includes(mentions), `"${outcome.message}" should mention "${mentions}"`);
}

/** Pulls until `count` messages arrived (or `timeoutMs` passed); returns them in arrival order. */
export async function pullAtLeast(
  engine: Engine,
  subscription: SubscriptionName,
  count: number,
  timeoutMs = 5000,
): Promise<ReceivedMessage[]> {
  const received: ReceivedMessage[] = [];
  const deadline = Date.now() + timeoutMs;
  while (received.length < count && Date.now() < deadline) {
    const batch = await engine.pull(subscription, {
      maxMessages: count - received.length,
      waitMs: Math.max(1, Math.min(500, deadline - Date.now())),
      signal: new AbortController().signal,
    });
    received.push(...batch);
  }
  assert.equal(received.length, count, `expected ${count} messages from ${subscription}, got ${received.length}`);
  return received;
}

/** Pulls once with a short wait and asserts nothing is delivered. */
export async function assertNothingToPull(engine: Engine, subscription: SubscriptionName, waitMs = 150): Promise<void> {
  const batch = await engine.pull(subscription, { maxMessages: 100, waitMs, signal: new AbortController().signal });
  assert.deepEqual(batch.map(text), [], "expected no message to be delivered");
}

/** Pulls and acks until `count` messages were acked. */
export async function drain(engine: Engine, subscription: SubscriptionName, count: number): Promise<ReceivedMessage[]> {
  const received = await pullAtLeast(engine, subscription, count);
  await engine.acknowledge(
    subscription,
    received.map((item) => item.ackId),
  );
  return received;
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `condition` until it holds or `timeoutMs` passes (then fails with `what`). */
export async function eventually(
  condition: () => Promise<boolean> | boolean,
  what: string,
  timeoutMs = 3000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** A topic and a subscription on it, created fresh. */
export async function topicWithSubscription(
  engine: Engine,
  label: string,
  subscription: Partial<Parameters<Engine["createSubscription"]>[0]> = {},
): Promise<{ topic: TopicName; subscription: SubscriptionName }> {
  const topic = topicName(label);
  await engine.createTopic({ name: topic });
  const name = subscriptionName(label);
  await engine.createSubscription({ ...subscription, name, topic });
  return { topic, subscription: name };
}
