// Hostile and malformed input over gRPC, raw HTTP/2 and REST: clear errors, and the server keeps serving.
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { after, before, describe, test } from "node:test";
import { createGrpcJsClients, type GrpcJsClients, grpc, grpcFailure, unary } from "../harness/grpc-js-clients.js";
import { grpcFrame, rawGrpcCall } from "../harness/raw-grpc.js";
import { fetchJson, type Json, type RestResponse } from "../harness/rest-client.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";

const { status } = grpc;
const MAX_MESSAGE_BYTES = 1_000;
const MAX_REQUEST_BYTES = 8_192;
const PUBLISH_PATH = "/google.pubsub.v1.Publisher/Publish";

interface PullResponse {
  receivedMessages: { ackId: string; message: { data: Buffer } }[];
}

/** The Google JSON error of a REST response, after checking its HTTP status. */
function restError(response: RestResponse, httpStatus: number): { code: number; status: string; message: string } {
  assert.equal(response.status, httpStatus, `HTTP ${response.status}: ${response.text}`);
  const error = (response.body as Json | undefined)?.error as { code: number; status: string; message: string };
  assert.ok(error !== undefined, `expected {"error": ...}, got ${response.text}`);
  assert.equal(error.code, httpStatus);
  assert.equal(typeof error.message, "string");
  return error;
}

describe("bad input", () => {
  let server: TestServer;
  let clients: GrpcJsClients;
  const project = uniqueName("bad");
  const topicName = (id: string) => `projects/${project}/topics/${id}`;
  const subscriptionName = (id: string) => `projects/${project}/subscriptions/${id}`;
  /** A topic and subscription a well-behaved client uses between bad inputs. */
  const canary = { topic: "", subscription: "" };
  let canaryCount = 0;

  before(async () => {
    server = await startTestServer({ maxMessageBytes: MAX_MESSAGE_BYTES, maxRequestBytes: MAX_REQUEST_BYTES });
    clients = createGrpcJsClients(server.hostPort);
    canary.topic = topicName(uniqueName("canary"));
    canary.subscription = subscriptionName(uniqueName("canary"));
    await unary(clients.publisher, "CreateTopic", { name: canary.topic });
    await unary(clients.subscriber, "CreateSubscription", { name: canary.subscription, topic: canary.topic });
  });
  after(async () => {
    clients?.close();
    await server?.close();
  });

  const rest = (method: string, path: string, body?: unknown, rawBody?: string) =>
    fetchJson(server.url, method, path, body, rawBody === undefined ? {} : { rawBody });

  /** A separate, well-behaved gRPC client publishes and pulls one message: the server still serves. */
  async function assertStillServes(after: string): Promise<void> {
    const other = createGrpcJsClients(server.hostPort);
    try {
      canaryCount++;
      const text = `canary-${canaryCount}`;
      await unary(other.publisher, "Publish", { topic: canary.topic, messages: [{ data: Buffer.from(text) }] });
      const response = await unary<PullResponse>(
        other.subscriber,
        "Pull",
        { subscription: canary.subscription, maxMessages: 10, returnImmediately: false },
        { deadlineMs: 5_000 },
      );
      const texts = response.receivedMessages.map((r) => r.message.data.toString());
      assert.ok(texts.includes(text), `after ${after}: the canary pull returned ${JSON.stringify(texts)}`);
      await unary(other.subscriber, "Acknowledge", {
        subscription: canary.subscription,
        ackIds: response.receivedMessages.map((r) => r.ackId),
      });
    } finally {
      other.close();
    }
  }

  test("bad input - invalid resource names are INVALID_ARGUMENT naming the field", { timeout: 30_000 }, async () => {
    const badIds = [
      "ab",
      "1starts-with-digit",
      "goog-reserved",
      "has space",
      "slash/inside",
      "a".repeat(256),
      "ünicode",
    ];
    for (const id of badIds) {
      const error = await grpcFailure(
        unary(clients.publisher, "CreateTopic", { name: `projects/${project}/topics/${id}` }),
      );
      assert.equal(error.code, status.INVALID_ARGUMENT, `topic id ${JSON.stringify(id)}: ${error.message}`);
      assert.match(error.details, /\bname\b/, `topic id ${JSON.stringify(id)}: the message names the field`);
    }
    const badNames = [
      "",
      "topics/abc",
      `projects/${project}/subscriptions/abc`,
      "projects//topics/abc",
      "projects/p/topics",
    ];
    for (const name of badNames) {
      const error = await grpcFailure(unary(clients.publisher, "CreateTopic", { name }));
      assert.equal(error.code, status.INVALID_ARGUMENT, `topic name ${JSON.stringify(name)}: ${error.message}`);
      assert.match(error.details, /\bname\b/);
    }
    const badTopic = await grpcFailure(
      unary(clients.subscriber, "CreateSubscription", {
        name: subscriptionName(uniqueName("sub")),
        topic: "not-a-topic",
      }),
    );
    assert.equal(badTopic.code, status.INVALID_ARGUMENT, badTopic.message);
    assert.match(badTopic.details, /\btopic\b/);
    const badSubscription = await grpcFailure(
      unary(clients.subscriber, "Pull", { subscription: "projects/x/subscriptions/-bad", maxMessages: 1 }),
    );
    assert.equal(badSubscription.code, status.INVALID_ARGUMENT, badSubscription.message);
    assert.match(badSubscription.details, /\bsubscription\b/);

    for (const id of ["ab", "goog123", "a%20bc", "9lives"]) {
      const error = restError(await rest("PUT", `/v1/projects/${project}/topics/${id}`), 400);
      assert.equal(error.status, "INVALID_ARGUMENT");
      assert.match(error.message, /\bname\b/, `REST topic id ${id}: ${error.message}`);
    }
    await assertStillServes("invalid names");
  });

  test("bad input - a message over maxMessageBytes is rejected with a clear message", { timeout: 30_000 }, async () => {
    const limitPattern = new RegExp(`${MAX_MESSAGE_BYTES}`);
    const tooBig = [
      { what: "data of 1001 bytes", message: { data: Buffer.alloc(MAX_MESSAGE_BYTES + 1, 120) } },
      {
        what: "data plus attributes over the limit",
        message: { data: Buffer.alloc(600, 120), attributes: { big: "y".repeat(450) } },
      },
    ];
    for (const { what, message } of tooBig) {
      const error = await grpcFailure(
        unary(clients.publisher, "Publish", { topic: canary.topic, messages: [message] }),
      );
      assert.ok(
        error.code === status.RESOURCE_EXHAUSTED || error.code === status.INVALID_ARGUMENT,
        `${what}: ${error.code} ${error.message}`,
      );
      assert.match(error.details, limitPattern, `${what}: the message states the limit`);
    }
    const atLimit = await unary<{ messageIds: string[] }>(clients.publisher, "Publish", {
      topic: canary.topic,
      messages: [{ data: Buffer.alloc(MAX_MESSAGE_BYTES, 120) }],
    });
    assert.equal(atLimit.messageIds.length, 1, "a message of exactly the limit is accepted");
    const drained = await unary<PullResponse>(
      clients.subscriber,
      "Pull",
      { subscription: canary.subscription, maxMessages: 10, returnImmediately: false },
      { deadlineMs: 5_000 },
    );
    await unary(clients.subscriber, "Acknowledge", {
      subscription: canary.subscription,
      ackIds: drained.receivedMessages.map((r) => r.ackId),
    });

    const response = await rest("POST", `/v1/${canary.topic}:publish`, {
      messages: [{ data: Buffer.alloc(MAX_MESSAGE_BYTES + 1, 120).toString("base64") }],
    });
    assert.ok(response.status === 429 || response.status === 400, `HTTP ${response.status}: ${response.text}`);
    assert.match(restError(response, response.status).message, limitPattern);
    await assertStillServes("oversized messages");
  });

  test("bad input - malformed JSON bodies are 400", { timeout: 30_000 }, async () => {
    const path = `/v1/${canary.topic}:publish`;
    for (const raw of ["{not json", '{"messages": [', "[]", '"a string"', "null", "42"]) {
      const error = restError(await rest("POST", path, undefined, raw), 400);
      assert.equal(error.status, "INVALID_ARGUMENT", `body ${raw}`);
    }
    await assertStillServes("malformed JSON");
  });

  test("bad input - invalid base64 in message data is 400", { timeout: 30_000 }, async () => {
    for (const data of ["!!!not base64***", "a", "ü€"]) {
      const response = await rest("POST", `/v1/${canary.topic}:publish`, { messages: [{ data }] });
      const error = restError(response, 400);
      assert.equal(error.status, "INVALID_ARGUMENT", `data ${JSON.stringify(data)}: ${response.text}`);
    }
    await assertStillServes("invalid base64");
  });

  test("bad input - unknown JSON fields are 400 and name the field", { timeout: 30_000 }, async () => {
    const topic = restError(await rest("PUT", `/v1/${topicName(uniqueName("topic"))}`, { colour: "red" }), 400);
    assert.match(topic.message, /colour/);
    const message = restError(
      await rest("POST", `/v1/${canary.topic}:publish`, { messages: [{ data: "aGk=", priority: 1 }] }),
      400,
    );
    assert.match(message.message, /priority/);
    const pull = restError(await rest("POST", `/v1/${canary.subscription}:pull`, { maxMessages: 1, wait: true }), 400);
    assert.match(pull.message, /wait/);
    await assertStillServes("unknown fields");
  });

  test("bad input - malformed and unknown ack ids are INVALID_ARGUMENT; an ack id repeated after its ack is ignored", {
    timeout: 30_000,
  }, async () => {
    const topic = topicName(uniqueName("acks"));
    const first = subscriptionName(uniqueName("acks-a"));
    const second = subscriptionName(uniqueName("acks-b"));
    await unary(clients.publisher, "CreateTopic", { name: topic });
    await unary(clients.subscriber, "CreateSubscription", { name: first, topic });
    await unary(clients.subscriber, "CreateSubscription", { name: second, topic });
    await unary(clients.publisher, "Publish", { topic, messages: [{ data: Buffer.from("ack me") }] });
    const pulled = await unary<PullResponse>(
      clients.subscriber,
      "Pull",
      { subscription: first, maxMessages: 1, returnImmediately: false },
      { deadlineMs: 5_000 },
    );
    const ackId = pulled.receivedMessages[0]!.ackId;

    const bad: [string, string, string][] = [
      ["malformed", first, "not-an-ack-id"],
      ["empty", first, ""],
      ["truncated", first, ackId.slice(0, Math.max(1, Math.floor(ackId.length / 2)))],
      ["of another subscription", second, ackId],
    ];
    for (const [what, subscription, id] of bad) {
      const ackError = await grpcFailure(unary(clients.subscriber, "Acknowledge", { subscription, ackIds: [id] }));
      assert.equal(ackError.code, status.INVALID_ARGUMENT, `Acknowledge ${what}: ${ackError.message}`);
      assert.match(ackError.details, /ack/i, `Acknowledge ${what}: the message is about the ack id`);
      const modifyError = await grpcFailure(
        unary(clients.subscriber, "ModifyAckDeadline", { subscription, ackIds: [id], ackDeadlineSeconds: 30 }),
      );
      assert.equal(modifyError.code, status.INVALID_ARGUMENT, `ModifyAckDeadline ${what}: ${modifyError.message}`);
    }
    const restAck = restError(await rest("POST", `/v1/${first}:acknowledge`, { ackIds: ["not-an-ack-id"] }), 400);
    assert.equal(restAck.status, "INVALID_ARGUMENT");

    await unary(clients.subscriber, "Acknowledge", { subscription: first, ackIds: [ackId] });
    await unary(clients.subscriber, "Acknowledge", { subscription: first, ackIds: [ackId] });
    await assertStillServes("bad ack ids");
  });

  test("bad input - a bad filter is INVALID_ARGUMENT naming filter", { timeout: 30_000 }, async () => {
    const filters = [
      "attributes.kind = ",
      'kind = "a"',
      'attributes.kind == "a"',
      'attributes.a = "x" AND',
      "(",
      "x".repeat(300),
    ];
    for (const filter of filters) {
      const error = await grpcFailure(
        unary(clients.subscriber, "CreateSubscription", {
          name: subscriptionName(uniqueName("filter")),
          topic: canary.topic,
          filter,
        }),
      );
      assert.equal(error.code, status.INVALID_ARGUMENT, `filter ${JSON.stringify(filter)}: ${error.message}`);
      assert.match(error.details, /filter/, `filter ${JSON.stringify(filter)}: the message names the field`);
    }
    const response = restError(
      await rest("PUT", `/v1/${subscriptionName(uniqueName("filter"))}`, {
        topic: canary.topic,
        filter: "attributes.",
      }),
      400,
    );
    assert.match(response.message, /filter/);
    await assertStillServes("bad filters");
  });

  test("bad input - truncated and garbage gRPC frames get a non-zero grpc-status with a message", {
    timeout: 30_000,
  }, async () => {
    const valid = Buffer.from([0x0a, 0x03, 0x61, 0x62, 0x63]); // field 1 (topic) = "abc"
    const cases: { what: string; body: Buffer; expect?: number }[] = [
      {
        what: "a frame cut short (declares 100 bytes, sends 10)",
        body: grpcFrame(Buffer.alloc(10, 1), { declaredLength: 100 }),
      },
      { what: "a header cut short (3 bytes)", body: Buffer.from([0, 0, 0]) },
      {
        what: "garbage protobuf",
        body: grpcFrame(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])),
      },
      { what: "a field with the wrong wire type", body: grpcFrame(Buffer.from([0x08, 0x96, 0x01])) },
      { what: "a compressed flag without grpc-encoding", body: grpcFrame(valid, { compressed: true }) },
      { what: "no message at all", body: Buffer.alloc(0) },
      { what: "two messages on a unary call", body: Buffer.concat([grpcFrame(valid), grpcFrame(valid)]) },
      {
        what: "a frame declaring 2 GiB",
        body: grpcFrame(Buffer.alloc(16), { declaredLength: 0x7fffffff }),
        expect: status.RESOURCE_EXHAUSTED,
      },
      {
        what: "a frame over maxRequestBytes",
        body: grpcFrame(Buffer.alloc(MAX_REQUEST_BYTES + 100, 0)),
        expect: status.RESOURCE_EXHAUSTED,
      },
      { what: "plain text", body: Buffer.from("hello, is this gRPC?") },
    ];
    for (const { what, body, expect } of cases) {
      const result = await rawGrpcCall(server.url, PUBLISH_PATH, body);
      assert.ok(result.grpcStatus !== undefined, `${what}: no grpc-status (HTTP ${result.httpStatus})`);
      assert.notEqual(result.grpcStatus, status.OK, `${what}: grpc-status 0`);
      if (expect !== undefined) assert.equal(result.grpcStatus, expect, `${what}: ${result.grpcMessage}`);
      assert.notEqual(result.grpcMessage, "", `${what}: grpc-status ${result.grpcStatus} without grpc-message`);
      await assertStillServes(what);
    }
    // A client that resets its stream mid-frame gets no answer; the server must not be wedged by it.
    await rawGrpcCall(server.url, PUBLISH_PATH, grpcFrame(Buffer.alloc(10, 1), { declaredLength: 1000 }), {
      reset: true,
    });
    await assertStillServes("a stream reset mid-frame");
  });

  test("bad input - an unknown gRPC method answers grpc-status 12 UNIMPLEMENTED with a message", {
    timeout: 30_000,
  }, async () => {
    const path = "/google.pubsub.v1.Publisher/NoSuchMethod";
    const result = await rawGrpcCall(server.url, path, grpcFrame(Buffer.alloc(0)));
    assert.equal(
      result.grpcStatus,
      status.UNIMPLEMENTED,
      `HTTP ${result.httpStatus}, content-type ${result.contentType}, grpc-status ${result.grpcStatus}`,
    );
    assert.notEqual(result.grpcMessage, "");
    const client = new grpc.Client(server.hostPort, grpc.credentials.createInsecure(), {
      "grpc.use_local_subchannel_pool": 1,
    });
    try {
      const error = await grpcFailure(
        new Promise((resolve, reject) => {
          client.makeUnaryRequest(
            path,
            (request: Buffer) => request,
            (response: Buffer) => response,
            Buffer.alloc(0),
            { deadline: Date.now() + 5_000 },
            (failure, response) => (failure === null ? resolve(response) : reject(failure)),
          );
        }),
      );
      assert.equal(error.code, status.UNIMPLEMENTED, error.message);
    } finally {
      client.close();
    }
    await assertStillServes("an unknown method");
  });

  test("bad input - a REST body over maxRequestBytes is 413", { timeout: 30_000 }, async () => {
    const big = JSON.stringify({ messages: [{ data: Buffer.alloc(MAX_REQUEST_BYTES * 2, 1).toString("base64") }] });
    const withLength = await rest("POST", `/v1/${canary.topic}:publish`, undefined, big);
    assert.equal(withLength.status, 413, withLength.text);
    assert.equal(restError(withLength, 413).status, "RESOURCE_EXHAUSTED");

    // Chunked, without content-length: the limit must hold while streaming too.
    const chunked = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const request = httpRequest(`${server.url}/v1/${canary.topic}:publish`, {
        method: "POST",
        agent: false,
        headers: { "content-type": "application/json", connection: "close" },
      });
      request.on("response", (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
        response.on("error", reject);
      });
      request.on("error", reject);
      for (let offset = 0; offset < big.length; offset += 1_024) request.write(big.slice(offset, offset + 1_024));
      request.end();
    });
    assert.equal(chunked.status, 413, chunked.text);
    await assertStillServes("oversized bodies");
  });

  test("bad input - after all of it the server is still healthy", { timeout: 30_000 }, async () => {
    assert.equal((await rest("GET", "/healthz")).status, 200);
    assert.equal((await rest("GET", "/readyz")).status, 200);
    const health = await unary<{ status: string }>(clients.health, "Check", { service: "" });
    assert.equal(health.status, "SERVING");
    await assertStillServes("everything");
  });
});
