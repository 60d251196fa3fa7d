// The official @google-cloud/pubsub client, unchanged, against SchemaService and schema topics, on both engines.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Encodings, type Message, PubSub, SchemaTypes } from "@google-cloud/pubsub";
import avro from "avsc";
import protobuf from "protobufjs";
import {
  findNatsServerBinary,
  NATS_SERVER_NOT_FOUND,
  type NatsServer,
  startNatsServer,
} from "../harness/nats-server.js";
import { peersRequired, startTestServer, type TestServer } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";
import { delay, waitFor } from "../harness/wait-for.js";

// The client probes the GCE metadata server for credentials; there is none here, and the probe only adds warnings.
process.env.METADATA_SERVER_DETECTION ??= "none";

const AVRO_ORDER = JSON.stringify({
  type: "record",
  name: "Order",
  fields: [
    { name: "id", type: "string" },
    { name: "amount", type: "int" },
  ],
});
// Revision 2 adds an optional field (a compatible Avro change).
const AVRO_ORDER_V2 = JSON.stringify({
  type: "record",
  name: "Order",
  fields: [
    { name: "id", type: "string" },
    { name: "amount", type: "int" },
    { name: "note", type: ["null", "string"], default: null },
  ],
});
const PROTO_ORDER = 'syntax = "proto3";\npackage shop;\nmessage Order {\n  string id = 1;\n  int32 amount = 2;\n}\n';

let natsMissing: string | false = false;
try {
  findNatsServerBinary();
} catch (error) {
  if (!String(error).includes(NATS_SERVER_NOT_FOUND) || peersRequired()) throw error;
  natsMissing = `SKIPPED: ${String(error)}`;
  console.warn(`pubsub-client-schemas (jetstream): ${natsMissing}`);
}

/** gRPC status code of a client error. */
const codeOf = (error: unknown) => (error as { code?: number }).code;

for (const engine of ["embedded", "jetstream"] as const) {
  describe(`pubsub client schemas (${engine})`, { skip: engine === "jetstream" ? natsMissing : false }, () => {
    let server: TestServer;
    let nats: NatsServer | undefined;
    let pubsub: PubSub;

    before(async () => {
      if (engine === "jetstream") {
        nats = await startNatsServer();
        server = await startTestServer({ engine: "jetstream", natsUrl: nats.url });
      } else server = await startTestServer();
      pubsub = new PubSub({ projectId: "test", apiEndpoint: server.hostPort, emulatorMode: true });
    });
    after(async () => {
      await pubsub?.close();
      await server?.close();
      await nats?.stop();
    });

    /** Subscribes with a streaming pull, returns the first message received, and closes the subscriber. */
    async function receiveOne(subscriptionName: string): Promise<Message> {
      const subscription = pubsub.subscription(subscriptionName);
      const errors: Error[] = [];
      let received: Message | undefined;
      subscription.on("error", (error: Error) => errors.push(error));
      subscription.on("message", (message: Message) => {
        message.ack();
        received ??= message;
      });
      try {
        await waitFor(() => received !== undefined || errors.length > 0, {
          timeoutMs: 10_000,
          describe: () => `a message on ${subscriptionName}`,
        });
      } finally {
        await subscription.close();
        await delay(300); // the client's ack batch timer, so no lazily created client outlives the test
      }
      assert.deepEqual(errors, []);
      return received!;
    }

    test("schemas - create, commit, list revisions, rollback, delete a revision and validate", async () => {
      const id = uniqueName("orders-schema");
      const schema = await pubsub.createSchema(id, SchemaTypes.Avro, AVRO_ORDER);
      const name = await schema.getName();
      assert.equal(name, `projects/test/schemas/${id}`);
      const first = await schema.get();
      assert.equal(first.type, "AVRO");
      assert.equal(first.definition, AVRO_ORDER);
      assert.match(first.revisionId ?? "", /^[0-9a-f]{8}$/);
      assert.ok(Number(first.revisionCreateTime?.seconds) > 0, "the revision has a create time");

      const client = await pubsub.getSchemaClient();
      const [second] = await client.commitSchema({ name, schema: { name, type: "AVRO", definition: AVRO_ORDER_V2 } });
      assert.notEqual(second.revisionId, first.revisionId);
      const [revisions] = await client.listSchemaRevisions({ name, view: "FULL" });
      assert.deepEqual(
        revisions.map((revision) => [revision.revisionId, revision.definition]),
        [
          [second.revisionId, AVRO_ORDER_V2],
          [first.revisionId, AVRO_ORDER],
        ],
        "revisions newest first",
      );
      const [byRevision] = await client.getSchema({ name: `${name}@${first.revisionId}` });
      assert.equal(byRevision.definition, AVRO_ORDER);
      assert.equal(byRevision.revisionId, first.revisionId);

      const [rolledBack] = await client.rollbackSchema({ name, revisionId: first.revisionId });
      assert.equal(rolledBack.definition, AVRO_ORDER, "a rollback copies the old revision");
      assert.ok(![first.revisionId, second.revisionId].includes(rolledBack.revisionId));
      assert.equal((await schema.get()).revisionId, rolledBack.revisionId, "the rollback is the latest revision");

      await client.deleteSchemaRevision({ name: `${name}@${second.revisionId}` });
      const [left] = await client.listSchemaRevisions({ name });
      assert.deepEqual(
        left.map((revision) => revision.revisionId),
        [rolledBack.revisionId, first.revisionId],
      );
      await assert.rejects(client.getSchema({ name: `${name}@${second.revisionId}` }), (error) => codeOf(error) === 5);

      const listed: string[] = [];
      for await (const item of pubsub.listSchemas()) listed.push(item.name ?? "");
      assert.ok(listed.includes(name), "listSchemas shows the schema");

      await pubsub.validateSchema({ type: SchemaTypes.ProtocolBuffer, definition: PROTO_ORDER });
      await assert.rejects(
        pubsub.validateSchema({ type: SchemaTypes.Avro, definition: '{"type": "record", "fields": 3}' }),
        (error) => codeOf(error) === 3,
      );
      // The client sends `message` (a bytes field) as given: a string there is read as base64.
      const base64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64");
      await schema.validateMessage(base64({ id: "o-1", amount: 3 }), Encodings.Json);
      await assert.rejects(
        schema.validateMessage(base64({ id: "o-1", amount: "three" }), Encodings.Json),
        (error) => codeOf(error) === 3 && /amount|int/.test(String(error)),
      );
      await schema.delete();
      await assert.rejects(schema.get(), (error) => codeOf(error) === 5);
    });

    /** A topic with `encoding` on a new schema, and one subscription. */
    async function schemaTopic(type: "AVRO" | "PROTOCOL_BUFFER", definition: string, encoding: "JSON" | "BINARY") {
      const schemaId = uniqueName("schema");
      await pubsub.createSchema(schemaId, type === "AVRO" ? SchemaTypes.Avro : SchemaTypes.ProtocolBuffer, definition);
      const schemaName = `projects/test/schemas/${schemaId}`;
      const topicName = uniqueName("typed");
      const [topic] = await pubsub.createTopic({ name: topicName, schemaSettings: { schema: schemaName, encoding } });
      const [metadata] = await topic.getMetadata();
      assert.equal(metadata.schemaSettings?.schema, schemaName);
      assert.equal(metadata.schemaSettings?.encoding, encoding);
      const subscriptionName = uniqueName("typed-sub");
      await topic.createSubscription(subscriptionName);
      const revisionId = (await pubsub.schema(schemaId).get()).revisionId;
      return { topic, schemaName, subscriptionName, revisionId };
    }

    const cases = [
      {
        label: "an Avro topic in JSON",
        type: "AVRO" as const,
        definition: AVRO_ORDER,
        encoding: "JSON" as const,
        data: () => Buffer.from(JSON.stringify({ id: "o-1", amount: 5 })),
      },
      {
        label: "an Avro topic in BINARY",
        type: "AVRO" as const,
        definition: AVRO_ORDER,
        encoding: "BINARY" as const,
        data: () => avro.Type.forSchema(JSON.parse(AVRO_ORDER)).toBuffer({ id: "o-1", amount: 5 }),
      },
      {
        label: "a Protobuf topic in JSON",
        type: "PROTOCOL_BUFFER" as const,
        definition: PROTO_ORDER,
        encoding: "JSON" as const,
        data: () => Buffer.from(JSON.stringify({ id: "o-1", amount: 5 })),
      },
      {
        label: "a Protobuf topic in BINARY",
        type: "PROTOCOL_BUFFER" as const,
        definition: PROTO_ORDER,
        encoding: "BINARY" as const,
        data: () => {
          const type = protobuf.parse(PROTO_ORDER).root.lookupType("shop.Order");
          return Buffer.from(type.encode(type.fromObject({ id: "o-1", amount: 5 })).finish());
        },
      },
    ];
    for (const item of cases) {
      test(`schemas - publish to ${item.label}; the delivery carries the googclient_schema attributes`, async () => {
        const { topic, schemaName, subscriptionName, revisionId } = await schemaTopic(
          item.type,
          item.definition,
          item.encoding,
        );
        const data = item.data();
        await topic.publishMessage({ data, attributes: { source: "test" } });
        const message = await receiveOne(subscriptionName);
        assert.deepEqual(message.data, data);
        assert.deepEqual(message.attributes, {
          source: "test",
          googclient_schemaname: schemaName,
          googclient_schemaencoding: item.encoding,
          googclient_schemarevisionid: revisionId,
        });
      });
    }

    test("schemas - a bad message in a batch is refused with INVALID_ARGUMENT naming its index", async () => {
      const { schemaName } = await schemaTopic("AVRO", AVRO_ORDER, "JSON");
      const [topic] = await pubsub.createTopic({
        name: uniqueName("typed-batch"),
        schemaSettings: { schema: schemaName, encoding: "JSON" },
      });
      topic.setPublishOptions({ batching: { maxMessages: 3, maxMilliseconds: 1_000 } });
      const good = Buffer.from(JSON.stringify({ id: "o-1", amount: 1 }));
      const bad = Buffer.from(JSON.stringify({ id: "o-2", amount: "two" }));
      const results = await Promise.allSettled([
        topic.publishMessage({ data: good }),
        topic.publishMessage({ data: bad }),
        topic.publishMessage({ data: good }),
      ]);
      for (const result of results) {
        assert.equal(result.status, "rejected", "one bad message fails the whole request");
        const error = (result as PromiseRejectedResult).reason;
        assert.equal(codeOf(error), 3);
        assert.match(String(error), /messages\[1\]/);
        assert.match(String(error), new RegExp(schemaName));
      }
      await topic.flush();
    });

    test("schemas - deleting a schema in use: the topic shows _deleted-schema_ and refuses publishes", async () => {
      const { topic, schemaName } = await schemaTopic("PROTOCOL_BUFFER", PROTO_ORDER, "JSON");
      await pubsub.schema(schemaName).delete();
      const [metadata] = await topic.getMetadata();
      assert.equal(metadata.schemaSettings?.schema, "_deleted-schema_");
      await assert.rejects(
        topic.publishMessage({ data: Buffer.from(JSON.stringify({ id: "o-1", amount: 1 })) }),
        (error) => codeOf(error) === 9 && /deleted/.test(String(error)),
      );
      await topic.flush();
    });
  });
}
