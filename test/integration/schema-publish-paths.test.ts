// Every publish path besides Pub/Sub Publish (WebSocket, Events/PublishStream, Events/Connect) validates against a topic's schema.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { SchemaEncoding } from "../../src/broker/types.js";
import { SchemaType } from "../../src/schemas/index.js";
import { createLiveClients, grpc, type LiveClients, record } from "../harness/live-clients.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";
import { waitFor, withTimeout } from "../harness/wait-for.js";
import { encode, WsClient } from "./streams-clients.js";

const AVRO = JSON.stringify({ type: "record", name: "Tick", fields: [{ name: "n", type: "int" }] });

describe("schema publish paths", () => {
  let server: TestServer;
  let clients: LiveClients;
  let schema = "";
  let revisionId = "";

  before(async () => {
    server = await startTestServer();
    clients = createLiveClients(server.hostPort);
    schema = `projects/paths/schemas/${uniqueName("tick")}`;
    revisionId = (await server.server.engine.schemas.create(schema, { type: SchemaType.avro, definition: AVRO }))
      .revisionId;
  });
  after(async () => {
    clients?.close();
    await server?.close();
  });

  async function typedTopic(): Promise<string> {
    const name = `projects/paths/topics/${uniqueName("ticks")}`;
    await server.server.engine.createTopic({
      name,
      schemaSettings: { schema, encoding: SchemaEncoding.json, firstRevisionId: "", lastRevisionId: "" },
    });
    return name;
  }
  const events = <T>(name: string) =>
    (clients.events as unknown as Record<string, { call: (self: unknown, ...args: unknown[]) => T }>)[name]!;

  test("schema publish paths - WebSocket: a bad message gets an error frame naming it, a good one arrives with the attributes", async () => {
    const topic = await typedTopic();
    const client = await WsClient.open(server.url);
    try {
      client.send({ type: "subscribe", id: "s", topic, from: "earliest" });
      await client.until((c) => c.frames.some((frame) => frame.type === "subscribed"));
      client.send({ type: "publish", ref: "bad", topic, messages: [{ data: encode('{"n": "one"}') }] });
      await client.until((c) => c.frames.some((frame) => frame.type === "error" && frame.ref === "bad"));
      const error = client.frames.find((frame) => frame.type === "error")!;
      assert.equal(error.status, "INVALID_ARGUMENT");
      assert.equal(error.reason, "SCHEMA_VALIDATION_FAILED");
      assert.match(String(error.message), /^messages\[0\]: /);
      client.send({ type: "publish", ref: "good", topic, messages: [{ data: encode('{"n": 1}') }] });
      await client.until((c) => c.messages("s").length === 1);
      assert.deepEqual(client.messages("s")[0]!.attributes, {
        googclient_schemaname: schema,
        googclient_schemaencoding: "JSON",
        googclient_schemarevisionid: revisionId,
      });
    } finally {
      await client.close();
    }
  });

  test("schema publish paths - Events/PublishStream: a bad message ends the call with INVALID_ARGUMENT naming it", async () => {
    const topic = await typedTopic();
    const publish = (data: string) =>
      withTimeout(
        new Promise<grpc.ServiceError | null>((resolve) => {
          const call = events<grpc.ClientWritableStream<unknown>>("PublishStream").call(
            clients.events,
            (error: grpc.ServiceError | null) => resolve(error),
          );
          call.write({ topic, messages: [{ data: Buffer.from('{"n": 1}') }, { data: Buffer.from(data) }] });
          call.end();
        }),
        5_000,
        "PublishStream",
      );
    const refused = await publish("{}");
    assert.equal(refused?.code, grpc.status.INVALID_ARGUMENT);
    assert.match(refused?.details ?? "", /messages\[1\]/);
    assert.equal(
      (await server.server.engine.topicStats(topic)).messages,
      0,
      "nothing of the refused request is stored",
    );
    assert.equal(await publish('{"n": 2}'), null);
    assert.equal((await server.server.engine.topicStats(topic)).messages, 2);
  });

  test("schema publish paths - Events/Connect: a bad publish gets an error naming it, the stream stays open", async () => {
    const topic = await typedTopic();
    const call = events<grpc.ClientDuplexStream<unknown, unknown>>("Connect").call(clients.events);
    const recorder = record<{ kind: string; error?: { ref: string; message: string }; published?: { ref: string } }>(
      call,
    );
    try {
      call.write({ publish: { ref: "bad", topic, messages: [{ data: Buffer.from("[]") }] } });
      call.write({ publish: { ref: "good", topic, messages: [{ data: Buffer.from('{"n": 3}') }] } });
      await waitFor(() => recorder.items.some((item) => item.kind === "published"), {
        timeoutMs: 5_000,
        describe: () => `published (got ${JSON.stringify(recorder.items)})`,
      });
      const error = recorder.items.find((item) => item.kind === "error")?.error;
      assert.equal(error?.ref, "bad");
      assert.match(error?.message ?? "", /messages\[0\]/);
      assert.equal(recorder.ended, false);
    } finally {
      call.cancel();
      await waitFor(() => recorder.ended, { timeoutMs: 5_000, describe: () => "the Connect call ended" });
    }
  });
});
