// Runs the engine contract over the embedded engine (a real SQLite file per test), plus embedded-only tests.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { Code } from "../../errors/index.js";
import { assertCode, eventually, message, pullAtLeast, text } from "../contract/contract-helpers.js";
import { runEngineContract } from "../engine.contract.js";
import {
  createEmbeddedEngine,
  DATABASE_FILE_NAME,
  type EmbeddedEngine,
  resolveEmbeddedEngineOptions,
} from "./index.js";

const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;
const never = new AbortController().signal;
const decode = (data: Uint8Array) => new TextDecoder().decode(data);

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

/** A fake clock tests move by hand. */
function fakeClock(): { now: () => number; advance(ms: number): void } {
  let time = Date.now();
  return {
    now: () => time,
    advance: (ms) => {
      time += ms;
    },
  };
}

describe("embedded engine", () => {
  let dataDir = "";
  let engine: EmbeddedEngine | null = null;
  const clock = fakeClock();
  const topic = (id: string) => `projects/embedded/topics/${id}`;
  const subscription = (id: string) => `projects/embedded/subscriptions/${id}`;

  /** Opens (or reopens) the engine on this suite's data dir with the fake clock and a fast sweep. */
  async function open(): Promise<EmbeddedEngine> {
    engine = await createEmbeddedEngine({ dataDir, now: clock.now, retentionCheckIntervalMs: 20 });
    return engine;
  }

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "streamgate-embedded-"));
  });
  after(async () => {
    await engine?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("durability - an IAM policy and its etag survive a reopen", async () => {
    let current = await open();
    await current.createTopic({ name: topic("iam-durable") });
    const bindings = [{ role: "roles/pubsub.publisher", members: ["user:bob"] }];
    const set = await current.setIamPolicy(topic("iam-durable"), {
      version: 1,
      bindings,
      expectedEtag: new Uint8Array(),
    });
    await current.close();
    current = await open();
    assert.deepEqual(await current.getIamPolicy(topic("iam-durable")), set);
    await current.deleteTopic(topic("iam-durable"));
    await current.close();
  });

  it("durability - after reopen unacked messages are redelivered, acked ones never", async () => {
    let current = await open();
    await current.createTopic({ name: topic("durable") });
    await current.createSubscription({ name: subscription("durable"), topic: topic("durable") });
    const refs = await current.publish(
      topic("durable"),
      ["m1", "m2", "m3", "m4", "m5"].map((data) => message(data)),
    );
    const leased = await pullAtLeast(current, subscription("durable"), 3);
    await current.acknowledge(subscription("durable"), [leased[0]!.ackId]);
    await current.close();

    current = await open();
    assert.deepEqual(await current.topicStats(topic("durable")), {
      firstOffset: 1,
      nextOffset: 6,
      messages: 5,
      bytes: 10,
    });
    const [m6] = await current.publish(topic("durable"), [message("m6")]);
    assert.equal(m6!.offset, 6);
    assert.ok(!refs.some((ref) => ref.messageId === m6!.messageId));
    await current.acknowledge(subscription("durable"), [leased[1]!.ackId]);
    const redelivered = await pullAtLeast(current, subscription("durable"), 5);
    assert.deepEqual(
      redelivered.map(text),
      ["m2", "m3", "m4", "m5", "m6"],
      "an ack id from before the restart is stale",
    );
    await current.acknowledge(
      subscription("durable"),
      redelivered.map((item) => item.ackId),
    );
    await current.close();

    current = await open();
    assert.deepEqual(await current.pull(subscription("durable"), { maxMessages: 10, waitMs: 50, signal: never }), []);
    assert.equal((await current.subscriptionStats(subscription("durable"))).backlog, 0);
    assert.deepEqual(await current.checkIntegrity(), []);
  });

  it("publish - batches of every chunk shape (1 to 600 messages, concurrent) are stored whole, in order, after reopen", async () => {
    await engine?.close();
    let current = await open();
    await current.createTopic({ name: topic("chunks") });
    // 600 = 256 + 256 + 64 + 16 + 4 + 4: every prepared multi-row INSERT shape, some twice. Batches alternate
    // between every message plain (no attributes, no ordering key: the INSERT that binds only data and size)
    // and a mix where the last few messages, or every second and third, carry attributes or an ordering key.
    const sizes = [1, 3, 4, 5, 17, 100, 255, 256, 257, 600, 100, 300];
    const expected: { data: string; attributes: Record<string, string>; orderingKey: string }[] = [];
    const batches = sizes.map((size, batch) => {
      const texts = Array.from({ length: size }, (_, index) => `b${batch}-m${index}`);
      // Data as views into one shared buffer, as a decoded request gives them.
      const shared = new TextEncoder().encode(texts.join(""));
      let start = 0;
      return texts.map((data, index) => {
        const plain = batch % 2 === 0 || (batch === 11 && index < 290);
        const item = {
          data,
          attributes: (plain || index % 3 !== 0 ? {} : { batch: String(batch), index: String(index) }) as Record<
            string,
            string
          >,
          orderingKey: plain || index % 2 !== 0 ? "" : `key-${batch}`,
        };
        expected.push(item);
        const view = shared.subarray(start, start + data.length);
        start += data.length;
        return { data: view, attributes: item.attributes, orderingKey: item.orderingKey };
      });
    });
    // Published in the same turn: one group commit holds every batch.
    const refs = await Promise.all(batches.map((batch) => current.publish(topic("chunks"), batch)));
    const first = refs[0]![0]!.offset;
    assert.deepEqual(
      refs.flat().map((ref) => ref.offset),
      expected.map((_, index) => first + index),
    );
    const bytes = expected.reduce(
      (sum, item) =>
        sum + item.data.length + Object.entries(item.attributes).reduce((n, [k, v]) => n + k.length + v.length, 0),
      0,
    );
    await current.close();

    current = await open();
    assert.deepEqual(await current.topicStats(topic("chunks")), {
      firstOffset: first,
      nextOffset: first + expected.length,
      messages: expected.length,
      bytes,
    });
    const stored = await current.readTopic(topic("chunks"), first, { maxMessages: 10_000, maxBytes: 1 << 30 });
    assert.deepEqual(
      stored.map((item) => ({
        offset: item.offset,
        data: new TextDecoder().decode(item.data),
        attributes: item.attributes,
        orderingKey: item.orderingKey,
      })),
      expected.map((item, index) => ({ offset: first + index, ...item })),
    );
    assert.deepEqual(
      stored.map((item) => item.messageId),
      refs.flat().map((ref) => ref.messageId),
    );
    assert.deepEqual(await current.checkIntegrity(), []);
    await current.close();
    engine = null;
  });

  it("publish - one-message calls to two topics, interleaved in one turn, each get their own offsets and messages", async () => {
    await engine?.close();
    let current = await open();
    const names = [topic("interleaved-a"), topic("interleaved-b")];
    for (const name of names) await current.createTopic({ name });
    await current.publish(names[1]!, [message("before")]);
    // A watcher keeps the recent-messages window of the first topic, so its reads come from memory.
    const seen: number[] = [];
    const unwatch = current.watchTopic(names[0]!, (next) => seen.push(next));
    // As concurrent Publish calls arrive: one group commit, where a topic's calls are written as one append.
    const calls = Array.from({ length: 24 }, (_, index) => ({
      name: names[index % 3 === 0 ? 1 : 0]!,
      messages:
        index % 5 === 0
          ? [message(`m${index}-0`, { index: String(index) }), message(`m${index}-1`)]
          : [message(`m${index}`)],
    }));
    const refs = await Promise.all(calls.map((call) => current.publish(call.name, call.messages)));
    unwatch();
    const count = (name: string) =>
      calls.reduce((sum, call) => sum + (call.name === name ? call.messages.length : 0), 0);
    assert.deepEqual(seen, [1 + count(names[0]!)], "one notification for the whole group commit");
    for (const [position, name] of names.entries()) {
      const mine = calls.flatMap((call, index) => (call.name === name ? [index] : []));
      const offsets = mine.flatMap((index) => refs[index]!.map((ref) => ref.offset));
      const first = position === 0 ? 1 : 2;
      assert.deepEqual(
        offsets,
        offsets.map((_, index) => first + index),
        `${name}: contiguous offsets in call order`,
      );
      for (const index of mine) assert.equal(refs[index]!.length, calls[index]!.messages.length);
      const stored = await current.readTopic(name, first, { maxMessages: 100, maxBytes: 1 << 20 });
      assert.deepEqual(
        stored.map((item) => [item.offset, item.messageId, decode(item.data), item.attributes]),
        mine.flatMap((index) =>
          calls[index]!.messages.map((input, at) => [
            refs[index]![at]!.offset,
            refs[index]![at]!.messageId,
            decode(input.data),
            input.attributes ?? {},
          ]),
        ),
      );
      assert.equal(new Set(stored.map((item) => item.publishTimeMs)).size, 1, "one publish time per commit");
    }
    await current.close();
    current = await open();
    assert.equal((await current.topicStats(names[0]!)).nextOffset, 1 + count(names[0]!));
    assert.equal((await current.topicStats(names[1]!)).nextOffset, 2 + count(names[1]!));
    assert.deepEqual(await current.checkIntegrity(), []);
    await current.close();
    engine = null;
  });

  it("durability - a resolved publish survives kill -9 of the process", async () => {
    const crashDir = await mkdtemp(join(tmpdir(), "streamgate-crash-"));
    const engineModule = fileURLToPath(new URL("./index.ts", import.meta.url));
    const script = `
      import { createEmbeddedEngine } from ${JSON.stringify(engineModule)};
      const engine = await createEmbeddedEngine({ dataDir: ${JSON.stringify(crashDir)} });
      await engine.createTopic({ name: "projects/p/topics/crash" });
      for (let i = 0; i < 20; i++) {
        await engine.publish("projects/p/topics/crash", [{ data: new TextEncoder().encode("m" + i), attributes: {}, orderingKey: "" }]);
      }
      process.stdout.write("published\\n");
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (chunk: Buffer) => {
        if (chunk.toString().includes("published")) resolve();
      });
      child.on("exit", (code) => reject(new Error(`child exited early with ${code}`)));
    });
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));
    const reopened = await createEmbeddedEngine({ dataDir: crashDir });
    try {
      const stored = await reopened.readTopic("projects/p/topics/crash", 1, { maxMessages: 100, maxBytes: 1 << 20 });
      assert.equal(stored.length, 20);
      assert.deepEqual(await reopened.checkIntegrity(), []);
    } finally {
      await reopened.close();
      await rm(crashDir, { recursive: true, force: true });
    }
  });

  it("leases - an expired lease is redelivered with the next attempt", async () => {
    const current = engine ?? (await open());
    await current.createTopic({ name: topic("lease") });
    await current.createSubscription({ name: subscription("lease"), topic: topic("lease"), ackDeadlineSeconds: 10 });
    await current.publish(topic("lease"), [message("slow")]);
    const [first] = await pullAtLeast(current, subscription("lease"), 1);
    clock.advance(9_000);
    assert.deepEqual(await current.pull(subscription("lease"), { maxMessages: 1, waitMs: 0, signal: never }), []);
    clock.advance(2_000);
    const [second] = await pullAtLeast(current, subscription("lease"), 1);
    assert.equal(second!.deliveryAttempt, 2);
    await current.acknowledge(subscription("lease"), [first!.ackId]);
    assert.equal(
      (await current.subscriptionStats(subscription("lease"))).outstanding,
      1,
      "the expired lease's ack id is stale",
    );
    await current.acknowledge(subscription("lease"), [second!.ackId]);
  });

  it("retention - the background sweep trims by age and by size", async () => {
    const current = engine ?? (await open());
    await current.createTopic({ name: topic("aged"), messageRetentionDurationMs: 10 * MINUTE_MS });
    await current.createSubscription({ name: subscription("aged"), topic: topic("aged") });
    await current.publish(topic("aged"), [message("old1"), message("old2"), message("old3")]);
    clock.advance(5 * MINUTE_MS);
    await current.publish(topic("aged"), [message("new1"), message("new2")]);
    clock.advance(6 * MINUTE_MS);
    await eventually(async () => (await current.topicStats(topic("aged"))).firstOffset === 4, "age retention");
    assert.equal((await current.subscriptionStats(subscription("aged"))).backlog, 2);
    assert.deepEqual((await pullAtLeast(current, subscription("aged"), 2)).map(text), ["new1", "new2"]);

    await current.createTopic({ name: topic("capped"), retentionBytes: 100 });
    await current.publish(
      topic("capped"),
      Array.from({ length: 10 }, (_, index) => message(`${index}`.padStart(30, "x"))),
    );
    await eventually(async () => (await current.topicStats(topic("capped"))).bytes <= 100, "size retention");
    const stats = await current.topicStats(topic("capped"));
    assert.deepEqual(stats, { firstOffset: 8, nextOffset: 11, messages: 3, bytes: 90 });
    assert.deepEqual(await current.checkIntegrity(), []);
  });

  it("retention - subscription retention drops old unacked messages, the default topic retention is 7 days", async () => {
    const current = engine ?? (await open());
    await current.createTopic({ name: topic("default-retention") });
    await current.createSubscription({
      name: subscription("short"),
      topic: topic("default-retention"),
      messageRetentionDurationMs: 10 * MINUTE_MS,
    });
    await current.publish(topic("default-retention"), [message("a"), message("b")]);
    clock.advance(11 * MINUTE_MS);
    await eventually(
      async () => (await current.subscriptionStats(subscription("short"))).backlog === 0,
      "sub retention",
    );
    assert.equal((await current.topicStats(topic("default-retention"))).messages, 2, "the topic keeps them");
    clock.advance(7 * DAY_MS);
    await eventually(
      async () => (await current.topicStats(topic("default-retention"))).messages === 0,
      "7 day retention",
    );
  });

  it("expiration - idle subscriptions and old snapshots are deleted, active ones stay", async () => {
    const current = engine ?? (await open());
    await current.createTopic({ name: topic("expiry") });
    const base = { topic: topic("expiry"), expirationTtlMs: DAY_MS };
    await current.createSubscription({ ...base, name: subscription("idle") });
    await current.createSubscription({ ...base, name: subscription("busy") });
    await current.createSubscription({ ...base, name: subscription("forever"), expirationTtlMs: null });
    await current.createSnapshot("projects/embedded/snapshots/old", subscription("forever"), {});
    clock.advance(DAY_MS / 2);
    await current.pull(subscription("busy"), { maxMessages: 1, waitMs: 0, signal: never });
    clock.advance(DAY_MS / 2 + 1);
    await eventually(async () => {
      const page = await current.listSubscriptions("embedded", { pageSize: 1000, pageToken: "" });
      return !page.items.some((item) => item.name === subscription("idle"));
    }, "expiration of the idle subscription");
    await assertCode(current.getSubscription(subscription("idle")), Code.NOT_FOUND);
    assert.equal((await current.getSubscription(subscription("busy"))).name, subscription("busy"));
    clock.advance(7 * DAY_MS);
    await assertCode(current.getSnapshot("projects/embedded/snapshots/old"), Code.NOT_FOUND);
    await eventually(async () => {
      const page = await current.listSubscriptions("embedded", { pageSize: 1000, pageToken: "" });
      return !page.items.some((item) => item.name === subscription("busy"));
    }, "expiration of the once-busy subscription");
    assert.equal((await current.getSubscription(subscription("forever"))).expirationTtlMs, null);
  });

  it("purge - a deleted topic's messages are removed in the background", async () => {
    const current = engine ?? (await open());
    await current.createTopic({ name: topic("doomed") });
    await current.publish(
      topic("doomed"),
      Array.from({ length: 50 }, (_, index) => message(`d${index}`)),
    );
    await current.deleteTopic(topic("doomed"));
    await current.runMaintenance();
    await current.close();
    const db = new Database(join(dataDir, DATABASE_FILE_NAME));
    try {
      const orphans = db
        .prepare("SELECT count(*) FROM messages WHERE topic_id NOT IN (SELECT id FROM topics)")
        .pluck()
        .get();
      assert.equal(orphans, 0);
      assert.equal(db.prepare("SELECT count(*) FROM purged_topics").pluck().get(), 0);
    } finally {
      db.close();
    }
    await open();
  });

  it("integrity - checkIntegrity reports a tampered database", async () => {
    let current = engine ?? (await open());
    await current.createTopic({ name: topic("tamper") });
    await current.createSubscription({ name: subscription("tamper"), topic: topic("tamper") });
    await current.publish(topic("tamper"), [message("a"), message("b"), message("c")]);
    assert.deepEqual(await current.checkIntegrity(), []);
    await current.close();
    const db = new Database(join(dataDir, DATABASE_FILE_NAME));
    db.prepare(
      "DELETE FROM messages WHERE message_offset = 2 AND topic_id = (SELECT id FROM topics WHERE name = ?)",
    ).run(topic("tamper"));
    db.prepare("INSERT INTO acks SELECT id, 0 FROM subscriptions WHERE name = ?").run(subscription("tamper"));
    db.close();
    current = await open();
    const problems = await current.checkIntegrity();
    assert.ok(
      problems.some((problem) => problem.includes(topic("tamper"))),
      problems.join("\n"),
    );
    assert.ok(
      problems.some((problem) => problem.includes("below its floor")),
      problems.join("\n"),
    );
  });

  it("locking - a second engine on the same data dir is refused", async () => {
    const current = engine ?? (await open());
    assert.equal(await current.ready(), true);
    await assertCode(createEmbeddedEngine({ dataDir }), Code.FAILED_PRECONDITION, dataDir);
  });

  it("schema - a newer or foreign database is refused", async () => {
    const otherDir = await mkdtemp(join(tmpdir(), "streamgate-schema-"));
    try {
      const db = new Database(join(otherDir, DATABASE_FILE_NAME));
      db.exec("CREATE TABLE unrelated (x)");
      db.close();
      await assertCode(
        createEmbeddedEngine({ dataDir: otherDir }),
        Code.FAILED_PRECONDITION,
        "not a streamgate database",
      );
      await rm(join(otherDir, DATABASE_FILE_NAME));
      const fresh = await createEmbeddedEngine({ dataDir: otherDir });
      await fresh.close();
      const upgraded = new Database(join(otherDir, DATABASE_FILE_NAME));
      upgraded.pragma("user_version = 99");
      upgraded.close();
      await assertCode(createEmbeddedEngine({ dataDir: otherDir }), Code.FAILED_PRECONDITION, "newer");
    } finally {
      await rm(otherDir, { recursive: true, force: true });
    }
  });

  it("close - leaves no timers or immediates behind", async () => {
    const closeDir = await mkdtemp(join(tmpdir(), "streamgate-close-"));
    const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === "Timeout" || kind === "Immediate");
    const baseline = timers().length;
    const closing = await createEmbeddedEngine({ dataDir: closeDir, retentionCheckIntervalMs: 10 });
    try {
      await closing.createTopic({ name: topic("close") });
      await closing.createSubscription({
        name: subscription("close"),
        topic: topic("close"),
        retryPolicy: { minimumBackoffMs: 60_000, maximumBackoffMs: 60_000 },
      });
      await closing.publish(topic("close"), [message("leased"), message("backing-off")]);
      const [, nacked] = await pullAtLeast(closing, subscription("close"), 2);
      await closing.modifyAckDeadline(subscription("close"), [nacked!.ackId], 0);
      const abort = new AbortController();
      const stream = closing.openStream(subscription("close"), {
        ackDeadlineSeconds: 10,
        maxOutstandingMessages: 1,
        maxOutstandingBytes: 0,
        clientId: "close",
        signal: abort.signal,
      });
      const iterating = (async () => {
        for await (const _ of stream) {
          // only the close ends this loop
        }
      })();
      const waiting = closing.pull(subscription("close"), { maxMessages: 1, waitMs: 60_000, signal: never });
      assert.ok(timers().length > baseline, "the engine had timers running");
      await closing.close();
      await iterating;
      assert.deepEqual(await waiting, []);
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(timers().length, baseline, `left behind: ${process.getActiveResourcesInfo().join(", ")}`);
    } finally {
      await closing.close();
      await rm(closeDir, { recursive: true, force: true });
    }
  });

  it("options - defaults are documented values and bad ones are refused", () => {
    const resolved = resolveEmbeddedEngineOptions({ dataDir: "./data" });
    assert.equal(resolved.syncEveryCommit, false);
    assert.equal(resolved.retentionCheckIntervalMs, 60_000);
    assert.equal(resolved.defaultRetentionMs, 7 * DAY_MS);
    assert.throws(() => resolveEmbeddedEngineOptions({ dataDir: "" }), /dataDir/);
    assert.throws(
      () => resolveEmbeddedEngineOptions({ dataDir: "d", retentionCheckIntervalMs: 0 }),
      /retentionCheckIntervalMs/,
    );
  });
});
