// Conformance: IAM policies are stored per resource with etags, and go away with their resource.
import assert from "node:assert/strict";
import { describe } from "node:test";
import { EMPTY_POLICY_ETAG } from "../../broker/iam-policy.js";
import { Code } from "../../errors/index.js";
import { SchemaType } from "../../schemas/index.js";
import type { Engine } from "../engine.js";
import { assertCode, engineTest, type MakeEngine, snapshotName, topicWithSubscription } from "./contract-helpers.js";

const publishers = [{ role: "roles/pubsub.publisher", members: ["user:bob"] }];
const none: Uint8Array = new Uint8Array();

async function setPolicy(engine: Engine, resource: string, members: string[], expectedEtag: Uint8Array = none) {
  return engine.setIamPolicy(resource, {
    version: 1,
    bindings: [{ role: "roles/pubsub.viewer", members }],
    expectedEtag,
  });
}

export function iamContract(makeEngine: MakeEngine): void {
  describe("iam policies", () => {
    engineTest(makeEngine, "iam - set, get and compare-and-set on the etag; ABORTED on a stale one", async (engine) => {
      const { topic } = await topicWithSubscription(engine, "iam-etag");
      const empty = await engine.getIamPolicy(topic);
      assert.deepEqual(empty.bindings, []);
      assert.deepEqual(empty.etag, EMPTY_POLICY_ETAG);
      assert.equal(engine.storedIamPolicy(topic), null);
      const first = await engine.setIamPolicy(topic, { version: 1, bindings: publishers, expectedEtag: empty.etag });
      assert.deepEqual(first.bindings, publishers);
      assert.notDeepEqual(first.etag, empty.etag);
      assert.deepEqual(await engine.getIamPolicy(topic), first);
      assert.deepEqual(engine.storedIamPolicy(topic)?.bindings, publishers);
      await assertCode(setPolicy(engine, topic, ["user:late"], empty.etag), Code.ABORTED);
      const second = await setPolicy(engine, topic, ["user:carol"], first.etag);
      await assertCode(setPolicy(engine, topic, ["user:late"], first.etag), Code.ABORTED);
      const unconditional = await setPolicy(engine, topic, ["user:dave"]);
      assert.notDeepEqual(unconditional.etag, second.etag);
      assert.deepEqual((await engine.getIamPolicy(topic)).bindings[0]?.members, ["user:dave"]);
    });

    engineTest(
      makeEngine,
      "iam - a missing resource is NOT_FOUND, another kind of name INVALID_ARGUMENT",
      async (engine) => {
        await assertCode(engine.getIamPolicy("projects/contract/topics/iam-missing"), Code.NOT_FOUND);
        await assertCode(setPolicy(engine, "projects/contract/subscriptions/iam-missing", ["user:a"]), Code.NOT_FOUND);
        await assertCode(engine.testIamPermissions("projects/contract/snapshots/iam-missing", []), Code.NOT_FOUND);
        await assertCode(engine.getIamPolicy("projects/contract/schemas/iam-missing"), Code.NOT_FOUND);
        await assertCode(engine.getIamPolicy("projects/contract/schemas/s@abc"), Code.INVALID_ARGUMENT);
        await assertCode(engine.getIamPolicy("nonsense"), Code.INVALID_ARGUMENT);
      },
    );

    engineTest(
      makeEngine,
      "iam - a deleted resource's policy is gone when a resource of that name is created",
      async (engine) => {
        const { topic, subscription } = await topicWithSubscription(engine, "iam-recreate");
        const snapshot = snapshotName("iam-recreate");
        await engine.createSnapshot(snapshot, subscription, {});
        for (const resource of [topic, subscription, snapshot]) await setPolicy(engine, resource, ["user:old"]);
        await engine.deleteSnapshot(snapshot);
        await engine.deleteSubscription(subscription);
        await engine.deleteTopic(topic);
        await engine.createTopic({ name: topic });
        await engine.createSubscription({ name: subscription, topic });
        await engine.createSnapshot(snapshot, subscription, {});
        for (const resource of [topic, subscription, snapshot]) {
          assert.deepEqual((await engine.getIamPolicy(resource)).bindings, [], resource);
          assert.equal(engine.storedIamPolicy(resource), null, resource);
        }
      },
    );

    engineTest(
      makeEngine,
      "iam - the engines hold no callers: testIamPermissions answers what was asked",
      async (engine) => {
        const { subscription } = await topicWithSubscription(engine, "iam-test");
        const asked = ["pubsub.subscriptions.consume", "pubsub.subscriptions.update"];
        assert.deepEqual(await engine.testIamPermissions(subscription, asked), asked);
      },
    );

    engineTest(
      makeEngine,
      "iam - a schema carries a policy through its revisions; deleting the schema deletes it",
      async (engine) => {
        const schema = `projects/contract/schemas/iam-schema-${Math.random().toString(36).slice(2, 8)}`;
        const avro = '{"type":"record","name":"R","fields":[{"name":"n","type":"int"}]}';
        await engine.schemas.create(schema, { type: SchemaType.avro, definition: avro });
        const set = await setPolicy(engine, schema, ["user:reader"]);
        await engine.schemas.commit(schema, { type: SchemaType.avro, definition: avro.replace('"int"', '"long"') });
        assert.deepEqual(await engine.getIamPolicy(schema), set, "a new revision keeps the schema's policy");
        await engine.schemas.delete(schema);
        await assertCode(engine.getIamPolicy(schema), Code.NOT_FOUND);
        await engine.schemas.create(schema, { type: SchemaType.avro, definition: avro });
        assert.deepEqual((await engine.getIamPolicy(schema)).bindings, [], "a recreated schema starts without one");
        assert.equal(engine.storedIamPolicy(schema), null);
      },
    );
  });
}
