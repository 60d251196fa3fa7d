// StreamingPull over the Connect and gRPC-Web protocols, binary and JSON: the hand-encoded batches (binary) and
// the regular message (JSON) carry the same fields to a real connect-es client over HTTP/2.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport, Http2SessionManager } from "@connectrpc/connect-node";
import {
  Publisher,
  type StreamingPullRequest,
  StreamingPullRequestSchema,
  type StreamingPullResponse,
  Subscriber,
} from "../../src/gen/google/pubsub/v1/pubsub_pb.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";

const KINDS = [
  { name: "Connect, binary", connect: true, binary: true },
  { name: "Connect, JSON", connect: true, binary: false },
  { name: "gRPC-Web, binary", connect: false, binary: true },
  { name: "gRPC-Web, JSON", connect: false, binary: false },
] as const;

describe("streaming pull protocols", () => {
  let server: TestServer;
  const sessions: Http2SessionManager[] = [];

  before(async () => {
    server = await startTestServer();
  });

  after(async () => {
    for (const session of sessions) session.abort();
    await server?.close();
  });

  function transport(kind: (typeof KINDS)[number]): Transport {
    const sessionManager = new Http2SessionManager(server.url);
    sessions.push(sessionManager);
    const options = { baseUrl: server.url, httpVersion: "2" as const, sessionManager, useBinaryFormat: kind.binary };
    return kind.connect ? createConnectTransport(options) : createGrpcWebTransport(options);
  }

  for (const kind of KINDS) {
    it(`streaming pull protocols - ${kind.name}: messages arrive with data, attributes, ids, time and ordering key`, async () => {
      const client = transport(kind);
      const publisher = createClient(Publisher, client);
      const subscriber = createClient(Subscriber, client);
      const suffix = kind.name.replace(/[^a-z]/gi, "").toLowerCase();
      const topic = `projects/protocols/topics/top-${suffix}`;
      const subscription = `projects/protocols/subscriptions/sub-${suffix}`;
      await publisher.createTopic({ name: topic });
      await subscriber.createSubscription({
        name: subscription,
        topic,
        ackDeadlineSeconds: 30,
        enableMessageOrdering: true,
      });
      const sent: { data: Buffer; attributes: Record<string, string>; orderingKey: string }[] = [
        { data: Buffer.from("plain"), attributes: {}, orderingKey: "" },
        {
          data: Buffer.from("with attributes ✓"),
          attributes: { colour: "blue", empty: "", kéy: "välue" },
          orderingKey: "k1",
        },
        { data: Buffer.alloc(0), attributes: { only: "attributes" }, orderingKey: "" },
      ];
      const { messageIds } = await publisher.publish({ topic, messages: sent });

      const stop = new AbortController();
      let release: () => void = () => undefined;
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      async function* requests(): AsyncGenerator<StreamingPullRequest> {
        yield create(StreamingPullRequestSchema, {
          subscription,
          streamAckDeadlineSeconds: 30,
          maxOutstandingMessages: 100n,
        });
        await held;
      }
      const received: StreamingPullResponse["receivedMessages"] = [];
      let properties: StreamingPullResponse["subscriptionProperties"];
      try {
        for await (const response of subscriber.streamingPull(requests(), { signal: stop.signal })) {
          received.push(...response.receivedMessages);
          properties = response.subscriptionProperties;
          if (received.length >= sent.length) break;
        }
      } finally {
        release();
        stop.abort();
      }
      assert.deepEqual(
        received.map((item) => item.message?.messageId),
        messageIds,
      );
      received.forEach((item, index) => {
        const message = item.message!;
        assert.deepEqual(Buffer.from(message.data), sent[index]!.data);
        assert.deepEqual({ ...message.attributes }, sent[index]!.attributes);
        assert.equal(message.orderingKey, sent[index]!.orderingKey);
        assert.ok(message.publishTime !== undefined && message.publishTime.seconds > 0n);
        assert.ok(item.ackId.length > 0);
        assert.equal(item.deliveryAttempt, 0);
      });
      assert.equal(properties?.messageOrderingEnabled, true);
      assert.equal(properties?.exactlyOnceDeliveryEnabled, false);
      await subscriber.acknowledge({ subscription, ackIds: received.map((item) => item.ackId) });
    });
  }
});
