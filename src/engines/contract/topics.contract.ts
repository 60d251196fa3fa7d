// Engine contract: topics (CRUD, listing, errors), publishing, reading the log, watching.
import assert from "node:assert/strict";
import { describe } from "node:test";
import { Code } from "../../errors/index.js";
import { assertCode, engineTest, type MakeEngine, message, PROJECT, topicName } from "./contract-helpers.js";

/** Topic CRUD, publish, readTopic, offsetAtTime, topicStats and watchTopic. */
export function topicContract(makeEngine: MakeEngine): void {
  describe("topics", () => {
    engineTest(makeEngine, "topics - create, get, update and delete", async (engine) => {
      const name = topicName("crud");
      const created = await engine.createTopic({ name, labels: { team: "a" } });
      assert.equal(created.name, name);
      assert.deepEqual(created.labels, { team: "a" });
      assert.equal(created.messageRetentionDurationMs, null);
      assert.equal(created.retentionBytes, null);
      assert.deepEqual(await engine.getTopic(name), created);

      const updated = await engine.updateTopic(name, {
        patch: { labels: { team: "b" }, messageRetentionDurationMs: 3_600_000 },
        paths: ["labels", "message_retention_duration"],
      });
      assert.deepEqual(updated.labels, { team: "b" });
      assert.equal(updated.messageRetentionDurationMs, 3_600_000);
      assert.deepEqual(await engine.getTopic(name), updated);

      await engine.deleteTopic(name);
      await assertCode(engine.getTopic(name), Code.NOT_FOUND, name);
      await assertCode(engine.deleteTopic(name), Code.NOT_FOUND);
    });

    engineTest(makeEngine, "topics - listProjects names every project with a topic or subscription", async (engine) => {
      const other = `other-${Math.random().toString(36).slice(2, 8)}`;
      await engine.createTopic({ name: topicName("projects") });
      await engine.createTopic({ name: `projects/${other}/topics/elsewhere` });
      const projects = await engine.listProjects();
      assert.ok(projects.includes(PROJECT), `missing ${PROJECT} in ${projects.join(", ")}`);
      assert.ok(projects.includes(other), `missing ${other} in ${projects.join(", ")}`);
    });

    engineTest(makeEngine, "topics - errors name the resource or field", async (engine) => {
      const name = topicName("errors");
      await engine.createTopic({ name });
      await assertCode(engine.createTopic({ name }), Code.ALREADY_EXISTS, name);
      await assertCode(engine.createTopic({ name: "topics/no-project" }), Code.INVALID_ARGUMENT);
      await assertCode(engine.getTopic(topicName("missing")), Code.NOT_FOUND);
      await assertCode(
        engine.updateTopic(name, { patch: {}, paths: ["no_such_field"] }),
        Code.INVALID_ARGUMENT,
        "no_such_field",
      );
      await assertCode(engine.updateTopic(name, { patch: {}, paths: [] }), Code.INVALID_ARGUMENT);
      await assertCode(
        engine.updateTopic(name, {
          patch: { messageRetentionDurationMs: 1000 },
          paths: ["message_retention_duration"],
        }),
        Code.INVALID_ARGUMENT,
        "message_retention_duration",
      );
      await assertCode(
        engine.listTopics(PROJECT, { pageSize: 10, pageToken: "not a token" }),
        Code.INVALID_ARGUMENT,
        "page_token",
      );
    });

    engineTest(makeEngine, "topics - listing is sorted, paged and scoped to the project", async (engine) => {
      const project = `list-${process.pid}-${Date.now()}`;
      const names = ["c-topic", "a-topic", "b-topic", "d-topic", "e-topic"].map(
        (id) => `projects/${project}/topics/${id}`,
      );
      for (const name of names) await engine.createTopic({ name });
      await engine.createTopic({ name: `projects/${project}-other/topics/a-topic` });
      const seen: string[] = [];
      let pageToken = "";
      do {
        const page = await engine.listTopics(project, { pageSize: 2, pageToken });
        assert.ok(page.items.length <= 2);
        seen.push(...page.items.map((topic) => topic.name));
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      assert.deepEqual(seen, [...names].sort());
      const all = await engine.listTopics(project, { pageSize: 0, pageToken: "" });
      assert.equal(all.items.length, 5);
      assert.equal(all.nextPageToken, "");
    });

    engineTest(makeEngine, "publish - offsets start at 1, increase by one and never repeat", async (engine) => {
      const name = topicName("offsets");
      await engine.createTopic({ name });
      const first = await engine.publish(name, [message("a"), message("b"), message("c")]);
      assert.deepEqual(
        first.map((ref) => ref.offset),
        [1, 2, 3],
      );
      const concurrent = await Promise.all(
        Array.from({ length: 20 }, (_, batch) => engine.publish(name, [message(`x${batch}`), message(`y${batch}`)])),
      );
      for (const refs of concurrent) assert.ok(refs[0]!.offset < refs[1]!.offset, "offsets increase within a batch");
      const offsets = concurrent.flat().map((ref) => ref.offset);
      assert.deepEqual(
        [...offsets].sort((a, b) => a - b),
        Array.from({ length: 40 }, (_, index) => index + 4),
      );
      const ids = [...first, ...concurrent.flat()].map((ref) => ref.messageId);
      assert.equal(new Set(ids).size, ids.length, "message ids are unique");
      const bytes = [...first, ...concurrent.flat()].length === 43 ? 3 + 2 * (10 * 2 + 10 * 3) : -1;
      assert.deepEqual(await engine.topicStats(name), { firstOffset: 1, nextOffset: 44, messages: 43, bytes });
    });

    engineTest(makeEngine, "publish - invalid batches are refused, missing topic is NOT_FOUND", async (engine) => {
      const name = topicName("invalid");
      await engine.createTopic({ name });
      await assertCode(engine.publish(name, []), Code.INVALID_ARGUMENT, "messages");
      await assertCode(engine.publish(name, [message("")]), Code.INVALID_ARGUMENT, "messages[0]");
      await assertCode(engine.publish(topicName("missing"), [message("a")]), Code.NOT_FOUND);
      assert.equal((await engine.topicStats(name)).nextOffset, 1, "nothing was stored");
      const attributesOnly = await engine.publish(name, [message("", { only: "attributes" })]);
      assert.equal(attributesOnly[0]!.offset, 1);
    });

    engineTest(makeEngine, "topics - a recreated topic never reuses message ids", async (engine) => {
      const name = topicName("recreate");
      await engine.createTopic({ name });
      const before = await engine.publish(name, [message("a")]);
      await engine.deleteTopic(name);
      await engine.createTopic({ name });
      const after = await engine.publish(name, [message("b")]);
      assert.equal(after[0]!.offset, 1, "a new topic starts at offset 1");
      assert.notEqual(after[0]!.messageId, before[0]!.messageId);
      const read = await engine.readTopic(name, 1, { maxMessages: 10, maxBytes: 1 << 20 });
      assert.deepEqual(
        read.map((stored) => new TextDecoder().decode(stored.data)),
        ["b"],
      );
    });

    engineTest(
      makeEngine,
      "readTopic - reads from an offset inclusive within count and byte limits",
      async (engine) => {
        const name = topicName("read");
        await engine.createTopic({ name });
        const before = Date.now();
        await engine.publish(name, [
          message("one", { k: "v" }, "key"),
          message("two"),
          message("three"),
          message("four"),
        ]);
        const fromTwo = await engine.readTopic(name, 2, { maxMessages: 2, maxBytes: 1 << 20 });
        assert.deepEqual(
          fromTwo.map((stored) => stored.offset),
          [2, 3],
        );
        const [first] = await engine.readTopic(name, 1, { maxMessages: 1, maxBytes: 1 << 20 });
        assert.deepEqual(first!.attributes, { k: "v" });
        assert.equal(first!.orderingKey, "key");
        assert.ok(first!.publishTimeMs >= before - 1000 && first!.publishTimeMs <= Date.now() + 1000);
        const byBytes = await engine.readTopic(name, 1, { maxMessages: 10, maxBytes: 1 });
        assert.equal(byBytes.length, 1, "at least one message even when it exceeds maxBytes");
        assert.deepEqual(await engine.readTopic(name, 5, { maxMessages: 10, maxBytes: 1 << 20 }), []);
        assert.equal(await engine.offsetAtTime(name, 0), 1);
        assert.equal(await engine.offsetAtTime(name, Date.now() + 60_000), 5);
        await assertCode(engine.readTopic(topicName("missing"), 1, { maxMessages: 1, maxBytes: 1 }), Code.NOT_FOUND);
      },
    );

    engineTest(makeEngine, "watchTopic - notified after each publish until unsubscribed", async (engine) => {
      const name = topicName("watch");
      await engine.createTopic({ name });
      const seen: number[] = [];
      const unsubscribe = engine.watchTopic(name, (nextOffset) => seen.push(nextOffset));
      await engine.publish(name, [message("a"), message("b")]);
      await new Promise((resolve) => setImmediate(resolve));
      assert.ok(seen.includes(3), `saw ${JSON.stringify(seen)}`);
      const read = await engine.readTopic(name, 1, { maxMessages: 10, maxBytes: 1 << 20 });
      assert.equal(read.length, 2, "messages are readable once the watcher is notified");
      unsubscribe();
      const count = seen.length;
      await engine.publish(name, [message("c")]);
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(seen.length, count);
      assert.throws(() => engine.watchTopic(topicName("missing"), () => {}));
    });
  });
}
