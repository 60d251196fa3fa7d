// Pub/Sub fidelity with the official @google-cloud/pubsub client on both engines: IAM policies (stored, etags,
// enforced bindings under auth), fields as Pub/Sub answers them, strict REST base64, push write-metadata headers.
import assert from "node:assert/strict";
import { createServer as createHttpServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { PubSub } from "@google-cloud/pubsub";
import type * as grpc from "@grpc/grpc-js";
import { SignJWT } from "jose";
import {
  findNatsServerBinary,
  NATS_SERVER_NOT_FOUND,
  type NatsServer,
  startNatsServer,
} from "../harness/nats-server.js";
import { fetchJson, type Json } from "../harness/rest-client.js";
import { peersRequired, startTestServer, type TestServer } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";
import { waitFor } from "../harness/wait-for.js";

// The client probes the GCE metadata server for credentials; there is none here, and the probe only adds warnings.
process.env.METADATA_SERVER_DETECTION ??= "none";

const SECRET = "fidelity-test-secret-of-at-least-32-bytes!";
const project = "fidelity";

let natsMissing: string | false = false;
try {
  findNatsServerBinary();
} catch (error) {
  if (!String(error).includes(NATS_SERVER_NOT_FOUND) || peersRequired()) throw error;
  natsMissing = `SKIPPED: ${String(error)}`;
  console.warn(`pubsub-fidelity: ${natsMissing}`);
}

async function token(subject: string, grants?: Record<string, string[]>): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(grants === undefined ? {} : { streamgate: grants })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(subject)
    .setIssuedAt(now - 10)
    .setExpirationTime(now + 600)
    .sign(new TextEncoder().encode(SECRET));
}

/** gRPC code of a rejected client call. */
async function codeOf(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
  } catch (error) {
    return (error as { code?: number }).code ?? -1;
  }
  assert.fail("the call succeeded");
}

for (const engine of ["embedded", "jetstream"] as const) {
  describe(`pubsub fidelity (${engine})`, { skip: engine === "jetstream" && natsMissing, timeout: 120_000 }, () => {
    let server: TestServer;
    let nats: NatsServer | undefined;
    let adminToken: string;
    const clients: PubSub[] = [];

    /** The official client, unchanged, with a bearer token added to each call's metadata. */
    function client(bearer: string): PubSub {
      const pubsub = new PubSub({
        projectId: project,
        apiEndpoint: server.hostPort,
        emulatorMode: true,
        // Each client owns its connection, so closing it closes the socket (the shared pool keeps it for a while).
        "grpc.use_local_subchannel_pool": 1,
        "grpc.callInvocationTransformer": (properties: { metadata: grpc.Metadata }) => {
          properties.metadata.set("authorization", `Bearer ${bearer}`);
          return properties;
        },
      } as ConstructorParameters<typeof PubSub>[0]);
      clients.push(pubsub);
      return pubsub;
    }
    const rest = (method: string, path: string, body?: unknown, rawBody?: string) =>
      fetchJson(server.url, method, path, body, {
        headers: { authorization: `Bearer ${adminToken}` },
        ...(rawBody === undefined ? {} : { rawBody }),
      });

    before(async () => {
      adminToken = await token("root", { admin: ["*"] });
      if (engine === "jetstream") {
        nats = await startNatsServer();
        // The embedded suite runs on the default (lean) gRPC path, this one on connect's: IAMPolicy is on both.
        server = await startTestServer({
          engine: "jetstream",
          natsUrl: nats.url,
          authSecret: SECRET,
          grpcPath: "connect",
        });
      } else server = await startTestServer({ authSecret: SECRET });
    });
    after(async () => {
      try {
        for (const pubsub of clients) {
          // @google-cloud/pubsub 5.3: SubscriberClient.close() closes the IamClient it sends IAM calls through only
          // once its own stub exists; a client that made IAM calls only would leave that channel open. One
          // Subscriber call makes the stub, so close() then closes both.
          await pubsub.getSubscriptions({ pageSize: 1, autoPaginate: false });
          await pubsub.close();
        }
        await server?.close();
      } finally {
        await nats?.stop();
      }
    });

    test(`iam (${engine}) - topic.iam getPolicy, setPolicy and testPermissions round-trip with etags`, async () => {
      const pubsub = client(adminToken);
      const [topic] = await pubsub.createTopic(uniqueName("iam-topic"));
      const [empty] = await topic.iam.getPolicy();
      assert.deepEqual(empty.bindings ?? [], []);
      assert.equal(Buffer.from(empty.etag as Uint8Array).toString("base64"), "ACAB", "an unset policy's etag");
      const bindings = [{ role: "roles/pubsub.publisher", members: ["user:bob", "serviceAccount:svc"] }];
      const [set] = await topic.iam.setPolicy({ bindings, etag: empty.etag });
      assert.deepEqual(set.bindings, [
        { ...bindings[0], members: ["serviceAccount:svc", "user:bob"], condition: null },
      ]);
      assert.equal(set.version, 1);
      const [read] = await topic.iam.getPolicy();
      assert.deepEqual(read.bindings, set.bindings);
      assert.deepEqual(Buffer.from(read.etag as Uint8Array), Buffer.from(set.etag as Uint8Array));
      const [permissions] = await topic.iam.testPermissions(["pubsub.topics.publish", "pubsub.topics.update"]);
      assert.deepEqual(permissions, { "pubsub.topics.publish": true, "pubsub.topics.update": true });

      // A write that read the policy before `set` lost the race: ABORTED, and the stored policy is unchanged.
      assert.equal(await codeOf(topic.iam.setPolicy({ bindings: [], etag: empty.etag })), 10);
      const [unchanged] = await topic.iam.getPolicy();
      assert.deepEqual(unchanged.bindings, set.bindings);

      assert.equal(await codeOf(pubsub.topic(uniqueName("no-such-topic")).iam.getPolicy()), 5, "NOT_FOUND");
      assert.equal(
        await codeOf(topic.iam.setPolicy({ bindings: [{ role: "roles/storage.admin", members: ["user:x"] }] })),
        3,
        "an unsupported role is INVALID_ARGUMENT",
      );
    });

    test(`iam (${engine}) - subscription and snapshot policies; a deleted and recreated resource has none`, async () => {
      const pubsub = client(adminToken);
      const [topic] = await pubsub.createTopic(uniqueName("iam-sub-topic"));
      const name = uniqueName("iam-sub");
      const [subscription] = await topic.createSubscription(name);
      const [set] = await subscription.iam.setPolicy({
        bindings: [{ role: "roles/pubsub.subscriber", members: ["allAuthenticatedUsers"] }],
      });
      assert.deepEqual(set.bindings?.[0]?.members, ["allAuthenticatedUsers"]);
      const [read] = await subscription.iam.getPolicy();
      assert.deepEqual(read.bindings, set.bindings);
      const [permissions] = await subscription.iam.testPermissions(["pubsub.subscriptions.consume"]);
      assert.deepEqual(permissions, { "pubsub.subscriptions.consume": true });

      // Snapshots over REST (the client has no snapshot IAM helper), GET and POST forms.
      const snapshot = `projects/${project}/snapshots/${uniqueName("iam-snap")}`;
      assert.equal((await rest("PUT", `/v1/${snapshot}`, { subscription: subscription.name })).status, 200);
      const policy = await rest("POST", `/v1/${snapshot}:setIamPolicy`, {
        policy: { bindings: [{ role: "roles/pubsub.viewer", members: ["user:carol"] }] },
      });
      assert.equal(policy.status, 200, policy.text);
      const got = await rest("GET", `/v1/${snapshot}:getIamPolicy?options.requestedPolicyVersion=1`);
      assert.deepEqual((got.body as Json).bindings, [{ role: "roles/pubsub.viewer", members: ["user:carol"] }]);
      assert.equal((got.body as Json).etag, (policy.body as Json).etag);
      const tested = await rest("POST", `/v1/${snapshot}:testIamPermissions`, {
        permissions: ["pubsub.snapshots.seek", "pubsub.topics.publish"],
      });
      assert.deepEqual((tested.body as Json).permissions, ["pubsub.snapshots.seek"], "only the kind's permissions");

      await subscription.delete();
      const [again] = await topic.createSubscription(name);
      const [fresh] = await again.iam.getPolicy();
      assert.deepEqual(fresh.bindings ?? [], [], "the recreated subscription does not inherit the old policy");
      assert.equal((await rest("DELETE", `/v1/${snapshot}`)).status, 200);
      assert.equal((await rest("PUT", `/v1/${snapshot}`, { subscription: again.name })).status, 200);
      const recreated = await rest("POST", `/v1/${snapshot}:getIamPolicy`, {});
      assert.equal((recreated.body as Json).bindings, undefined, "the recreated snapshot has no policy");
    });

    test(`iam (${engine}) - a binding grants publish to the token's subject; removing it denies again`, async () => {
      const admin = client(adminToken);
      const topicName = uniqueName("iam-auth");
      await admin.createTopic(topicName);
      // Bob may read his own subscription, nothing on the topic.
      const bob = client(await token("bob", { subscribe: ["subscriptions/bob-*"] }));
      const bobTopic = bob.topic(topicName, { batching: { maxMessages: 1 } });
      assert.equal(await codeOf(bobTopic.publishMessage({ data: Buffer.from("denied") })), 7, "PERMISSION_DENIED");
      assert.equal(await codeOf(bobTopic.iam.getPolicy()), 7, "reading a policy needs admin");
      const [before] = await bobTopic.iam.testPermissions(["pubsub.topics.publish"]);
      assert.deepEqual(before, { "pubsub.topics.publish": false });

      const [policy] = await admin
        .topic(topicName)
        .iam.setPolicy({ bindings: [{ role: "roles/pubsub.publisher", members: ["user:bob"] }] });
      const [messageId] = await Promise.all([bobTopic.publishMessage({ data: Buffer.from("granted") })]);
      assert.equal(typeof messageId, "string");
      const [granted] = await bobTopic.iam.testPermissions(["pubsub.topics.publish", "pubsub.topics.update"]);
      assert.deepEqual(granted, { "pubsub.topics.publish": true, "pubsub.topics.update": false });
      assert.equal(await codeOf(bobTopic.delete()), 7, "the publisher role does not make bob an admin");

      await admin.topic(topicName).iam.setPolicy({ bindings: [], etag: policy.etag });
      assert.equal(await codeOf(bobTopic.publishMessage({ data: Buffer.from("revoked") })), 7);
    });

    test(`iam (${engine}) - a subscriber binding lets the subject stream and ack; a live stream needs the topic's`, async () => {
      const admin = client(adminToken);
      const [topic] = await admin.createTopic(uniqueName("iam-consume"));
      const [subscription] = await topic.createSubscription(uniqueName("iam-consume-sub"));
      await topic.publishMessage({ data: Buffer.from("for carol") });
      const carolToken = await token("carol");
      const carol = client(carolToken);
      const denied = carol.subscription(subscription.name);
      const refusal = new Promise<number>((resolve) =>
        denied.once("error", (error: { code?: number }) => resolve(error.code ?? -1)),
      );
      denied.on("message", () => assert.fail("no message before the binding"));
      assert.equal(await refusal, 7, "PERMISSION_DENIED without a binding");
      await denied.close();

      await subscription.iam.setPolicy({ bindings: [{ role: "roles/pubsub.subscriber", members: ["user:carol"] }] });
      const listening = carol.subscription(subscription.name);
      const errors: Error[] = [];
      listening.on("error", (error: Error) => errors.push(error));
      const data = await new Promise<string>((resolve) =>
        listening.once("message", (message: { data: Buffer; ack(): void }) => {
          message.ack();
          resolve(message.data.toString());
        }),
      );
      await listening.close();
      assert.equal(data, "for carol");
      assert.deepEqual(errors, []);

      // SSE on the topic needs the topic's subscriber binding (attachSubscription), not the subscription's.
      const events = `${server.url}/v1/${topic.name}/events?from=earliest`;
      const sse = (signal: AbortSignal) =>
        fetch(events, { headers: { authorization: `Bearer ${carolToken}`, connection: "close" }, signal });
      const before = await sse(AbortSignal.timeout(5_000));
      assert.equal(before.status, 403);
      await before.body?.cancel();
      await topic.iam.setPolicy({ bindings: [{ role: "roles/pubsub.subscriber", members: ["user:carol"] }] });
      const stream = new AbortController();
      const after = await sse(stream.signal);
      assert.equal(after.status, 200);
      const reader = after.body!.getReader();
      let text = "";
      while (!text.includes("event: message")) text += new TextDecoder().decode((await reader.read()).value);
      stream.abort();
      await reader.cancel().catch(() => undefined);
    });

    test(`fields (${engine}) - Google's get-subscription sample, state ACTIVE, stored fields round-trip`, async () => {
      const pubsub = client(adminToken);
      const topicName = uniqueName("fields");
      const [topic] = await pubsub.createTopic({
        name: topicName,
        messageStoragePolicy: { allowedPersistenceRegions: ["europe-west1"], enforceInTransit: true },
        kmsKeyName: "projects/p/locations/l/keyRings/r/cryptoKeys/k",
        tags: { "tagKeys/123": "tagValues/456" },
      });
      const [topicMetadata] = await topic.getMetadata();
      assert.equal(topicMetadata.state, "ACTIVE");
      assert.deepEqual(topicMetadata.messageStoragePolicy, {
        allowedPersistenceRegions: ["europe-west1"],
        enforceInTransit: true,
      });
      assert.equal(topicMetadata.kmsKeyName, "projects/p/locations/l/keyRings/r/cryptoKeys/k");
      assert.deepEqual(topicMetadata.tags, {}, "tags are input only, as in Pub/Sub");
      const [subscription] = await topic.createSubscription(uniqueName("fields-sub"));

      // The sample reads pushConfig.pushEndpoint of a pull subscription: pushConfig must be an object.
      const [metadata] = await pubsub.subscription(subscription.name).getMetadata();
      assert.equal(metadata.pushConfig?.pushEndpoint, "");
      assert.equal(metadata.state, "ACTIVE");
      const rawSubscription = await rest("GET", `/v1/${subscription.name}`);
      assert.deepEqual((rawSubscription.body as Json).pushConfig, {}, "REST answers pushConfig: {}");
      assert.equal((rawSubscription.body as Json).state, "ACTIVE");

      const [updated] = await topic.setMetadata({ messageStoragePolicy: { allowedPersistenceRegions: ["us-east1"] } });
      assert.deepEqual(updated.messageStoragePolicy, {
        allowedPersistenceRegions: ["us-east1"],
        enforceInTransit: false,
      });
      const restTopic = await rest("PATCH", `/v1/projects/${project}/topics/${topicName}`, {
        topic: { tags: { a: "b" } },
        updateMask: "tags",
      });
      assert.equal(restTopic.status, 400, "tags are immutable");
    });

    test(`rest (${engine}) - publish data must be base64 (standard or URL-safe); unknown paths get Pub/Sub's 404`, async () => {
      const topicName = uniqueName("b64");
      const topic = `/v1/projects/${project}/topics/${topicName}`;
      assert.equal((await rest("PUT", topic, {})).status, 200);
      const bad = await rest("POST", `${topic}:publish`, undefined, '{"messages":[{"data":"hello world"}]}');
      assert.equal(bad.status, 400);
      const error = (bad.body as { error: { status: string; message: string } }).error;
      assert.equal(error.status, "INVALID_ARGUMENT");
      assert.match(error.message, /messages\[0\]\.data/);
      const mixed = await rest("POST", `${topic}:publish`, { messages: [{ data: "aGk" }, { data: "a+b_" }] });
      assert.equal(mixed.status, 400, "one string uses one alphabet");
      assert.match((mixed.body as { error: { message: string } }).error.message, /messages\[1\]\.data/);

      const accepted = await rest("POST", `${topic}:publish`, {
        messages: [{ data: "aGk/" }, { data: "aGk_" }, { data: "aGk" }, { data: "aGk=" }],
      });
      assert.equal(accepted.status, 200, accepted.text);
      const subscription = `/v1/projects/${project}/subscriptions/${uniqueName("b64-sub")}`;
      assert.equal((await rest("PUT", subscription, { topic: `projects/${project}/topics/${topicName}` })).status, 200);
      assert.equal(
        (await rest("POST", `${topic}:publish`, { messages: [{ data: "aGk/" }, { data: "aGk_" }] })).status,
        200,
      );
      const pulled = await rest("POST", `${subscription}:pull`, { maxMessages: 10 });
      const datas = ((pulled.body as Json).receivedMessages as { message: { data: string } }[]).map((received) =>
        Buffer.from(received.message.data, "base64"),
      );
      assert.deepEqual(datas, [Buffer.from([0x68, 0x69, 0x3f]), Buffer.from([0x68, 0x69, 0x3f])], "both alphabets");

      const unknown = await fetch(`${server.url}/v1/projects/${project}/topics/${topicName}:frobnicate`, {
        method: "POST",
        headers: { authorization: `Bearer ${adminToken}`, connection: "close" },
      });
      assert.equal(unknown.status, 404);
      assert.match(unknown.headers.get("content-type") ?? "", /^text\/html/);
      assert.match(await unknown.text(), /The requested URL <code>.*:frobnicate<\/code> was not found on this server/);
    });

    test(`push (${engine}) - noWrapper.writeMetadata is kept and sends attributes as headers named by key`, async () => {
      const received: { headers: IncomingMessage["headers"]; body: string }[] = [];
      const endpoint: Server = createHttpServer((request, response) => {
        const chunks: Buffer[] = [];
        request.on("data", (chunk: Buffer) => chunks.push(chunk));
        request.on("end", () => {
          received.push({ headers: request.headers, body: Buffer.concat(chunks).toString("utf8") });
          response.writeHead(204, { connection: "close" }).end();
        });
      });
      await new Promise<void>((resolve) => endpoint.listen(0, "127.0.0.1", resolve));
      try {
        const pushEndpoint = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/in`;
        const pubsub = client(adminToken);
        const [topic] = await pubsub.createTopic(uniqueName("push-md"));
        const [subscription] = await topic.createSubscription(uniqueName("push-md-sub"), {
          pushConfig: { pushEndpoint, noWrapper: { writeMetadata: true } },
        });
        const [metadata] = await subscription.getMetadata();
        assert.deepEqual(metadata.pushConfig?.noWrapper, { writeMetadata: true });
        await topic.publishMessage({ data: Buffer.from("plain bytes"), attributes: { region: "eu" } });
        await waitFor(() => received.length > 0, { timeoutMs: 15_000, describe: () => "a push" });
        const [push] = received;
        assert.equal(push!.body, "plain bytes");
        assert.equal(push!.headers.region, "eu");
        assert.equal(push!.headers["x-goog-pubsub-subscription-name"], subscription.name);
        assert.match(String(push!.headers["x-goog-pubsub-publish-time"]), /^\d{4}-\d\d-\d\dT/);
        await subscription.delete();
      } finally {
        await new Promise<void>((resolve) => endpoint.close(() => resolve()));
      }
    });
  });
}
