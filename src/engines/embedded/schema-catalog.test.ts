// Schemas on the embedded engine: revisions, topic schema settings and validation survive a restart (real SQLite file).
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DELETED_SCHEMA, SchemaEncoding } from "../../broker/types.js";
import { Code } from "../../errors/index.js";
import { SchemaType } from "../../schemas/index.js";
import { assertCode } from "../contract/contract-helpers.js";
import { createEmbeddedEngine, type EmbeddedEngine } from "./index.js";

const SCHEMA = "projects/p/schemas/readings";
const TOPIC = "projects/p/topics/readings";
const V1 = JSON.stringify({ type: "record", name: "Reading", fields: [{ name: "celsius", type: "double" }] });
// Revision 2 takes celsius as text: a message only it accepts shows which revisions a topic allows.
const V2 = JSON.stringify({ type: "record", name: "Reading", fields: [{ name: "celsius", type: "string" }] });
const json = (value: unknown) => ({ data: Buffer.from(JSON.stringify(value)), attributes: {}, orderingKey: "" });

describe("embedded engine schemas", () => {
  let dataDir = "";
  let engine: EmbeddedEngine | null = null;
  const open = async () => {
    await engine?.close();
    engine = await createEmbeddedEngine({ dataDir });
    return engine;
  };

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "streamgate-schemas-"));
  });
  after(async () => {
    await engine?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("embedded schemas - revisions, ids, create times and topic settings survive a restart", async () => {
    let current = await open();
    const first = await current.schemas.create(SCHEMA, { type: SchemaType.avro, definition: V1 });
    const second = await current.schemas.commit(SCHEMA, { type: SchemaType.avro, definition: V2 });
    assert.ok(second.revisionCreateTimeMs > first.revisionCreateTimeMs, "create times increase");
    await current.createTopic({
      name: TOPIC,
      schemaSettings: {
        schema: SCHEMA,
        encoding: SchemaEncoding.json,
        firstRevisionId: first.revisionId,
        lastRevisionId: first.revisionId,
      },
    });

    current = await open();
    assert.deepEqual(await current.schemas.get(SCHEMA), second);
    assert.deepEqual(await current.schemas.get(`${SCHEMA}@${first.revisionId}`), first);
    assert.deepEqual((await current.schemas.listRevisions(SCHEMA, { pageSize: 10, pageToken: "" })).items, [
      second,
      first,
    ]);
    assert.equal((await current.getTopic(TOPIC)).schemaSettings?.lastRevisionId, first.revisionId);
    // The range allows only revision 1, where celsius is a number.
    await assertCode(current.publish(TOPIC, [json({ celsius: "warm" })]), Code.INVALID_ARGUMENT, "messages[0]");
    await current.publish(TOPIC, [json({ celsius: 1 })]);
    const [stored] = await current.readTopic(TOPIC, 0, { maxMessages: 10, maxBytes: 1 << 20 });
    assert.equal(stored?.attributes.googclient_schemarevisionid, first.revisionId);
  });

  it("embedded schemas - a rollback and a deleted revision survive a restart", async () => {
    let current = await open();
    const before = (await current.schemas.listRevisions(SCHEMA, { pageSize: 10, pageToken: "" })).items;
    const rolledBack = await current.schemas.rollback(SCHEMA, before[1]!.revisionId);
    await current.schemas.deleteRevision(`${SCHEMA}@${before[0]!.revisionId}`, "");
    current = await open();
    const after = (await current.schemas.listRevisions(SCHEMA, { pageSize: 10, pageToken: "" })).items;
    assert.deepEqual(
      after.map((revision) => revision.revisionId),
      [rolledBack.revisionId, before[1]!.revisionId],
    );
    assert.equal(after[0]!.definition, V1);
  });

  it("embedded schemas - deleting a schema in use marks its topics _deleted-schema_, durably", async () => {
    let current = await open();
    await current.schemas.delete(SCHEMA);
    current = await open();
    await assertCode(current.schemas.get(SCHEMA), Code.NOT_FOUND);
    assert.equal((await current.getTopic(TOPIC)).schemaSettings?.schema, DELETED_SCHEMA);
    await assertCode(current.publish(TOPIC, [json({ celsius: 1 })]), Code.FAILED_PRECONDITION);
    // A new schema of the same name does not reattach the topic (as in Pub/Sub).
    await current.schemas.create(SCHEMA, { type: SchemaType.avro, definition: V1 });
    assert.equal((await current.getTopic(TOPIC)).schemaSettings?.schema, DELETED_SCHEMA);
  });

  it("embedded schemas - refusals: the only revision, a type change, a missing schema on a topic", async () => {
    const current = await open();
    const only = await current.schemas.get(SCHEMA);
    await assertCode(current.schemas.deleteRevision(`${SCHEMA}@${only.revisionId}`, ""), Code.FAILED_PRECONDITION);
    await assertCode(
      current.schemas.commit(SCHEMA, { type: SchemaType.protocolBuffer, definition: "message A {}" }),
      Code.INVALID_ARGUMENT,
    );
    await assertCode(current.schemas.create(SCHEMA, { type: SchemaType.avro, definition: V1 }), Code.ALREADY_EXISTS);
    await assertCode(
      current.createTopic({
        name: "projects/p/topics/other",
        schemaSettings: {
          schema: "projects/p/schemas/missing",
          encoding: SchemaEncoding.binary,
          firstRevisionId: "",
          lastRevisionId: "",
        },
      }),
      Code.NOT_FOUND,
    );
  });
});
