// The hand-written StreamingPullResponse encoding against protobuf-es's own, byte for byte, and read back.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { ReceivedMessage } from "../../broker/types.js";
import { StreamingPullResponseSchema } from "../../gen/google/pubsub/v1/pubsub_pb.js";
import { receivedToProto } from "./convert.js";
import {
  encodeStreamingPullFrame,
  encodeStreamingPullResponse,
  GRPC_FRAME,
  preEncodedStreamingPullResponse,
  preFramedStreamingPullResponse,
} from "./received-messages-encoder.js";

function received(offset: number, overrides: Partial<ReceivedMessage["message"]> = {}, attempt = 1): ReceivedMessage {
  return {
    ackId: `1.abc.${offset.toString(36)}.${attempt}`,
    deliveryAttempt: attempt,
    message: {
      offset,
      messageId: `7-${offset}`,
      publishTimeMs: 1_765_000_000_123 + offset,
      data: Buffer.from(`payload ${offset}`),
      attributes: {},
      orderingKey: "",
      ...overrides,
    },
  };
}

const CASES: { name: string; batch: ReceivedMessage[] }[] = [
  { name: "one plain message", batch: [received(1)] },
  { name: "an empty batch", batch: [] },
  {
    name: "attributes (empty value, unicode), ordering key, no data",
    batch: [
      received(2, { attributes: { a: "1", empty: "", kéy: "välue ✓" }, orderingKey: "key-🔑" }),
      received(3, { data: Buffer.alloc(0), attributes: { only: "attributes" } }),
    ],
  },
  {
    name: "large data and long ids (multi-byte varints)",
    batch: [received(300, { data: Buffer.alloc(70_000, 7), messageId: "x".repeat(200) }, 129)],
  },
  {
    name: "a publish time on a whole second and at the epoch",
    batch: [received(4, { publishTimeMs: 1_765_000_000_000 }), received(5, { publishTimeMs: 0 })],
  },
  { name: "a full batch", batch: Array.from({ length: 1000 }, (_, index) => received(index + 1)) },
];

describe("received messages encoder", () => {
  for (const reportAttempts of [false, true]) {
    for (const properties of [
      { exactlyOnceDeliveryEnabled: false, messageOrderingEnabled: false },
      { exactlyOnceDeliveryEnabled: true, messageOrderingEnabled: true },
      { exactlyOnceDeliveryEnabled: false, messageOrderingEnabled: true },
    ]) {
      for (const { name, batch } of CASES) {
        it(`received messages encoder - ${name}, attempts ${reportAttempts}, ${JSON.stringify(properties)}: the bytes of toBinary`, () => {
          const expected = toBinary(
            StreamingPullResponseSchema,
            create(StreamingPullResponseSchema, {
              receivedMessages: batch.map((item) => receivedToProto(item, reportAttempts)),
              subscriptionProperties: properties,
            }),
          );
          const encoded = encodeStreamingPullResponse(batch, reportAttempts, properties);
          assert.deepEqual(new Uint8Array(encoded), expected);
          const carried = toBinary(StreamingPullResponseSchema, preEncodedStreamingPullResponse(encoded));
          assert.deepEqual(carried, expected);
          // The gRPC frame: flags 0, the length, then the same bytes; carried as is, and as unknown fields for
          // any other serializer.
          const frame = encodeStreamingPullFrame(batch, reportAttempts, properties);
          assert.equal(frame[0], 0);
          assert.equal(frame.readUInt32BE(1), expected.length);
          assert.deepEqual(new Uint8Array(frame.subarray(5)), expected);
          const framed = preFramedStreamingPullResponse(frame);
          assert.equal((framed as unknown as Record<symbol, unknown>)[GRPC_FRAME], frame);
          assert.deepEqual(toBinary(StreamingPullResponseSchema, framed), expected);
          const parsed = fromBinary(StreamingPullResponseSchema, carried);
          assert.equal(parsed.receivedMessages.length, batch.length);
          assert.deepEqual(
            parsed.subscriptionProperties,
            create(StreamingPullResponseSchema, { subscriptionProperties: properties }).subscriptionProperties,
          );
        });
      }
    }
  }
});
