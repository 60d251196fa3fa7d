// gRPC protocol edges answered alike by both gRPC paths (lean and connect): compression, deadlines, size limits, errors, resets.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import type { GrpcPath } from "../../src/config/index.js";
import {
  GetTopicRequestSchema,
  PublishRequestSchema,
  PullRequestSchema,
  SubscriptionSchema,
  TopicSchema,
} from "../../src/gen/google/pubsub/v1/pubsub_pb.js";
import { HealthCheckRequestSchema } from "../../src/gen/health/v1/health_pb.js";
import { grpcFrame, rawGrpcCall } from "../harness/raw-grpc.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";

const TOPIC = "projects/paths/topics/edges";
const SUBSCRIPTION = "projects/paths/subscriptions/edges";
const PUBLISHER = "/google.pubsub.v1.Publisher";
const SUBSCRIBER = "/google.pubsub.v1.Subscriber";
const MAX_REQUEST_BYTES = 64 * 1024;

const publishRequest = (bytes: number) =>
  toBinary(
    PublishRequestSchema,
    create(PublishRequestSchema, { topic: TOPIC, messages: [{ data: new Uint8Array(bytes).fill(97) }] }),
  );

for (const grpcPath of ["lean", "connect"] as GrpcPath[]) {
  describe(`grpc paths (${grpcPath})`, () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer({
        grpcPath,
        maxRequestBytes: MAX_REQUEST_BYTES,
        maxMessageBytes: MAX_REQUEST_BYTES,
      });
      const topic = await rawGrpcCall(
        server.url,
        `${PUBLISHER}/CreateTopic`,
        grpcFrame(toBinary(TopicSchema, create(TopicSchema, { name: TOPIC }))),
      );
      assert.equal(topic.grpcStatus, 0, topic.grpcMessage);
      const subscription = await rawGrpcCall(
        server.url,
        `${SUBSCRIBER}/CreateSubscription`,
        grpcFrame(toBinary(SubscriptionSchema, create(SubscriptionSchema, { name: SUBSCRIPTION, topic: TOPIC }))),
      );
      assert.equal(subscription.grpcStatus, 0, subscription.grpcMessage);
    });
    // connect-node answers an oversized request before reading its body and leaves that stream half-open, so the
    // client's connection stays up (the lean path resets such a stream once its status is out); tolerated there only.
    after(() => server.close({ allowOpenConnections: grpcPath === "connect" }));

    test(`grpc paths (${grpcPath}) - a gzip-compressed request is accepted and a large answer comes back gzip-compressed`, async () => {
      const published = await rawGrpcCall(
        server.url,
        `${PUBLISHER}/Publish`,
        grpcFrame(gzipSync(publishRequest(4_000)), { compressed: true }),
        {
          headers: { "grpc-encoding": "gzip" },
        },
      );
      assert.equal(published.grpcStatus, 0, published.grpcMessage);
      const pulled = await rawGrpcCall(
        server.url,
        `${SUBSCRIBER}/Pull`,
        grpcFrame(
          toBinary(PullRequestSchema, create(PullRequestSchema, { subscription: SUBSCRIPTION, maxMessages: 1 })),
        ),
        { headers: { "grpc-accept-encoding": "identity,deflate,gzip" } },
      );
      assert.equal(pulled.grpcStatus, 0, pulled.grpcMessage);
      assert.equal(pulled.body[0], 1, "the response message carries the compressed flag");
    });

    test(`grpc paths (${grpcPath}) - an unknown grpc-encoding is UNIMPLEMENTED`, async () => {
      const result = await rawGrpcCall(server.url, `${PUBLISHER}/Publish`, grpcFrame(publishRequest(10)), {
        headers: { "grpc-encoding": "snappy" },
      });
      assert.equal(result.grpcStatus, 12);
      assert.match(result.grpcMessage, /unknown compression "snappy"/);
    });

    test(`grpc paths (${grpcPath}) - a request message over maxRequestBytes is RESOURCE_EXHAUSTED`, async () => {
      const result = await rawGrpcCall(
        server.url,
        `${PUBLISHER}/Publish`,
        grpcFrame(publishRequest(MAX_REQUEST_BYTES + 1)),
      );
      assert.equal(result.grpcStatus, 8);
      assert.match(result.grpcMessage, /larger than configured readMaxBytes/);
    });

    test(`grpc paths (${grpcPath}) - a stream open past its grpc-timeout ends DEADLINE_EXCEEDED`, async () => {
      const started = Date.now();
      const result = await rawGrpcCall(
        server.url,
        "/grpc.health.v1.Health/Watch",
        grpcFrame(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service: "" }))),
        { headers: { "grpc-timeout": "300m" } },
      );
      assert.equal(result.grpcStatus, 4, result.grpcMessage);
      assert.ok(Date.now() - started < 4_000);
    });

    test(`grpc paths (${grpcPath}) - an error keeps its code and a readable grpc-message`, async () => {
      const result = await rawGrpcCall(
        server.url,
        `${PUBLISHER}/GetTopic`,
        grpcFrame(
          toBinary(GetTopicRequestSchema, create(GetTopicRequestSchema, { topic: "projects/paths/topics/missing" })),
        ),
      );
      assert.equal(result.grpcStatus, 5);
      assert.match(result.grpcMessage, /missing/);
      const garbage = await rawGrpcCall(
        server.url,
        `${PUBLISHER}/GetTopic`,
        grpcFrame(Buffer.from([0xff, 0xff, 0xff])),
      );
      assert.equal(garbage.grpcStatus, 3, garbage.grpcMessage);
    });

    test(`grpc paths (${grpcPath}) - a unary request body with no message, two messages or a cut one is refused`, async () => {
      const getTopic = grpcFrame(toBinary(GetTopicRequestSchema, create(GetTopicRequestSchema, { topic: TOPIC })));
      const empty = await rawGrpcCall(server.url, `${PUBLISHER}/GetTopic`, new Uint8Array());
      assert.equal(empty.grpcStatus, 12, empty.grpcMessage);
      assert.match(empty.grpcMessage, /missing input message for unary method/);
      const two = await rawGrpcCall(server.url, `${PUBLISHER}/GetTopic`, Buffer.concat([getTopic, getTopic]));
      assert.equal(two.grpcStatus, 12, two.grpcMessage);
      assert.match(two.grpcMessage, /extra input message for unary method/);
      const cut = await rawGrpcCall(server.url, `${PUBLISHER}/GetTopic`, getTopic.subarray(0, getTopic.length - 3));
      assert.equal(cut.grpcStatus, 3, cut.grpcMessage);
      assert.match(cut.grpcMessage, /incomplete envelope/);
      const prefixOnly = await rawGrpcCall(server.url, `${PUBLISHER}/GetTopic`, getTopic.subarray(0, 3));
      assert.equal(prefixOnly.grpcStatus, 3, prefixOnly.grpcMessage);
    });

    test(`grpc paths (${grpcPath}) - a unary request split over several DATA frames is read whole`, async () => {
      // 40 KB: more than node's 16 KB frames, so the message arrives in several chunks.
      const result = await rawGrpcCall(server.url, `${PUBLISHER}/Publish`, grpcFrame(publishRequest(40_000)));
      assert.equal(result.grpcStatus, 0, result.grpcMessage);
      assert.equal(result.body.readUInt32BE(1), result.body.length - 5, "one whole response message");
    });

    // Lean only: connect-node reads a unary request's whole body before its deadline starts, so a body that never
    // ends holds the call until the client gives up.
    if (grpcPath === "lean")
      test(`grpc paths (${grpcPath}) - a unary call whose body never ends is DEADLINE_EXCEEDED at its grpc-timeout`, async () => {
        const started = Date.now();
        const getTopic = grpcFrame(toBinary(GetTopicRequestSchema, create(GetTopicRequestSchema, { topic: TOPIC })));
        const result = await rawGrpcCall(server.url, `${PUBLISHER}/GetTopic`, getTopic, {
          holdOpen: true,
          headers: { "grpc-timeout": "200m" },
        });
        assert.equal(result.grpcStatus, 4, result.grpcMessage);
        assert.ok(Date.now() - started < 4_000);
        const after = await rawGrpcCall(server.url, `${PUBLISHER}/GetTopic`, getTopic);
        assert.equal(after.grpcStatus, 0, after.grpcMessage);
      });

    test(`grpc paths (${grpcPath}) - a client reset mid-call leaves the server serving`, async () => {
      const reset = await rawGrpcCall(
        server.url,
        `${SUBSCRIBER}/Pull`,
        grpcFrame(
          toBinary(PullRequestSchema, create(PullRequestSchema, { subscription: SUBSCRIPTION, maxMessages: 1 })),
        ),
        { reset: true },
      );
      assert.equal(reset.grpcStatus, undefined);
      const after = await rawGrpcCall(server.url, `${PUBLISHER}/Publish`, grpcFrame(publishRequest(10)));
      assert.equal(after.grpcStatus, 0, after.grpcMessage);
    });
  });
}
