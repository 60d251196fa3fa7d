// StreamingPull ack handling with @grpc/grpc-js on both engines: exactly-once confirmations per ack id; a bad ack id never ends a stream.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { status as grpcStatus } from "@grpc/grpc-js";
import {
  bidi,
  createGrpcJsClients,
  type GrpcJsClients,
  type grpc,
  grpcFailure,
  unary,
} from "../harness/grpc-js-clients.js";
import {
  findNatsServerBinary,
  NATS_SERVER_NOT_FOUND,
  type NatsServer,
  startNatsServer,
} from "../harness/nats-server.js";
import { fetchJson, type Json } from "../harness/rest-client.js";
import { peersRequired, startTestServer, type TestServer } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";
import { delay, waitFor } from "../harness/wait-for.js";

let natsMissing: string | false = false;
try {
  findNatsServerBinary();
} catch (error) {
  if (!String(error).includes(NATS_SERVER_NOT_FOUND) || peersRequired()) throw error;
  natsMissing = `SKIPPED: ${String(error)}`;
  console.warn(`streaming-pull-acks: ${natsMissing}`);
}

interface ReceivedMessage {
  ackId: string;
  message: { data: Buffer; messageId: string };
}

interface Confirmation {
  ackIds: string[];
  invalidAckIds: string[];
  unorderedAckIds?: string[];
  temporaryFailedAckIds: string[];
}

interface StreamingPullResponse {
  receivedMessages: ReceivedMessage[];
  acknowledgeConfirmation: Confirmation | null;
  modifyAckDeadlineConfirmation: Confirmation | null;
  subscriptionProperties: { exactlyOnceDeliveryEnabled: boolean } | null;
}

/** One StreamingPull call whose responses are collected; `close()` half-closes and waits for the status. */
function openStream(clients: GrpcJsClients, subscription: string) {
  const call = bidi(clients.subscriber, "StreamingPull");
  const responses: StreamingPullResponse[] = [];
  let status: grpc.StatusObject | undefined;
  const ended = new Promise<grpc.StatusObject>((resolve) =>
    call.on("status", (value: grpc.StatusObject) => {
      status = value;
      resolve(value);
    }),
  );
  call.on("error", () => {
    // the status says it
  });
  call.on("data", (response: StreamingPullResponse) => responses.push(response));
  call.write({ subscription, streamAckDeadlineSeconds: 60, maxOutstandingMessages: 10 });
  return {
    call,
    responses,
    status: () => status,
    messages: () => responses.flatMap((response) => response.receivedMessages),
    async close() {
      call.end();
      const closed = await Promise.race([ended, delay(3_000).then(() => undefined)]);
      if (closed === undefined) call.cancel();
      await ended;
    },
  };
}

for (const engine of ["embedded", "jetstream"] as const) {
  describe(`streaming pull acks (${engine})`, { skip: engine === "jetstream" && natsMissing }, () => {
    let nats: NatsServer | undefined;
    let server: TestServer;
    let clients: GrpcJsClients;
    before(async () => {
      if (engine === "jetstream") {
        nats = await startNatsServer();
        server = await startTestServer({ engine: "jetstream", natsUrl: nats.url });
      } else server = await startTestServer();
      clients = createGrpcJsClients(server.hostPort);
    });
    after(async () => {
      clients?.close();
      await server?.close();
      await nats?.stop();
    });

    async function topicAndSubscription(label: string, exactlyOnce: boolean) {
      const topic = `projects/test/topics/${uniqueName(label)}`;
      const subscription = `projects/test/subscriptions/${uniqueName(`${label}-sub`)}`;
      await unary(clients.publisher, "CreateTopic", { name: topic });
      await unary(clients.subscriber, "CreateSubscription", {
        name: subscription,
        topic,
        enableExactlyOnceDelivery: exactlyOnce,
      });
      return { topic, subscription };
    }

    const publish = (topic: string, texts: string[]) =>
      unary(clients.publisher, "Publish", { topic, messages: texts.map((text) => ({ data: Buffer.from(text) })) });

    test("streaming pull - exactly-once: acks and modacks are confirmed per id; stale and malformed ids are listed invalid", {
      timeout: 60_000,
    }, async () => {
      const { topic, subscription } = await topicAndSubscription("eod-stream", true);
      await publish(topic, ["a", "b"]);
      const stream = openStream(clients, subscription);
      try {
        await waitFor(() => stream.messages().length === 2, {
          timeoutMs: 15_000,
          describe: () => `got ${stream.messages().length} of 2`,
        });
        assert.equal(stream.responses[0]!.subscriptionProperties?.exactlyOnceDeliveryEnabled, true);
        const [a, b] = stream.messages();
        // `a`'s lease runs out in a second; its redelivery makes the first ack id stale.
        stream.call.write({ modifyDeadlineAckIds: [a!.ackId, "not-an-ack-id"], modifyDeadlineSeconds: [1, 30] });
        await waitFor(() => stream.messages().length === 3, {
          timeoutMs: 15_000,
          describe: () => "the redelivery of a",
        });
        const modack = stream.responses.find((response) => response.modifyAckDeadlineConfirmation !== null);
        assert.deepEqual(modack?.modifyAckDeadlineConfirmation?.ackIds, [a!.ackId]);
        assert.deepEqual(modack?.modifyAckDeadlineConfirmation?.invalidAckIds, ["not-an-ack-id"]);
        const again = stream.messages()[2]!;
        assert.equal(again.message.messageId, a!.message.messageId);

        stream.call.write({ ackIds: [a!.ackId, b!.ackId, again.ackId, "garbage"] });
        await waitFor(() => stream.responses.some((response) => response.acknowledgeConfirmation !== null), {
          timeoutMs: 10_000,
          describe: () => "an AcknowledgeConfirmation",
        });
        const confirmation = stream.responses.find((response) => response.acknowledgeConfirmation !== null)!
          .acknowledgeConfirmation!;
        assert.deepEqual(confirmation.ackIds.sort(), [b!.ackId, again.ackId].sort(), "applied");
        assert.deepEqual(confirmation.invalidAckIds.sort(), ["garbage", a!.ackId].sort(), "stale and malformed");
        assert.deepEqual(confirmation.temporaryFailedAckIds, []);
        await delay(300);
        assert.equal(stream.status(), undefined, "the stream is still open");

        await publish(topic, ["c"]);
        await waitFor(() => stream.messages().length === 4, { timeoutMs: 10_000, describe: () => "c on the stream" });

        // Unary calls answer a stale ack id with Pub/Sub's per-id ErrorInfo (REST shows it as JSON).
        const unaryAck = await grpcFailure(
          unary(clients.subscriber, "Acknowledge", { subscription, ackIds: [a!.ackId] }),
        );
        assert.equal(unaryAck.code, grpcStatus.INVALID_ARGUMENT);
        assert.ok(
          unaryAck.metadata.get("grpc-status-details-bin").length > 0,
          "the ErrorInfo travels as status details",
        );
        const rest = await fetchJson(server.url, "POST", `/v1/${subscription}:acknowledge`, { ackIds: [a!.ackId] });
        assert.equal(rest.status, 400, rest.text);
        const details = ((rest.body as Json).error as { details: Json[] }).details;
        assert.equal(details[0]!.reason, "EXACTLY_ONCE_ACKID_FAILURE");
        assert.deepEqual(details[0]!.metadata, { [a!.ackId]: "PERMANENT_FAILURE_INVALID_ACK_ID" });
      } finally {
        await stream.close();
      }
    });

    test("streaming pull - a malformed or stale ack id does not end the stream of a plain subscription", {
      timeout: 60_000,
    }, async () => {
      const { topic, subscription } = await topicAndSubscription("plain-stream", false);
      await publish(topic, ["x"]);
      const stream = openStream(clients, subscription);
      try {
        await waitFor(() => stream.messages().length === 1, { timeoutMs: 15_000, describe: () => "x" });
        const [x] = stream.messages();
        stream.call.write({
          ackIds: ["not-an-ack-id", x!.ackId],
          modifyDeadlineAckIds: [""],
          modifyDeadlineSeconds: [0],
        });
        await delay(300);
        assert.equal(stream.status(), undefined, "the stream is still open");
        assert.ok(
          stream.responses.every((response) => response.acknowledgeConfirmation === null),
          "no confirmations without exactly-once",
        );
        await publish(topic, ["y"]);
        await waitFor(() => stream.messages().length === 2, { timeoutMs: 10_000, describe: () => "y on the stream" });
        assert.equal(stream.messages()[1]!.message.data.toString(), "y", "x was acked despite the bad id beside it");
      } finally {
        await stream.close();
      }
    });
  });
}
