// SchemaService over Pub/Sub REST (`/v1/projects/{p}/schemas…`) with fetch, and REST publishes to a schema topic.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { fetchJson, type Json, type RestResponse } from "../harness/rest-client.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";

const AVRO = JSON.stringify({
  type: "record",
  name: "Reading",
  fields: [
    { name: "sensor", type: "string" },
    { name: "celsius", type: "double" },
  ],
});
const PROTO = 'syntax = "proto3";\nmessage Reading {\n  string sensor = 1;\n  double celsius = 2;\n}\n';
const b64 = (value: unknown) =>
  Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64");

function json(response: RestResponse, expectedStatus = 200): Json {
  assert.equal(response.status, expectedStatus, `HTTP ${response.status}: ${response.text}`);
  assert.ok(typeof response.body === "object" && response.body !== null, `expected JSON, got ${response.text}`);
  return response.body as Json;
}

/** Asserts the Google JSON error shape and returns its message. */
function expectError(response: RestResponse, httpStatus: number, grpcStatus: string): string {
  const error = json(response, httpStatus).error as Json;
  assert.equal(error.status, grpcStatus, response.text);
  return String(error.message);
}

describe("rest schemas", () => {
  let server: TestServer;
  const call = (method: string, path: string, body?: unknown) => fetchJson(server.url, method, path, body);

  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server?.close();
  });

  test("rest schemas - IAM policy on a schema: set with an etag, get, testIamPermissions; gone with the schema", async () => {
    const id = uniqueName("iam");
    const name = `projects/rest/schemas/${id}`;
    json(await call("POST", `/v1/projects/rest/schemas?schemaId=${id}`, { type: "AVRO", definition: AVRO }));
    const empty = json(await call("POST", `/v1/${name}:getIamPolicy`, {}));
    const bindings = [{ role: "roles/pubsub.viewer", members: ["user:reader"] }];
    const set = json(await call("POST", `/v1/${name}:setIamPolicy`, { policy: { bindings, etag: empty.etag } }));
    assert.deepEqual(set.bindings, bindings);
    expectError(
      await call("POST", `/v1/${name}:setIamPolicy`, { policy: { bindings, etag: empty.etag } }),
      409,
      "ABORTED",
    );
    assert.deepEqual(json(await call("GET", `/v1/${name}:getIamPolicy`)).bindings, bindings);
    const asked = ["pubsub.schemas.get", "pubsub.schemas.commit"];
    assert.deepEqual(
      json(await call("POST", `/v1/${name}:testIamPermissions`, { permissions: asked })).permissions,
      asked,
      "auth off: every permission",
    );
    json(await call("DELETE", `/v1/${name}`));
    expectError(await call("POST", `/v1/${name}:getIamPolicy`, {}), 404, "NOT_FOUND");
  });

  test("rest schemas - create, get (FULL and BASIC), list, commit, listRevisions, rollback, deleteRevision, delete", async () => {
    const id = uniqueName("readings");
    const name = `projects/rest/schemas/${id}`;
    const created = json(
      await call("POST", `/v1/projects/rest/schemas?schemaId=${id}`, { type: "AVRO", definition: AVRO }),
    );
    assert.equal(created.name, name);
    assert.equal(created.type, "AVRO");
    assert.equal(created.definition, AVRO);
    assert.match(String(created.revisionId), /^[0-9a-f]{8}$/);
    assert.match(String(created.revisionCreateTime), /^\d{4}-\d\d-\d\dT/);
    expectError(
      await call("POST", `/v1/projects/rest/schemas?schemaId=${id}`, { type: "AVRO", definition: AVRO }),
      409,
      "ALREADY_EXISTS",
    );

    assert.equal(json(await call("GET", `/v1/${name}`)).definition, AVRO);
    assert.equal(
      json(await call("GET", `/v1/${name}?view=BASIC`)).definition,
      undefined,
      "BASIC leaves out the definition",
    );
    const listed = json(await call("GET", "/v1/projects/rest/schemas")).schemas as Json[];
    assert.deepEqual(
      listed.map((schema) => [schema.name, schema.definition]),
      [[name, undefined]],
      "List defaults to the BASIC view",
    );

    const v2 = AVRO.replace('"double"', '"float"');
    const committed = json(await call("POST", `/v1/${name}:commit`, { schema: { type: "AVRO", definition: v2 } }));
    assert.equal(committed.definition, v2);
    const revisions = json(await call("GET", `/v1/${name}:listRevisions?view=FULL`)).schemas as Json[];
    assert.deepEqual(
      revisions.map((revision) => revision.revisionId),
      [committed.revisionId, created.revisionId],
    );
    const paged = json(await call("GET", `/v1/${name}:listRevisions?pageSize=1`));
    assert.equal((paged.schemas as Json[]).length, 1);
    const rest = json(await call("GET", `/v1/${name}:listRevisions?pageSize=1&pageToken=${paged.nextPageToken}`));
    assert.deepEqual(
      (rest.schemas as Json[]).map((revision) => revision.revisionId),
      [created.revisionId],
    );

    assert.equal(json(await call("GET", `/v1/${name}@${created.revisionId}`)).definition, AVRO);
    const rolledBack = json(await call("POST", `/v1/${name}:rollback`, { revisionId: created.revisionId }));
    assert.equal(rolledBack.definition, AVRO);
    assert.equal(json(await call("GET", `/v1/${name}`)).revisionId, rolledBack.revisionId);

    const deleted = json(await call("DELETE", `/v1/${name}@${committed.revisionId}:deleteRevision`));
    assert.equal(deleted.revisionId, committed.revisionId);
    expectError(await call("GET", `/v1/${name}@${committed.revisionId}`), 404, "NOT_FOUND");
    expectError(
      await call("POST", `/v1/${name}:commit`, { schema: { type: "PROTOCOL_BUFFER", definition: PROTO } }),
      400,
      "INVALID_ARGUMENT",
    );

    json(await call("DELETE", `/v1/${name}`));
    expectError(await call("GET", `/v1/${name}`), 404, "NOT_FOUND");
  });

  test("rest schemas - a definition that does not parse is refused with INVALID_ARGUMENT saying why", async () => {
    const avro = expectError(
      await call("POST", `/v1/projects/rest/schemas?schemaId=${uniqueName("bad")}`, { type: "AVRO", definition: "{" }),
      400,
      "INVALID_ARGUMENT",
    );
    assert.match(avro, /schema\.definition: is not a valid Avro schema/);
    const proto = expectError(
      await call("POST", "/v1/projects/rest/schemas:validate", {
        schema: { type: "PROTOCOL_BUFFER", definition: "message Reading { Missing x = 1; }" },
      }),
      400,
      "INVALID_ARGUMENT",
    );
    assert.match(proto, /Missing/);
    const untyped = expectError(
      await call("POST", "/v1/projects/rest/schemas:validate", { schema: { definition: AVRO } }),
      400,
      "INVALID_ARGUMENT",
    );
    assert.match(untyped, /schema\.type: must be AVRO or PROTOCOL_BUFFER/);
    assert.deepEqual(
      json(
        await call("POST", "/v1/projects/rest/schemas:validate", {
          schema: { type: "PROTOCOL_BUFFER", definition: PROTO },
        }),
      ),
      {},
    );
  });

  test("rest schemas - validateMessage against a stored or an inline schema, JSON and BINARY", async () => {
    const id = uniqueName("readings");
    json(
      await call("POST", `/v1/projects/rest/schemas?schemaId=${id}`, { type: "PROTOCOL_BUFFER", definition: PROTO }),
    );
    const byName = (message: unknown, encoding = "JSON") =>
      call("POST", "/v1/projects/rest/schemas:validateMessage", {
        name: `projects/rest/schemas/${id}`,
        message: b64(message),
        encoding,
      });
    assert.deepEqual(json(await byName({ sensor: "s1", celsius: 21.5 })), {});
    const message = expectError(await byName({ sensor: 7 }), 400, "INVALID_ARGUMENT");
    assert.match(message, /sensor/);
    // Field 1 (sensor), wire type 2, length 2, "s1": a valid binary Reading.
    const binary = Buffer.from([0x0a, 0x02, 0x73, 0x31]).toString("base64");
    const inline = (data: string) =>
      call("POST", "/v1/projects/rest/schemas:validateMessage", {
        schema: { type: "PROTOCOL_BUFFER", definition: PROTO },
        message: data,
        encoding: "BINARY",
      });
    assert.deepEqual(json(await inline(binary)), {});
    expectError(await inline(Buffer.from([0x0a, 0x09, 0x73]).toString("base64")), 400, "INVALID_ARGUMENT");
    expectError(await byName({ sensor: "s1" }, "ENCODING_UNSPECIFIED"), 400, "INVALID_ARGUMENT");
  });

  test("rest schemas - a topic with schemaSettings is returned with them and validates REST publishes", async () => {
    const id = uniqueName("readings");
    const schema = json(
      await call("POST", `/v1/projects/rest/schemas?schemaId=${id}`, { type: "AVRO", definition: AVRO }),
    );
    const topic = `projects/rest/topics/${uniqueName("readings")}`;
    expectError(
      await call("PUT", `/v1/${topic}`, { schemaSettings: { schema: "projects/rest/schemas/nope", encoding: "JSON" } }),
      404,
      "NOT_FOUND",
    );
    expectError(
      await call("PUT", `/v1/${topic}`, { schemaSettings: { schema: schema.name } }),
      400,
      "INVALID_ARGUMENT",
    );
    const created = json(
      await call("PUT", `/v1/${topic}`, {
        schemaSettings: { schema: schema.name, encoding: "JSON", firstRevisionId: schema.revisionId },
      }),
    );
    assert.deepEqual(created.schemaSettings, {
      schema: schema.name,
      encoding: "JSON",
      firstRevisionId: schema.revisionId,
    });
    assert.deepEqual(json(await call("GET", `/v1/${topic}`)).schemaSettings, created.schemaSettings);

    const subscription = `projects/rest/subscriptions/${uniqueName("readings-sub")}`;
    json(await call("PUT", `/v1/${subscription}`, { topic }));
    const refused = expectError(
      await call("POST", `/v1/${topic}:publish`, {
        messages: [{ data: b64({ sensor: "s1", celsius: 1 }) }, { data: b64({ sensor: "s2" }) }],
      }),
      400,
      "INVALID_ARGUMENT",
    );
    assert.match(refused, /^messages\[1\]: /);
    assert.match(refused, new RegExp(String(schema.name)));
    const published = json(
      await call("POST", `/v1/${topic}:publish`, { messages: [{ data: b64({ sensor: "s1", celsius: 1 }) }] }),
    );
    assert.equal((published.messageIds as string[]).length, 1);
    const pulled = json(await call("POST", `/v1/${subscription}:pull`, { maxMessages: 10 }));
    const messages = pulled.receivedMessages as Json[];
    assert.equal(messages.length, 1, "the refused request stored nothing");
    assert.deepEqual((messages[0]!.message as Json).attributes, {
      googclient_schemaname: schema.name,
      googclient_schemaencoding: "JSON",
      googclient_schemarevisionid: schema.revisionId,
    });

    // Removing the schema from the topic (update mask) lets any data through again.
    const updated = json(await call("PATCH", `/v1/${topic}`, { topic: {}, updateMask: "schemaSettings" }));
    assert.equal(updated.schemaSettings, undefined);
    json(await call("POST", `/v1/${topic}:publish`, { messages: [{ data: b64("not json") }] }));
  });
});
