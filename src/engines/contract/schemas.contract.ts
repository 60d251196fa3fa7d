// Engine contract: schemas (revisions, listing, errors), topics with schema settings, publish validation, deletion.
import assert from "node:assert/strict";
import { describe } from "node:test";
import { DELETED_SCHEMA, SchemaEncoding, type SchemaSettings } from "../../broker/types.js";
import { Code } from "../../errors/index.js";
import { SchemaType } from "../../schemas/index.js";
import { assertCode, engineTest, type MakeEngine, message, PROJECT, topicName } from "./contract-helpers.js";

let counter = 0;
/** A unique schema name in {@link PROJECT}. */
function schemaName(label: string): string {
  return `projects/${PROJECT}/schemas/${label}-${process.pid}-${++counter}`;
}

const AVRO = JSON.stringify({ type: "record", name: "Point", fields: [{ name: "x", type: "int" }] });
const PROTO = 'syntax = "proto3";\nmessage Point {\n  int32 x = 1;\n}\n';
const page = { pageSize: 100, pageToken: "" };
const settings = (schema: string, extra: Partial<SchemaSettings> = {}): SchemaSettings => ({
  schema,
  encoding: SchemaEncoding.json,
  firstRevisionId: "",
  lastRevisionId: "",
  ...extra,
});

/** Schema CRUD and revisions, schema settings on topics, validation of publishes. */
export function schemaContract(makeEngine: MakeEngine): void {
  describe("schemas", () => {
    engineTest(
      makeEngine,
      "schemas - create, commit, get by revision, list, roll back, delete a revision, delete",
      async (engine) => {
        const name = schemaName("point");
        const first = await engine.schemas.create(name, { type: SchemaType.avro, definition: AVRO });
        assert.equal(first.name, name);
        assert.match(first.revisionId, /^[0-9a-f]{8}$/);
        await assertCode(engine.schemas.create(name, { type: SchemaType.avro, definition: AVRO }), Code.ALREADY_EXISTS);
        const second = await engine.schemas.commit(name, {
          type: SchemaType.avro,
          definition: AVRO.replace('"int"', '"long"'),
        });
        assert.ok(second.revisionCreateTimeMs > first.revisionCreateTimeMs);
        assert.deepEqual(await engine.schemas.get(name), second);
        assert.deepEqual(await engine.schemas.get(`${name}@${first.revisionId}`), first);
        assert.deepEqual((await engine.schemas.listRevisions(name, page)).items, [second, first]);
        assert.ok((await engine.schemas.list(PROJECT, page)).items.some((item) => item.name === name));

        const third = await engine.schemas.rollback(name, first.revisionId);
        assert.equal(third.definition, AVRO);
        assert.equal(
          (await engine.schemas.deleteRevision(`${name}@${second.revisionId}`, "")).revisionId,
          second.revisionId,
        );
        assert.deepEqual(
          (await engine.schemas.listRevisions(name, page)).items.map((revision) => revision.revisionId),
          [third.revisionId, first.revisionId],
        );
        await assertCode(engine.schemas.get(`${name}@${second.revisionId}`), Code.NOT_FOUND, second.revisionId);
        await assertCode(engine.schemas.rollback(name, "ffffffff"), Code.NOT_FOUND);

        await engine.schemas.delete(name);
        await assertCode(engine.schemas.get(name), Code.NOT_FOUND, name);
        await assertCode(engine.schemas.delete(name), Code.NOT_FOUND);
        await assertCode(engine.schemas.get("projects/contract/topics/x"), Code.INVALID_ARGUMENT);
        await assertCode(
          engine.schemas.create(schemaName("bad"), { type: SchemaType.protocolBuffer, definition: "message {" }),
          Code.INVALID_ARGUMENT,
          "schema.definition",
        );
      },
    );

    engineTest(
      makeEngine,
      "schemas - a topic validates publishes and stamps the googclient_schema attributes",
      async (engine) => {
        const name = schemaName("point");
        const revision = await engine.schemas.create(name, { type: SchemaType.protocolBuffer, definition: PROTO });
        const topic = topicName("typed");
        await assertCode(
          engine.createTopic({ name: topic, schemaSettings: settings(schemaName("missing")) }),
          Code.NOT_FOUND,
        );
        await assertCode(
          engine.createTopic({ name: topic, schemaSettings: settings(name, { lastRevisionId: "00000000" }) }),
          Code.NOT_FOUND,
        );
        const created = await engine.createTopic({ name: topic, schemaSettings: settings(name) });
        assert.deepEqual(created.schemaSettings, settings(name));
        assert.deepEqual((await engine.getTopic(topic)).schemaSettings, settings(name));

        await assertCode(
          engine.publish(topic, [message('{"x": 1}'), message('{"x": "one"}')]),
          Code.INVALID_ARGUMENT,
          "messages[1]",
        );
        assert.equal((await engine.topicStats(topic)).messages, 0, "a refused request stores nothing");
        await engine.publish(topic, [message('{"x": 1}', { k: "v" })]);
        const [stored] = await engine.readTopic(topic, 0, { maxMessages: 10, maxBytes: 1 << 20 });
        assert.deepEqual(stored?.attributes, {
          k: "v",
          googclient_schemaname: name,
          googclient_schemaencoding: "JSON",
          googclient_schemarevisionid: revision.revisionId,
        });

        // Clearing the settings (update mask) lets any data through.
        const cleared = await engine.updateTopic(topic, { patch: {}, paths: ["schema_settings"] });
        assert.equal(cleared.schemaSettings, null);
        await engine.publish(topic, [message("not json")]);
      },
    );

    engineTest(
      makeEngine,
      "schemas - deleting a schema in use marks its topics and refuses their publishes",
      async (engine) => {
        const name = schemaName("point");
        await engine.schemas.create(name, { type: SchemaType.avro, definition: AVRO });
        const topic = topicName("typed");
        await engine.createTopic({ name: topic, schemaSettings: settings(name, { encoding: SchemaEncoding.binary }) });
        await engine.schemas.delete(name);
        assert.equal((await engine.getTopic(topic)).schemaSettings?.schema, DELETED_SCHEMA);
        await assertCode(engine.publish(topic, [message("x")]), Code.FAILED_PRECONDITION, "deleted");
        // Other fields of the topic still update; the schema stays deleted.
        const updated = await engine.updateTopic(topic, { patch: { labels: { a: "b" } }, paths: ["labels"] });
        assert.equal(updated.schemaSettings?.schema, DELETED_SCHEMA);
      },
    );
  });
}
