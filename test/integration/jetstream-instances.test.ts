// Two streamgate instances on one nats-server (jetstream engine): shared resources, cross-instance delivery, shared subscriptions.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { bidi, createGrpcJsClients, type GrpcJsClients, type grpc, unary } from "../harness/grpc-js-clients.js";
import { startNatsPeer, startNatsServer } from "../harness/nats-server.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";
import { delay, waitFor } from "../harness/wait-for.js";

interface ReceivedMessage {
  ackId: string;
  message: { data: Buffer; messageId: string };
}

const PROJECT = "instances";

const { peer: nats, missing } = await startNatsPeer(() => startNatsServer());

describe("jetstream instances", { skip: missing }, () => {
  let a: TestServer;
  let b: TestServer;
  let clientsA: GrpcJsClients;
  let clientsB: GrpcJsClients;

  before(async () => {
    a = await startTestServer({ engine: "jetstream", natsUrl: nats!.url });
    b = await startTestServer({ engine: "jetstream", natsUrl: nats!.url });
    clientsA = createGrpcJsClients(a.hostPort);
    clientsB = createGrpcJsClients(b.hostPort);
  });

  after(async () => {
    clientsA?.close();
    clientsB?.close();
    await a?.close();
    await b?.close();
    await nats?.stop();
  });

  const topicPath = (id: string) => `projects/${PROJECT}/topics/${id}`;
  const subscriptionPath = (id: string) => `projects/${PROJECT}/subscriptions/${id}`;

  async function publish(clients: GrpcJsClients, topic: string, texts: string[]): Promise<string[]> {
    const response = await unary<{ messageIds: string[] }>(clients.publisher, "Publish", {
      topic,
      messages: texts.map((text) => ({ data: Buffer.from(text) })),
    });
    return response.messageIds;
  }

  test("jetstream instances - a topic created on A is visible on B within 1 s", { timeout: 10_000 }, async () => {
    const topic = topicPath(uniqueName("visible"));
    await unary(clientsA.publisher, "CreateTopic", { name: topic, labels: { made: "on-a" } });
    const started = Date.now();
    let seen: { name: string; labels: Record<string, string> } | null = null;
    while (seen === null && Date.now() - started < 1000) {
      seen = await unary<{ name: string; labels: Record<string, string> }>(clientsB.publisher, "GetTopic", {
        topic,
      }).catch(() => null);
      if (seen === null) await delay(20);
    }
    assert.ok(seen !== null, "B sees the topic within 1 s");
    assert.deepEqual(seen.labels, { made: "on-a" });
  });

  test("jetstream instances - a message published on A is pulled on B", { timeout: 15_000 }, async () => {
    const topic = topicPath(uniqueName("cross"));
    const subscription = subscriptionPath(uniqueName("cross"));
    await unary(clientsA.publisher, "CreateTopic", { name: topic });
    await unary(clientsA.subscriber, "CreateSubscription", { name: subscription, topic });
    const [messageId] = await publish(clientsA, topic, ["hello from A"]);
    let received: ReceivedMessage[] = [];
    await waitFor(
      async () => {
        const response = await unary<{ receivedMessages: ReceivedMessage[] }>(
          clientsB.subscriber,
          "Pull",
          { subscription, maxMessages: 10 },
          { deadlineMs: 5_000 },
        ).catch(() => ({ receivedMessages: [] }));
        received = response.receivedMessages;
        return received.length > 0;
      },
      { timeoutMs: 10_000, describe: () => "a pull on B" },
    );
    assert.equal(received[0]!.message.data.toString(), "hello from A");
    assert.equal(received[0]!.message.messageId, messageId);
    await unary(clientsB.subscriber, "Acknowledge", { subscription, ackIds: [received[0]!.ackId] });
  });

  test("jetstream instances - StreamingPull on A and B share a subscription's messages, each acked once", {
    timeout: 30_000,
  }, async () => {
    const topic = topicPath(uniqueName("shared"));
    const subscription = subscriptionPath(uniqueName("shared"));
    await unary(clientsA.publisher, "CreateTopic", { name: topic });
    await unary(clientsA.subscriber, "CreateSubscription", { name: subscription, topic, ackDeadlineSeconds: 30 });
    const byInstance = { a: [] as string[], b: [] as string[] };
    const streams = (["a", "b"] as const).map((instance) => {
      const call = bidi((instance === "a" ? clientsA : clientsB).subscriber, "StreamingPull");
      const ended = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
      call.on("error", () => {});
      call.on("data", (response: { receivedMessages: ReceivedMessage[] }) => {
        const batch = response.receivedMessages;
        byInstance[instance].push(...batch.map((received) => received.message.data.toString()));
        // Ack slowly so both instances hold messages at once.
        setTimeout(() => call.write({ ackIds: batch.map((received) => received.ackId) }), 20);
      });
      call.write({ subscription, streamAckDeadlineSeconds: 30, maxOutstandingMessages: 5 });
      return { call, ended };
    });
    await delay(300);
    const total = 200;
    for (let sent = 0; sent < total; sent += 20) {
      await publish(
        sent % 40 === 0 ? clientsA : clientsB,
        topic,
        Array.from({ length: 20 }, (_, index) => `m${sent + index}`),
      );
    }
    try {
      await waitFor(() => byInstance.a.length + byInstance.b.length >= total, {
        timeoutMs: 20_000,
        describe: () => `received a=${byInstance.a.length} b=${byInstance.b.length} of ${total}`,
      });
      await delay(500);
      const all = [...byInstance.a, ...byInstance.b];
      assert.equal(all.length, total, "no message was delivered twice");
      assert.equal(new Set(all).size, total, "every message was delivered");
      assert.ok(byInstance.a.length > 0 && byInstance.b.length > 0, "both instances received a share");
      const leftover = await unary<{ receivedMessages: ReceivedMessage[] }>(clientsA.subscriber, "Pull", {
        subscription,
        maxMessages: 10,
        returnImmediately: true,
      });
      assert.deepEqual(leftover.receivedMessages, [], "every message was acked once");
    } finally {
      for (const { call } of streams) call.end();
      for (const { call, ended } of streams) {
        const closed = await Promise.race([ended, delay(3_000).then(() => undefined)]);
        if (closed === undefined) call.cancel();
      }
    }
  });
  test("jetstream instances - messages leased on an instance that shuts down are redelivered through another after the ack deadline", {
    timeout: 40_000,
  }, async () => {
    const topic = topicPath(uniqueName("takeover"));
    const subscription = subscriptionPath(uniqueName("takeover"));
    await unary(clientsB.publisher, "CreateTopic", { name: topic });
    await unary(clientsB.subscriber, "CreateSubscription", { name: subscription, topic, ackDeadlineSeconds: 10 });
    const c = await startTestServer({ engine: "jetstream", natsUrl: nats!.url });
    const clientsC = createGrpcJsClients(c.hostPort);
    const leasedOnC: string[] = [];
    try {
      const call = bidi(clientsC.subscriber, "StreamingPull");
      const ended = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
      call.on("error", () => {});
      call.on("data", (response: { receivedMessages: ReceivedMessage[] }) => {
        leasedOnC.push(...response.receivedMessages.map((received) => received.message.data.toString()));
      });
      call.write({ subscription, streamAckDeadlineSeconds: 10 });
      await delay(200);
      await publish(clientsB, topic, ["t1", "t2", "t3"]);
      await waitFor(() => leasedOnC.length === 3, {
        timeoutMs: 10_000,
        describe: () => `C leased ${leasedOnC.length}`,
      });
      call.end();
      await Promise.race([ended, delay(3_000)]);
      call.cancel();
    } finally {
      clientsC.close();
      await c.close({ allowOpenConnections: true });
    }
    const shutdownAt = Date.now();
    const redelivered: ReceivedMessage[] = [];
    while (redelivered.length < 3 && Date.now() - shutdownAt < 25_000) {
      const response = await unary<{ receivedMessages: ReceivedMessage[] }>(
        clientsB.subscriber,
        "Pull",
        { subscription, maxMessages: 10 },
        { deadlineMs: 15_000 },
      ).catch(() => ({ receivedMessages: [] as ReceivedMessage[] }));
      redelivered.push(...response.receivedMessages);
    }
    assert.deepEqual(
      redelivered.map((received) => received.message.data.toString()).sort(),
      ["t1", "t2", "t3"],
      "B receives every message C had leased",
    );
    await unary(clientsB.subscriber, "Acknowledge", {
      subscription,
      ackIds: redelivered.map((received) => received.ackId),
    });
  });
});
