// The Pub/Sub REST API (JSON over HTTP/1.1 and h2c), driven by fetch and by the curl binary.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { curlJson, curlVersion, fetchJson, type Json, type RestResponse } from "../harness/rest-client.js";
import { peersRequired, startTestServer, type TestServer } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";

type Call = (method: string, path: string, body?: unknown) => Promise<RestResponse>;

const curl = curlVersion();
/** A missing curl skips its tests locally (loudly) and fails them with CI=true. */
const curlSkip: string | false =
  curl !== null || peersRequired()
    ? false
    : "curl is not installed (apt-get install curl); CI=true makes this a failure";
if (curlSkip !== false) console.warn(`\n*** SKIPPING rest curl tests: ${curlSkip} ***\n`);

const b64 = (text: string | Uint8Array) => Buffer.from(text).toString("base64");
const fromB64 = (text: unknown) => Buffer.from(String(text), "base64");

/** Narrows a response body to a JSON object (fails the test otherwise). */
function json(response: RestResponse, expectedStatus = 200): Json {
  assert.equal(response.status, expectedStatus, `HTTP ${response.status}: ${response.text}`);
  assert.ok(
    typeof response.body === "object" && response.body !== null,
    `expected a JSON object, got ${response.text}`,
  );
  return response.body as Json;
}

/** Asserts the Google JSON error shape and returns the message. */
function expectError(response: RestResponse, httpStatus: number, grpcStatus: string): string {
  const body = json(response, httpStatus);
  const error = body.error as Json | undefined;
  assert.ok(error !== undefined, `expected {"error": ...}, got ${response.text}`);
  assert.equal(error.code, httpStatus);
  assert.equal(error.status, grpcStatus);
  assert.equal(typeof error.message, "string");
  assert.notEqual(error.message, "");
  return error.message as string;
}

describe("rest", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server?.close();
  });

  const clients: { label: string; skip: string | false; call: Call }[] = [
    { label: "fetch", skip: false, call: (method, path, body) => fetchJson(server.url, method, path, body) },
    {
      label: "curl",
      skip: curlSkip,
      call: (method, path, body) => {
        if (curl === null) throw new Error("curl is required with CI=true but is not installed");
        return curlJson(server.url, method, path, body);
      },
    },
  ];

  for (const { label, skip, call } of clients) {
    describe(`rest (${label})`, { skip }, () => {
      const project = uniqueName(`rest-${label}`);
      const topicPath = (id: string) => `/v1/projects/${project}/topics/${id}`;
      const subscriptionPath = (id: string) => `/v1/projects/${project}/subscriptions/${id}`;
      const snapshotPath = (id: string) => `/v1/projects/${project}/snapshots/${id}`;
      const fullName = (path: string) => path.slice("/v1/".length);

      /** Pulls (long-poll) until `count` messages arrived or 10 s passed. */
      async function pullUpTo(subscription: string, count: number): Promise<Json[]> {
        const received: Json[] = [];
        const deadline = Date.now() + 10_000;
        while (received.length < count && Date.now() < deadline) {
          const body = json(await call("POST", `${subscription}:pull`, { maxMessages: count - received.length }));
          received.push(...((body.receivedMessages as Json[] | undefined) ?? []));
        }
        return received;
      }
      const dataOf = (received: Json[]) => received.map((r) => fromB64((r.message as Json).data).toString()).sort();
      const ack = async (subscription: string, received: Json[]) =>
        json(await call("POST", `${subscription}:acknowledge`, { ackIds: received.map((r) => r.ackId) }));

      test(`rest (${label}) - topics and subscriptions are created, read, updated, listed and deleted`, {
        timeout: 30_000,
      }, async () => {
        const topic = topicPath(uniqueName("topic"));
        const created = json(await call("PUT", topic, { labels: { team: "a" } }));
        assert.deepEqual(created, { ...created, name: fullName(topic), labels: { team: "a" } });
        assert.equal(json(await call("GET", topic)).name, fullName(topic));
        const updated = json(await call("PATCH", topic, { topic: { labels: { team: "b" } }, updateMask: "labels" }));
        assert.deepEqual(updated.labels, { team: "b" });

        const subscription = subscriptionPath(uniqueName("sub"));
        const createdSubscription = json(
          await call("PUT", subscription, { topic: fullName(topic), ackDeadlineSeconds: 20, labels: { tier: "1" } }),
        );
        assert.equal(createdSubscription.name, fullName(subscription));
        assert.equal(createdSubscription.topic, fullName(topic));
        assert.equal(createdSubscription.ackDeadlineSeconds, 20);
        const patched = json(
          await call("PATCH", subscription, {
            subscription: { ackDeadlineSeconds: 45 },
            updateMask: "ackDeadlineSeconds",
          }),
        );
        assert.equal(patched.ackDeadlineSeconds, 45);
        assert.deepEqual(patched.labels, { tier: "1" }, "fields outside the update mask keep their values");
        assert.equal(json(await call("GET", subscription)).ackDeadlineSeconds, 45);

        const ofTopic = json(await call("GET", `${topic}/subscriptions`));
        assert.deepEqual(ofTopic.subscriptions, [fullName(subscription)]);

        json(await call("DELETE", subscription));
        expectError(await call("GET", subscription), 404, "NOT_FOUND");
        json(await call("DELETE", topic));
        expectError(await call("GET", topic), 404, "NOT_FOUND");
      });

      test(`rest (${label}) - publish with base64 data and attributes, then pull and acknowledge`, {
        timeout: 30_000,
      }, async () => {
        const topic = topicPath(uniqueName("topic"));
        const subscription = subscriptionPath(uniqueName("sub"));
        json(await call("PUT", topic));
        json(await call("PUT", subscription, { topic: fullName(topic) }));
        const binary = Uint8Array.from([0, 255, 1, 254, 10, 13]);
        const published = json(
          await call("POST", `${topic}:publish`, {
            messages: [
              { data: b64("hello"), attributes: { lang: "en", source: label } },
              { data: b64(binary), attributes: { lang: "bin" } },
              { attributes: { only: "attributes" } },
            ],
          }),
        );
        const ids = published.messageIds as string[];
        assert.equal(ids.length, 3);
        assert.equal(new Set(ids).size, 3);

        const received = await pullUpTo(subscription, 3);
        assert.equal(received.length, 3, JSON.stringify(received));
        const byId = new Map(received.map((r) => [(r.message as Json).messageId as string, r.message as Json]));
        assert.deepEqual([...byId.keys()].sort(), [...ids].sort());
        const hello = byId.get(ids[0]!)!;
        assert.equal(fromB64(hello.data).toString(), "hello");
        assert.deepEqual(hello.attributes, { lang: "en", source: label });
        assert.match(String(hello.publishTime), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
        assert.deepEqual([...fromB64(byId.get(ids[1]!)!.data)], [...binary]);
        const attributesOnly = byId.get(ids[2]!)!;
        assert.ok(attributesOnly.data === undefined || attributesOnly.data === "", "no data stays empty");
        assert.deepEqual(attributesOnly.attributes, { only: "attributes" });

        assert.deepEqual(await ack(subscription, received), {});
        const remaining = json(
          await call("POST", `${subscription}:pull`, { maxMessages: 10, returnImmediately: true }),
        );
        assert.deepEqual(remaining.receivedMessages ?? [], [], "acked messages are gone");
      });

      test(`rest (${label}) - snapshots are created, listed and deleted; seek to a snapshot and to a time replays`, {
        timeout: 30_000,
      }, async () => {
        const topic = topicPath(uniqueName("topic"));
        const subscription = subscriptionPath(uniqueName("sub"));
        json(await call("PUT", topic));
        json(await call("PUT", subscription, { topic: fullName(topic), retainAckedMessages: true }));
        const before = new Date(Date.now() - 1_000).toISOString();
        json(await call("POST", `${topic}:publish`, { messages: [{ data: b64("one") }, { data: b64("two") }] }));

        const snapshot = snapshotPath(uniqueName("snap"));
        const createdSnapshot = json(await call("PUT", snapshot, { subscription: fullName(subscription) }));
        assert.equal(createdSnapshot.name, fullName(snapshot));
        assert.equal(createdSnapshot.topic, fullName(topic));
        assert.equal(typeof createdSnapshot.expireTime, "string");
        const listed = json(await call("GET", `/v1/projects/${project}/snapshots`));
        assert.ok(
          (listed.snapshots as Json[]).some((s) => s.name === fullName(snapshot)),
          listed.snapshots as never,
        );
        assert.deepEqual(json(await call("GET", `${topic}/snapshots`)).snapshots, [fullName(snapshot)]);
        assert.equal(json(await call("GET", snapshot)).name, fullName(snapshot));

        const first = await pullUpTo(subscription, 2);
        assert.deepEqual(dataOf(first), ["one", "two"]);
        await ack(subscription, first);

        assert.deepEqual(json(await call("POST", `${subscription}:seek`, { snapshot: fullName(snapshot) })), {});
        const fromSnapshot = await pullUpTo(subscription, 2);
        assert.deepEqual(dataOf(fromSnapshot), ["one", "two"], "seek to the snapshot restores its unacked messages");
        await ack(subscription, fromSnapshot);

        assert.deepEqual(json(await call("POST", `${subscription}:seek`, { time: before })), {});
        const fromTime = await pullUpTo(subscription, 2);
        assert.deepEqual(dataOf(fromTime), ["one", "two"], "seek to a time replays retained acked messages");
        await ack(subscription, fromTime);

        json(await call("DELETE", snapshot));
        expectError(await call("GET", snapshot), 404, "NOT_FOUND");
      });

      test(`rest (${label}) - listings page with pageSize=2 and nextPageToken`, { timeout: 30_000 }, async () => {
        const ownProject = uniqueName("paging");
        const topics = ["aa1", "aa2", "aa3", "aa4", "aa5"].map((id) => `projects/${ownProject}/topics/${id}`);
        for (const name of topics) json(await call("PUT", `/v1/${name}`));
        const subscriptions = ["sb1", "sb2", "sb3"].map((id) => `projects/${ownProject}/subscriptions/${id}`);
        for (const name of subscriptions) json(await call("PUT", `/v1/${name}`, { topic: topics[0] }));

        const walk = async (collection: "topics" | "subscriptions") => {
          const pages: number[] = [];
          const names: string[] = [];
          let token = "";
          do {
            const query = `pageSize=2${token === "" ? "" : `&pageToken=${encodeURIComponent(token)}`}`;
            const page = json(await call("GET", `/v1/projects/${ownProject}/${collection}?${query}`));
            const items = (page[collection] as Json[] | undefined) ?? [];
            pages.push(items.length);
            names.push(...items.map((item) => item.name as string));
            token = (page.nextPageToken as string | undefined) ?? "";
            assert.ok(pages.length <= 10, "paging terminates");
          } while (token !== "");
          return { pages, names };
        };
        const topicPages = await walk("topics");
        assert.deepEqual(topicPages.pages, [2, 2, 1]);
        assert.deepEqual(topicPages.names.sort(), topics);
        const subscriptionPages = await walk("subscriptions");
        assert.deepEqual(subscriptionPages.pages, [2, 1]);
        assert.deepEqual(subscriptionPages.names.sort(), subscriptions);
      });

      test(`rest (${label}) - errors answer 404, 409 and 400 with the Google JSON error body`, {
        timeout: 30_000,
      }, async () => {
        const topic = topicPath(uniqueName("topic"));
        expectError(await call("GET", topic), 404, "NOT_FOUND");
        expectError(await call("POST", `${topic}:publish`, { messages: [{ data: b64("x") }] }), 404, "NOT_FOUND");
        json(await call("PUT", topic));
        expectError(await call("PUT", topic), 409, "ALREADY_EXISTS");
        const subscription = subscriptionPath(uniqueName("sub"));
        const message = expectError(
          await call("PUT", subscription, { topic: fullName(topic), ackDeadlineSeconds: 5 }),
          400,
          "INVALID_ARGUMENT",
        );
        assert.match(message, /ack_deadline_seconds/);
        expectError(
          await call("PUT", subscription, { topic: fullName(topicPath(uniqueName("missing"))) }),
          404,
          "NOT_FOUND",
        );
        json(await call("PUT", subscription, { topic: fullName(topic) }));
        expectError(await call("PUT", subscription, { topic: fullName(topic) }), 409, "ALREADY_EXISTS");
        assert.match(
          expectError(await call("POST", `${subscription}:pull`, { maxMessages: 0 }), 400, "INVALID_ARGUMENT"),
          /max_messages/,
        );
        // An unknown path answers Pub/Sub's HTML 404 page, not a JSON NOT_FOUND: pubsub-fidelity.test.ts.
      });

      test(`rest (${label}) - GET /healthz and /readyz answer 200`, { timeout: 30_000 }, async () => {
        const live = await call("GET", "/healthz");
        assert.equal(live.status, 200, live.text);
        const ready = await call("GET", "/readyz");
        assert.equal(ready.status, 200, ready.text);
        assert.deepEqual(ready.body, { status: "ready" });
      });
    });
  }

  test("rest (curl) - the same port answers REST over h2c with prior knowledge", {
    skip: curlSkip,
    timeout: 30_000,
  }, async () => {
    if (curl === null) throw new Error("curl is required with CI=true but is not installed");
    const topic = `/v1/projects/${uniqueName("h2c")}/topics/${uniqueName("topic")}`;
    const created = await curlJson(server.url, "PUT", topic, { labels: { proto: "h2c" } }, ["--http2-prior-knowledge"]);
    assert.equal(created.status, 200, created.text);
    const fetched = await curlJson(server.url, "GET", topic, undefined, ["--http2-prior-knowledge"]);
    assert.deepEqual((fetched.body as Json).labels, { proto: "h2c" });
    const missing = await curlJson(server.url, "GET", `${topic}-gone`, undefined, ["--http2-prior-knowledge"]);
    assert.equal(missing.status, 404, missing.text);
  });
});
