// Pub/Sub v1, health and reflection over gRPC, driven by @grpc/grpc-js with the real .proto files.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { bidi, createGrpcJsClients, type GrpcJsClients, grpc, grpcFailure, unary } from "../harness/grpc-js-clients.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";
import { delay, waitFor, withTimeout } from "../harness/wait-for.js";

interface PubsubMessage {
  data: Buffer;
  attributes: Record<string, string>;
  messageId: string;
  publishTime: { seconds: string; nanos: number } | null;
  orderingKey: string;
}
interface ReceivedMessage {
  ackId: string;
  message: PubsubMessage;
  deliveryAttempt: number;
}
interface PullResponse {
  receivedMessages: ReceivedMessage[];
}
interface Topic {
  name: string;
  labels: Record<string, string>;
}
interface Subscription {
  name: string;
  topic: string;
  detached: boolean;
  ackDeadlineSeconds: number;
}

const { status } = grpc;

describe("grpc-js", () => {
  let server: TestServer;
  let clients: GrpcJsClients;
  const project = `projects/${uniqueName("grpc")}`;
  const topicPath = (id: string) => `${project}/topics/${id}`;
  const subscriptionPath = (id: string) => `${project}/subscriptions/${id}`;
  const snapshotPath = (id: string) => `${project}/snapshots/${id}`;

  before(async () => {
    server = await startTestServer();
    clients = createGrpcJsClients(server.hostPort);
  });
  after(async () => {
    clients?.close();
    await server?.close();
  });

  const publisher = (method: string, request: unknown, deadlineMs?: number) =>
    unary(clients.publisher, method, request, { deadlineMs });
  const subscriber = (method: string, request: unknown, deadlineMs?: number) =>
    unary(clients.subscriber, method, request, { deadlineMs });

  async function createTopic(prefix = "topic"): Promise<string> {
    const name = topicPath(uniqueName(prefix));
    await publisher("CreateTopic", { name });
    return name;
  }
  async function createSubscription(topic: string, extra: Record<string, unknown> = {}): Promise<string> {
    const name = subscriptionPath(uniqueName("sub"));
    await subscriber("CreateSubscription", { name, topic, ...extra });
    return name;
  }
  async function publish(topic: string, texts: string[], attributes: Record<string, string> = {}): Promise<string[]> {
    const messages = texts.map((text) => ({ data: Buffer.from(text), attributes }));
    const response = await unary<{ messageIds: string[] }>(clients.publisher, "Publish", { topic, messages });
    return response.messageIds;
  }
  /** Pulls (long-poll) until `count` messages arrived or `timeoutMs` passed. */
  async function pullUpTo(subscription: string, count: number, timeoutMs = 10_000): Promise<ReceivedMessage[]> {
    const received: ReceivedMessage[] = [];
    const deadline = Date.now() + timeoutMs;
    while (received.length < count && Date.now() < deadline) {
      const wait = Math.max(1_500, Math.min(5_000, deadline - Date.now()));
      const response = await unary<PullResponse>(
        clients.subscriber,
        "Pull",
        { subscription, maxMessages: count - received.length, returnImmediately: false },
        { deadlineMs: wait },
      );
      received.push(...response.receivedMessages);
    }
    return received;
  }
  async function pullNow(subscription: string, maxMessages = 100): Promise<ReceivedMessage[]> {
    const response = await unary<PullResponse>(clients.subscriber, "Pull", {
      subscription,
      maxMessages,
      returnImmediately: true,
    });
    return response.receivedMessages;
  }
  const texts = (received: ReceivedMessage[]) => received.map((r) => r.message.data.toString()).sort();

  test("grpc-js publisher - a topic is created, read, listed, relabelled with an update mask and deleted", {
    timeout: 30_000,
  }, async () => {
    const name = topicPath(uniqueName("crud"));
    const created = await unary<Topic>(clients.publisher, "CreateTopic", { name, labels: { team: "a" } });
    assert.equal(created.name, name);
    assert.deepEqual(created.labels, { team: "a" });

    const fetched = await unary<Topic>(clients.publisher, "GetTopic", { topic: name });
    assert.deepEqual({ name: fetched.name, labels: fetched.labels }, { name, labels: { team: "a" } });

    const listed = await unary<{ topics: Topic[] }>(clients.publisher, "ListTopics", { project, pageSize: 1000 });
    assert.ok(
      listed.topics.some((topic) => topic.name === name),
      `ListTopics should include ${name}, got ${listed.topics.map((t) => t.name).join(", ")}`,
    );

    const updated = await unary<Topic>(clients.publisher, "UpdateTopic", {
      topic: { name, labels: { team: "b", env: "test" } },
      updateMask: { paths: ["labels"] },
    });
    assert.deepEqual(updated.labels, { team: "b", env: "test" });
    const refetched = await unary<Topic>(clients.publisher, "GetTopic", { topic: name });
    assert.deepEqual(refetched.labels, { team: "b", env: "test" });

    await publisher("DeleteTopic", { topic: name });
    const error = await grpcFailure(publisher("GetTopic", { topic: name }));
    assert.equal(error.code, status.NOT_FOUND, error.message);
  });

  test("grpc-js publisher - ListTopics pages with page_size and next_page_token", { timeout: 30_000 }, async () => {
    const ownProject = `projects/${uniqueName("paging")}`;
    const names = ["topic-a", "topic-b", "topic-c"].map((id) => `${ownProject}/topics/${id}`);
    for (const name of names) await publisher("CreateTopic", { name });
    const first = await unary<{ topics: Topic[]; nextPageToken: string }>(clients.publisher, "ListTopics", {
      project: ownProject,
      pageSize: 2,
    });
    assert.equal(first.topics.length, 2);
    assert.notEqual(first.nextPageToken, "", "a first page of 2 out of 3 topics must carry a next_page_token");
    const second = await unary<{ topics: Topic[]; nextPageToken: string }>(clients.publisher, "ListTopics", {
      project: ownProject,
      pageSize: 2,
      pageToken: first.nextPageToken,
    });
    assert.equal(second.topics.length, 1);
    assert.equal(second.nextPageToken, "");
    assert.deepEqual([...first.topics, ...second.topics].map((topic) => topic.name).sort(), names);
  });

  test("grpc-js publisher - Publish batches return one id per message and every message is pulled with its attributes", {
    timeout: 30_000,
  }, async () => {
    const topic = await createTopic();
    const subscription = await createSubscription(topic);
    const all: string[] = [];
    const ids: string[] = [];
    for (let batch = 0; batch < 3; batch++) {
      const batchTexts = Array.from({ length: 100 }, (_, i) => `b${batch}-m${i}`);
      const batchIds = await publish(topic, batchTexts, { batch: String(batch), source: "grpc-js" });
      assert.equal(batchIds.length, 100, "Publish returns one message id per message");
      all.push(...batchTexts);
      ids.push(...batchIds);
    }
    assert.equal(new Set(ids).size, 300, "message ids are unique");

    const received = await pullUpTo(subscription, 300);
    assert.deepEqual(texts(received), [...all].sort());
    const byId = new Map(received.map((r) => [r.message.messageId, r.message]));
    assert.deepEqual([...byId.keys()].sort(), [...ids].sort(), "pulled message ids are the published ones");
    for (const { message } of received) {
      const batch = message.data.toString().slice(1, 2);
      assert.deepEqual(message.attributes, { batch, source: "grpc-js" });
      assert.ok(message.publishTime !== null && Number(message.publishTime.seconds) > 0, "publish_time is set");
    }
    await subscriber("Acknowledge", { subscription, ackIds: received.map((r) => r.ackId) });
  });

  test("grpc-js subscriber - Pull with return_immediately on an empty subscription answers at once with nothing", {
    timeout: 30_000,
  }, async () => {
    const topic = await createTopic();
    const subscription = await createSubscription(topic);
    const started = Date.now();
    const received = await pullNow(subscription);
    assert.deepEqual(received, []);
    assert.ok(Date.now() - started < 1_000, `took ${Date.now() - started} ms`);
  });

  test("grpc-js subscriber - a long-poll Pull returns as soon as a message is published", {
    timeout: 30_000,
  }, async () => {
    const topic = await createTopic();
    const subscription = await createSubscription(topic);
    const started = Date.now();
    const pending = unary<PullResponse>(
      clients.subscriber,
      "Pull",
      { subscription, maxMessages: 10, returnImmediately: false },
      { deadlineMs: 15_000 },
    );
    await delay(500);
    const publishedAt = Date.now();
    await publish(topic, ["wake up"]);
    const response = await pending;
    const answeredAt = Date.now();
    assert.deepEqual(texts(response.receivedMessages), ["wake up"]);
    assert.ok(
      answeredAt - started >= 450,
      `the long poll answered before anything was published (${answeredAt - started} ms)`,
    );
    assert.ok(
      answeredAt - publishedAt < 2_000,
      `the long poll answered ${answeredAt - publishedAt} ms after the publish`,
    );
    await subscriber("Acknowledge", { subscription, ackIds: response.receivedMessages.map((r) => r.ackId) });
  });

  test("grpc-js subscriber - Acknowledge removes a message and ModifyAckDeadline 0 redelivers one", {
    timeout: 30_000,
  }, async () => {
    const topic = await createTopic();
    const subscription = await createSubscription(topic);
    await publish(topic, ["keep", "retry"]);
    const first = await pullUpTo(subscription, 2);
    assert.deepEqual(texts(first), ["keep", "retry"]);
    const keep = first.find((r) => r.message.data.toString() === "keep")!;
    const retry = first.find((r) => r.message.data.toString() === "retry")!;
    await subscriber("Acknowledge", { subscription, ackIds: [keep.ackId] });
    await subscriber("ModifyAckDeadline", { subscription, ackIds: [retry.ackId], ackDeadlineSeconds: 0 });

    const again = await pullUpTo(subscription, 1, 5_000);
    assert.deepEqual(texts(again), ["retry"], "only the nacked message comes back");
    assert.equal(again[0]!.message.messageId, retry.message.messageId);
    await subscriber("Acknowledge", { subscription, ackIds: [again[0]!.ackId] });
    await delay(300);
    assert.deepEqual(await pullNow(subscription), [], "acked messages are not delivered again");
  });

  test("grpc-js subscriber - StreamingPull with max_outstanding_messages=3 never has more than 3 unacked messages out", {
    timeout: 30_000,
  }, async () => {
    const topic = await createTopic();
    const subscription = await createSubscription(topic);
    const total = 30;
    await publish(
      topic,
      Array.from({ length: total }, (_, i) => `m${i}`),
    );
    const call = bidi(clients.subscriber, "StreamingPull");
    const seen = new Set<string>();
    let outstanding = 0;
    let maxOutstanding = 0;
    let streamError: Error | undefined;
    const ended = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
    call.on("error", (error: Error) => {
      streamError = error;
    });
    call.on("data", (response: { receivedMessages: ReceivedMessage[] }) => {
      const batch = response.receivedMessages;
      outstanding += batch.length;
      maxOutstanding = Math.max(maxOutstanding, outstanding);
      for (const received of batch) seen.add(received.message.data.toString());
      setTimeout(() => {
        // Count the messages as settled before the ack leaves, so the server can never see fewer than we count.
        outstanding -= batch.length;
        call.write({ ackIds: batch.map((r) => r.ackId) });
      }, 30);
    });
    call.write({ subscription, streamAckDeadlineSeconds: 30, maxOutstandingMessages: 3 });
    try {
      await waitFor(() => seen.size === total || streamError !== undefined, {
        timeoutMs: 20_000,
        describe: () => `received ${seen.size}/${total}`,
      });
      assert.equal(streamError, undefined, `stream failed: ${streamError?.message}`);
      assert.equal(seen.size, total);
      assert.ok(maxOutstanding <= 3, `${maxOutstanding} messages were outstanding at once`);
      assert.ok(maxOutstanding >= 1);
    } finally {
      await delay(100);
      call.end();
      const closed = await Promise.race([ended, delay(3_000).then(() => undefined)]);
      if (closed === undefined) call.cancel();
      await ended;
    }
  });

  test("grpc-js subscriber - snapshots are created, listed, read and deleted, and Seek to one replays what it captured", {
    timeout: 30_000,
  }, async () => {
    const topic = await createTopic();
    const subscription = await createSubscription(topic);
    await publish(topic, ["s1", "s2", "s3"]);
    const snapshot = snapshotPath(uniqueName("snap"));
    const created = await unary<{ name: string; topic: string }>(clients.subscriber, "CreateSnapshot", {
      name: snapshot,
      subscription,
      labels: { purpose: "replay" },
    });
    assert.equal(created.name, snapshot);
    assert.equal(created.topic, topic);

    const fetched = await unary<{ name: string; topic: string; labels: Record<string, string>; expireTime: unknown }>(
      clients.subscriber,
      "GetSnapshot",
      { snapshot },
    );
    assert.equal(fetched.name, snapshot);
    assert.equal(fetched.topic, topic);
    assert.deepEqual(fetched.labels, { purpose: "replay" });
    assert.ok(fetched.expireTime !== null, "a snapshot has an expire_time");
    const listed = await unary<{ snapshots: { name: string }[] }>(clients.subscriber, "ListSnapshots", {
      project,
      pageSize: 1000,
    });
    assert.ok(
      listed.snapshots.some((s) => s.name === snapshot),
      "ListSnapshots includes the snapshot",
    );
    const ofTopic = await unary<{ snapshots: string[] }>(clients.publisher, "ListTopicSnapshots", { topic });
    assert.deepEqual(ofTopic.snapshots, [snapshot]);

    const first = await pullUpTo(subscription, 3);
    assert.deepEqual(texts(first), ["s1", "s2", "s3"]);
    await subscriber("Acknowledge", { subscription, ackIds: first.map((r) => r.ackId) });
    await delay(200);
    assert.deepEqual(await pullNow(subscription), []);

    await subscriber("Seek", { subscription, snapshot });
    const replayed = await pullUpTo(subscription, 3);
    assert.deepEqual(
      texts(replayed),
      ["s1", "s2", "s3"],
      "Seek to the snapshot makes its unacked messages deliverable again",
    );
    await subscriber("Acknowledge", { subscription, ackIds: replayed.map((r) => r.ackId) });

    await subscriber("DeleteSnapshot", { snapshot });
    const gone = await grpcFailure(subscriber("GetSnapshot", { snapshot }));
    assert.equal(gone.code, status.NOT_FOUND, gone.message);
    const seekGone = await grpcFailure(subscriber("Seek", { subscription, snapshot }));
    assert.equal(seekGone.code, status.NOT_FOUND, seekGone.message);
  });

  test("grpc-js subscriber - Seek to a time replays acked messages the subscription retains", {
    timeout: 30_000,
  }, async () => {
    const topic = await createTopic();
    const subscription = await createSubscription(topic, { retainAckedMessages: true });
    const before = Date.now() - 1_000;
    await publish(topic, ["t1", "t2"]);
    const first = await pullUpTo(subscription, 2);
    await subscriber("Acknowledge", { subscription, ackIds: first.map((r) => r.ackId) });
    await subscriber("Seek", {
      subscription,
      time: { seconds: String(Math.floor(before / 1000)), nanos: 0 },
    });
    const replayed = await pullUpTo(subscription, 2);
    assert.deepEqual(texts(replayed), ["t1", "t2"]);
    await subscriber("Acknowledge", { subscription, ackIds: replayed.map((r) => r.ackId) });
  });

  test("grpc-js publisher - ListTopicSubscriptions names every subscription of the topic", {
    timeout: 30_000,
  }, async () => {
    const topic = await createTopic();
    const other = await createTopic();
    const names = [await createSubscription(topic), await createSubscription(topic), await createSubscription(topic)];
    await createSubscription(other);
    const listed = await unary<{ subscriptions: string[] }>(clients.publisher, "ListTopicSubscriptions", { topic });
    assert.deepEqual([...listed.subscriptions].sort(), [...names].sort());
  });

  test("grpc-js publisher - DetachSubscription marks it detached and Pull then fails with FAILED_PRECONDITION", {
    timeout: 30_000,
  }, async () => {
    const topic = await createTopic();
    const subscription = await createSubscription(topic);
    await publish(topic, ["before detach"]);
    await publisher("DetachSubscription", { subscription });
    const detached = await unary<Subscription>(clients.subscriber, "GetSubscription", { subscription });
    assert.equal(detached.detached, true);
    const error = await grpcFailure(subscriber("Pull", { subscription, maxMessages: 10, returnImmediately: true }));
    assert.equal(error.code, status.FAILED_PRECONDITION, error.message);
    assert.ok(error.details.length > 0, "the error carries a message");
    await publish(topic, ["after detach"]);
  });

  test("grpc-js errors - Seek to a snapshot of another topic is FAILED_PRECONDITION", { timeout: 30_000 }, async () => {
    const topic = await createTopic();
    const other = await createTopic();
    const subscription = await createSubscription(topic);
    const otherSubscription = await createSubscription(other);
    const snapshot = snapshotPath(uniqueName("snap"));
    await subscriber("CreateSnapshot", { name: snapshot, subscription: otherSubscription });
    const error = await grpcFailure(subscriber("Seek", { subscription, snapshot }));
    assert.equal(error.code, status.FAILED_PRECONDITION, error.message);
    assert.match(error.details, /topic/);
  });

  test("grpc-js errors - NOT_FOUND for unknown topics, subscriptions and snapshots", { timeout: 30_000 }, async () => {
    const missingTopic = topicPath(uniqueName("missing"));
    const missingSubscription = subscriptionPath(uniqueName("missing"));
    const calls: [string, () => Promise<unknown>][] = [
      ["GetTopic", () => publisher("GetTopic", { topic: missingTopic })],
      ["DeleteTopic", () => publisher("DeleteTopic", { topic: missingTopic })],
      ["Publish", () => publisher("Publish", { topic: missingTopic, messages: [{ data: Buffer.from("x") }] })],
      [
        "CreateSubscription",
        () => subscriber("CreateSubscription", { name: missingSubscription, topic: missingTopic }),
      ],
      ["GetSubscription", () => subscriber("GetSubscription", { subscription: missingSubscription })],
      [
        "Pull",
        () => subscriber("Pull", { subscription: missingSubscription, maxMessages: 1, returnImmediately: true }),
      ],
      ["GetSnapshot", () => subscriber("GetSnapshot", { snapshot: snapshotPath(uniqueName("missing")) })],
      [
        "CreateSnapshot",
        () =>
          subscriber("CreateSnapshot", { name: snapshotPath(uniqueName("snap")), subscription: missingSubscription }),
      ],
      ["ListTopicSubscriptions", () => publisher("ListTopicSubscriptions", { topic: missingTopic })],
    ];
    for (const [method, call] of calls) {
      const error = await grpcFailure(call());
      assert.equal(error.code, status.NOT_FOUND, `${method}: ${error.message}`);
      assert.ok(error.details.length > 0, `${method}: the error has a message`);
    }
  });

  test("grpc-js errors - ALREADY_EXISTS for a second topic, subscription or snapshot of the same name", {
    timeout: 30_000,
  }, async () => {
    const topic = await createTopic();
    const subscription = await createSubscription(topic);
    const snapshot = snapshotPath(uniqueName("snap"));
    await subscriber("CreateSnapshot", { name: snapshot, subscription });
    const calls: [string, () => Promise<unknown>][] = [
      ["CreateTopic", () => publisher("CreateTopic", { name: topic })],
      ["CreateSubscription", () => subscriber("CreateSubscription", { name: subscription, topic })],
      ["CreateSnapshot", () => subscriber("CreateSnapshot", { name: snapshot, subscription })],
    ];
    for (const [method, call] of calls) {
      const error = await grpcFailure(call());
      assert.equal(error.code, status.ALREADY_EXISTS, `${method}: ${error.message}`);
    }
  });

  test("grpc-js errors - INVALID_ARGUMENT names the offending field", { timeout: 30_000 }, async () => {
    const topic = await createTopic();
    const subscription = await createSubscription(topic);
    const cases: [string, () => Promise<unknown>, RegExp][] = [
      ["CreateTopic with a bad id", () => publisher("CreateTopic", { name: topicPath("1starts-with-digit") }), /name/],
      ["GetTopic with a bad name", () => publisher("GetTopic", { topic: "topics/nope" }), /topic/],
      [
        "CreateSubscription with ack_deadline_seconds 5",
        () =>
          subscriber("CreateSubscription", { name: subscriptionPath(uniqueName("sub")), topic, ackDeadlineSeconds: 5 }),
        /ack_deadline_seconds/,
      ],
      [
        "CreateSubscription with max_delivery_attempts 3",
        () =>
          subscriber("CreateSubscription", {
            name: subscriptionPath(uniqueName("sub")),
            topic,
            deadLetterPolicy: { deadLetterTopic: topic, maxDeliveryAttempts: 3 },
          }),
        /dead_letter_policy\.max_delivery_attempts/,
      ],
      ["Publish with no messages", () => publisher("Publish", { topic, messages: [] }), /messages/],
      ["Pull with max_messages 0", () => subscriber("Pull", { subscription, maxMessages: 0 }), /max_messages/],
      [
        "ModifyAckDeadline of 601 s",
        () => subscriber("ModifyAckDeadline", { subscription, ackIds: ["x"], ackDeadlineSeconds: 601 }),
        /ack_deadline_seconds/,
      ],
      ["Acknowledge with no ack ids", () => subscriber("Acknowledge", { subscription, ackIds: [] }), /ack_ids/],
      [
        "UpdateTopic without update_mask",
        () => publisher("UpdateTopic", { topic: { name: topic, labels: { a: "b" } } }),
        /update_mask/,
      ],
      ["Seek without a target", () => subscriber("Seek", { subscription }), /target/],
    ];
    for (const [what, call, field] of cases) {
      const error = await grpcFailure(call());
      assert.equal(error.code, status.INVALID_ARGUMENT, `${what}: ${error.message}`);
      assert.match(error.details, field, `${what}: the message names the field`);
    }
  });

  test("grpc-js health - Check reports SERVING for the server and each Pub/Sub service, NOT_FOUND for others", {
    timeout: 30_000,
  }, async () => {
    for (const service of ["", "google.pubsub.v1.Publisher", "google.pubsub.v1.Subscriber"]) {
      const response = await unary<{ status: string }>(clients.health, "Check", { service });
      assert.equal(response.status, "SERVING", `service "${service}"`);
    }
    const error = await grpcFailure(unary(clients.health, "Check", { service: "no.such.Service" }));
    assert.equal(error.code, status.NOT_FOUND, error.message);
  });

  for (const version of ["v1", "v1alpha"] as const) {
    test(`grpc-js reflection ${version} - lists the Pub/Sub services and returns descriptors for a symbol`, {
      timeout: 30_000,
    }, async () => {
      const client = version === "v1" ? clients.reflectionV1 : clients.reflectionV1Alpha;
      const responses = await reflect(client, [
        { host: "", listServices: "" },
        { host: "", fileContainingSymbol: "google.pubsub.v1.Publisher" },
        { host: "", fileContainingSymbol: "google.pubsub.v1.Subscriber.StreamingPull" },
        { host: "", fileContainingSymbol: "no.such.Symbol" },
      ]);
      assert.equal(responses.length, 4);
      const [list, publisherFile, methodFile, missing] = responses as [ReflectionResponse, ...ReflectionResponse[]];
      const services = (list.listServicesResponse?.service ?? []).map((s) => s.name);
      for (const name of ["google.pubsub.v1.Publisher", "google.pubsub.v1.Subscriber", "grpc.health.v1.Health"]) {
        assert.ok(services.includes(name), `list_services should name ${name}; got ${services.join(", ")}`);
      }
      for (const response of [publisherFile!, methodFile!]) {
        const files = (response.fileDescriptorResponse?.fileDescriptorProto ?? []).map((bytes) =>
          fromBinary(FileDescriptorProtoSchema, bytes),
        );
        const pubsub = files.find((file) => file.name === "google/pubsub/v1/pubsub.proto");
        assert.ok(pubsub, `descriptors should include pubsub.proto; got ${files.map((f) => f.name).join(", ")}`);
        assert.deepEqual(
          pubsub.service.map((s) => s.name),
          ["Publisher", "Subscriber"],
        );
        assert.ok(
          pubsub.service[1]!.method.some((m) => m.name === "StreamingPull"),
          "Subscriber descriptor lists StreamingPull",
        );
        const names = new Set(files.map((file) => file.name));
        for (const dependency of pubsub.dependency) {
          assert.ok(names.has(dependency), `descriptor set should include the import ${dependency}`);
        }
      }
      assert.equal(missing!.errorResponse?.errorCode, status.NOT_FOUND, "an unknown symbol answers NOT_FOUND");
    });
  }
});

interface ReflectionResponse {
  listServicesResponse?: { service: { name: string }[] } | null;
  fileDescriptorResponse?: { fileDescriptorProto: Buffer[] } | null;
  errorResponse?: { errorCode: number; errorMessage: string } | null;
}

/** Sends reflection requests on one stream, half-closes, and collects every response. */
async function reflect(client: grpc.Client, requests: unknown[]): Promise<ReflectionResponse[]> {
  const call = bidi(client, "ServerReflectionInfo");
  const responses: ReflectionResponse[] = [];
  const done = new Promise<void>((resolve, reject) => {
    call.on("data", (response: ReflectionResponse) => responses.push(response));
    call.on("error", reject);
    call.on("status", (result: grpc.StatusObject) => {
      if (result.code === status.OK) resolve();
      else reject(new Error(`reflection stream ended with ${result.code}: ${result.details}`));
    });
  });
  for (const request of requests) call.write(request);
  call.end();
  await withTimeout(done, 10_000, "reflection stream");
  return responses;
}
