// Schemas on the JetStream engine across instances and restarts: one shared catalog on a real nats-server.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { startNatsPeer, startNatsServer } from "../../../test/harness/nats-server.js";
import { SchemaEncoding } from "../../broker/types.js";
import { Code } from "../../errors/index.js";
import { SchemaType } from "../../schemas/index.js";
import { assertCode, message } from "../contract/contract-helpers.js";
import { createJetStreamEngine, type JetStreamEngine } from "./index.js";

const { peer: server, missing } = await startNatsPeer(() => startNatsServer());

const SCHEMA = "projects/p/schemas/point";
const TOPIC = "projects/p/topics/points";
const AVRO = JSON.stringify({ type: "record", name: "Point", fields: [{ name: "x", type: "int" }] });
const AVRO_TEXT = JSON.stringify({ type: "record", name: "Point", fields: [{ name: "x", type: "string" }] });

/** Polls `check` until it holds (another instance's write arrives through the catalog watch). */
async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("jetstream engine schemas", { skip: missing }, () => {
  const namespace = `s${randomBytes(4).toString("hex")}`;
  const open = () => createJetStreamEngine({ natsUrl: server!.url, namespace });
  const engines: JetStreamEngine[] = [];

  before(async () => {
    engines.push(await open(), await open());
  });
  after(async () => {
    const owner = await open();
    await owner.destroy();
    await owner.close();
    for (const engine of engines) await engine.close();
    await server?.stop();
  });

  it("jetstream schemas - one instance's schema and revisions reach the other; its topic validates there", async () => {
    const [a, b] = engines as [JetStreamEngine, JetStreamEngine];
    const first = await a.schemas.create(SCHEMA, { type: SchemaType.avro, definition: AVRO });
    await eventually(async () => (await b.schemas.get(SCHEMA).catch(() => null)) !== null, "the schema on b");
    const second = await b.schemas.commit(SCHEMA, { type: SchemaType.avro, definition: AVRO_TEXT });
    await eventually(async () => (await a.schemas.get(SCHEMA)).revisionId === second.revisionId, "b's commit on a");
    await a.createTopic({
      name: TOPIC,
      schemaSettings: {
        schema: SCHEMA,
        encoding: SchemaEncoding.json,
        firstRevisionId: "",
        lastRevisionId: first.revisionId,
      },
    });
    await eventually(async () => (await b.getTopic(TOPIC).catch(() => null)) !== null, "the topic on b");
    await assertCode(b.publish(TOPIC, [message('{"x": "text"}')]), Code.INVALID_ARGUMENT, "messages[0]");
    await b.publish(TOPIC, [message('{"x": 1}')]);
  });

  it("jetstream schemas - revisions and topic settings survive a restart of every instance", async () => {
    const before = (await engines[0]!.schemas.listRevisions(SCHEMA, { pageSize: 10, pageToken: "" })).items;
    for (const engine of engines.splice(0)) await engine.close();
    const restarted = await open();
    engines.push(restarted);
    assert.deepEqual((await restarted.schemas.listRevisions(SCHEMA, { pageSize: 10, pageToken: "" })).items, before);
    assert.equal((await restarted.getTopic(TOPIC)).schemaSettings?.lastRevisionId, before[1]!.revisionId);
    const [stored] = await restarted.readTopic(TOPIC, 0, { maxMessages: 10, maxBytes: 1 << 20 });
    assert.equal(stored?.attributes.googclient_schemarevisionid, before[1]!.revisionId);
    await restarted.schemas.delete(SCHEMA);
    assert.equal((await restarted.getTopic(TOPIC)).schemaSettings?.schema, "_deleted-schema_");
  });
});
