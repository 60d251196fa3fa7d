// Push subscriptions end to end: a real node:http receiver gets Pub/Sub envelopes with a verifiable OIDC bearer JWT.
import assert from "node:assert/strict";
import { Agent, createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { createRemoteJWKSet, jwtVerify } from "jose";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";

// Small local helpers: this file depends only on committed harness code.
type Json = Record<string, unknown>;
interface RestResponse {
  status: number;
  body: unknown;
  text: string;
}

/** A REST call with `connection: close`, so no idle socket outlives the test. */
async function fetchJson(baseUrl: string, method: string, path: string, body?: unknown): Promise<RestResponse> {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { connection: "close", ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await response.text();
  return { status: response.status, body: text === "" ? undefined : JSON.parse(text), text };
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
let sequence = 0;
const uniqueName = (prefix: string) => `${prefix}-${process.pid}-${Date.now().toString(36)}-${++sequence}`;

async function waitFor(condition: () => boolean, options: { timeoutMs: number; describe: () => string }) {
  const deadline = Date.now() + options.timeoutMs;
  while (!condition()) {
    if (Date.now() >= deadline) throw new Error(`timed out after ${options.timeoutMs} ms: ${options.describe()}`);
    await delay(20);
  }
}

/** One push request as the receiver saw it. */
interface Push {
  authorization: string;
  contentType: string;
  body: Json;
}

function ok(response: RestResponse, status = 200): Json {
  assert.equal(response.status, status, `HTTP ${response.status}: ${response.text}`);
  return (response.body ?? {}) as Json;
}

async function readAll(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

describe("push subscriptions", () => {
  let server: TestServer;
  let receiver: Server;
  let endpoint: string;
  const pushes: Push[] = [];
  /** Data of messages whose first push is answered with 500. */
  const failFirst = new Set<string>(["msg-7"]);
  const failed = new Set<string>();
  /** Pushes to /raw (no-wrapper subscriptions). */
  const raw: { headers: IncomingMessage["headers"]; body: string }[] = [];
  const jwksAgent = new Agent({ keepAlive: false });

  before(async () => {
    server = await startTestServer();
    receiver = createServer((request, response) => {
      void readAll(request).then((text) => {
        if (request.url === "/raw") {
          raw.push({ headers: request.headers, body: text });
          response.writeHead(200).end();
          return;
        }
        const body = JSON.parse(text) as Json;
        pushes.push({
          authorization: String(request.headers.authorization ?? ""),
          contentType: String(request.headers["content-type"] ?? ""),
          body,
        });
        const data = Buffer.from(String((body.message as Json).data), "base64").toString("utf8");
        if (failFirst.has(data) && !failed.has(data)) {
          failed.add(data);
          response.writeHead(500).end("try again");
          return;
        }
        response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/push`;
  });

  after(async () => {
    receiver.closeAllConnections();
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
    jwksAgent.destroy();
    await server.close();
  });

  test("delivers envelopes with an OIDC token, redelivers after a 500, stops when push config is removed", async () => {
    const call = (method: string, path: string, body?: unknown) => fetchJson(server.url, method, path, body);
    const topic = uniqueName("push-topic");
    const sub = uniqueName("push-sub");
    const subscriptionName = `projects/p/subscriptions/${sub}`;
    const audience = "https://receiver.example/push";
    ok(await call("PUT", `/v1/projects/p/topics/${topic}`, {}));
    ok(
      await call("PUT", `/v1/${subscriptionName}`, {
        topic: `projects/p/topics/${topic}`,
        ackDeadlineSeconds: 10,
        pushConfig: { pushEndpoint: endpoint, oidcToken: { serviceAccountEmail: "pusher@p.iam.example", audience } },
      }),
    );

    const messages = Array.from({ length: 50 }, (_, i) => ({
      data: Buffer.from(`msg-${i}`).toString("base64"),
      attributes: { index: String(i) },
    }));
    const published = ok(await call("POST", `/v1/projects/p/topics/${topic}:publish`, { messages }));
    assert.equal((published.messageIds as string[]).length, 50);

    const dataOf = (push: Push) => Buffer.from(String((push.body.message as Json).data), "base64").toString("utf8");
    await waitFor(() => new Set(pushes.map(dataOf)).size === 50 && failed.size === 1 && pushes.length >= 51, {
      timeoutMs: 15_000,
      describe: () => `${pushes.length} pushes, ${new Set(pushes.map(dataOf)).size} distinct`,
    });
    // Acked pushes are not delivered again (the lease would expire after 10 s; 2xx acked them at once).
    await delay(1_500);
    const counts = new Map<string, number>();
    for (const push of pushes) counts.set(dataOf(push), (counts.get(dataOf(push)) ?? 0) + 1);
    for (let i = 0; i < 50; i++) assert.equal(counts.get(`msg-${i}`), i === 7 ? 2 : 1, `pushes of msg-${i}`);

    // Envelope form.
    const first = pushes.find((push) => dataOf(push) === "msg-3")!;
    assert.match(first.contentType, /^application\/json/);
    assert.equal(first.body.subscription, subscriptionName);
    assert.equal("deliveryAttempt" in first.body, false, "no dead-letter policy, so no deliveryAttempt");
    const message = first.body.message as Json;
    assert.deepEqual(message.attributes, { index: "3" });
    assert.equal(typeof message.messageId, "string");
    assert.equal(message.message_id, message.messageId);
    assert.ok((published.messageIds as string[]).includes(String(message.messageId)));
    assert.match(String(message.publishTime), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    assert.equal(message.publish_time, message.publishTime);

    // Every push carries a JWT that verifies against the server's JWKS.
    const jwks = createRemoteJWKSet(new URL(`${server.url}/.well-known/jwks.json`), { agent: jwksAgent });
    for (const push of pushes) {
      assert.match(push.authorization, /^Bearer /);
      const { payload, protectedHeader } = await jwtVerify(push.authorization.slice(7), jwks, {
        audience,
        issuer: "streamgate",
        algorithms: ["RS256"],
      });
      assert.equal(payload.email, "pusher@p.iam.example");
      assert.equal(payload.sub, "pusher@p.iam.example");
      assert.equal(typeof protectedHeader.kid, "string");
      assert.ok(payload.exp! - payload.iat! === 3600);
    }

    // Removing the push config stops pushes: the next message stays for pull.
    ok(await call("POST", `/v1/${subscriptionName}:modifyPushConfig`, { pushConfig: {} }));
    await delay(2_000); // the worker rescans every second
    const before = pushes.length;
    ok(
      await call("POST", `/v1/projects/p/topics/${topic}:publish`, {
        messages: [{ data: Buffer.from("after-pull").toString("base64") }],
      }),
    );
    const pulled = ok(await call("POST", `/v1/${subscriptionName}:pull`, { maxMessages: 10 }));
    const received = (pulled.receivedMessages ?? []) as Json[];
    assert.deepEqual(
      received.map((entry) => Buffer.from(String((entry.message as Json).data), "base64").toString("utf8")),
      ["after-pull"],
    );
    await delay(1_200);
    assert.equal(pushes.length, before, "no push after the push config was removed");
  });

  test("no-wrapper pushes send the raw data, with metadata and attribute headers only under writeMetadata", async () => {
    const call = (method: string, path: string, body?: unknown) => fetchJson(server.url, method, path, body);
    const topic = uniqueName("raw-topic");
    const bare = `projects/p/subscriptions/${uniqueName("raw-bare")}`;
    const subscriptionName = `projects/p/subscriptions/${uniqueName("raw-sub")}`;
    ok(await call("PUT", `/v1/projects/p/topics/${topic}`, {}));
    ok(
      await call("PUT", `/v1/${bare}`, {
        topic: `projects/p/topics/${topic}`,
        pushConfig: { pushEndpoint: endpoint.replace("/push", "/raw"), noWrapper: {} },
      }),
    );
    const created = ok(
      await call("PUT", `/v1/${subscriptionName}`, {
        topic: `projects/p/topics/${topic}`,
        pushConfig: { pushEndpoint: endpoint.replace("/push", "/raw"), noWrapper: { writeMetadata: true } },
      }),
    );
    assert.deepEqual((created.pushConfig as Json).noWrapper, { writeMetadata: true }, "writeMetadata is kept");
    ok(
      await call("POST", `/v1/projects/p/topics/${topic}:publish`, {
        messages: [
          {
            data: Buffer.from("raw body").toString("base64"),
            attributes: { color: "red x", "content-length": "1", "x-goog-pubsub-message-id": "spoofed" },
          },
        ],
      }),
    );
    await waitFor(() => raw.length === 2, { timeoutMs: 10_000, describe: () => `${raw.length} raw pushes` });
    const withMetadata = raw.find((push) => push.headers["x-goog-pubsub-subscription-name"] !== undefined);
    const without = raw.find((push) => push !== withMetadata);
    assert.ok(withMetadata !== undefined && without !== undefined, "one push of each subscription");
    assert.equal(withMetadata.body, "raw body");
    assert.equal(withMetadata.headers["content-type"], "application/octet-stream");
    assert.equal(withMetadata.headers["x-goog-pubsub-subscription-name"], subscriptionName);
    assert.equal(withMetadata.headers.color, "red x", "an attribute is a header named by its key");
    assert.equal(withMetadata.headers["x-goog-pubsub-attr-color"], undefined);
    assert.notEqual(withMetadata.headers["x-goog-pubsub-message-id"], "spoofed", "attributes cannot spoof metadata");
    assert.equal(withMetadata.headers["content-length"], "8", "attributes cannot reframe the request");
    assert.equal(withMetadata.headers.authorization, undefined);
    assert.equal(without.body, "raw body");
    const leaked = Object.keys(without.headers).filter((name) => name.startsWith("x-goog-pubsub") || name === "color");
    assert.deepEqual(leaked, [], "without writeMetadata only the body is delivered");
    ok(await call("DELETE", `/v1/${bare}`));
    ok(await call("DELETE", `/v1/${subscriptionName}`));
  });
});
