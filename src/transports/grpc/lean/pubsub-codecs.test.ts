// The lean path's hand-written Pub/Sub codecs against @bufbuild/protobuf: byte-identical encodings, equal decodings, and a decline (never a wrong answer) for everything else.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { create, type DescMessage, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import {
  AcknowledgeRequestSchema,
  GetTopicRequestSchema,
  PublishRequestSchema,
  PublishResponseSchema,
  type Topic,
  Topic_State,
  TopicSchema,
} from "../../../gen/google/pubsub/v1/pubsub_pb.js";
import { Encoding } from "../../../gen/google/pubsub/v1/schema_pb.js";
import { type MessageCodec, PUBSUB_CODECS } from "./pubsub-codecs.js";

function codec(schema: DescMessage): MessageCodec {
  const found = PUBSUB_CODECS.get(schema.typeName);
  assert.ok(found, `a codec for ${schema.typeName}`);
  return found;
}

/** The codec's bytes for `message`, written after a 5-byte prefix as the lean path frames them; null when it declines. */
function fastEncode(schema: DescMessage, message: unknown): Buffer | null {
  const { size, write } = codec(schema);
  const bytes = size!(message);
  if (bytes < 0) return null;
  const frame = Buffer.alloc(5 + bytes, 0xee);
  write!(message, frame, 5);
  return frame.subarray(5);
}

function assertSameBytes<Desc extends DescMessage>(schema: Desc, init: MessageInitShape<Desc>, plain = false): void {
  const message = create(schema, init);
  const expected = Buffer.from(toBinary(schema, message));
  const actual = fastEncode(schema, plain ? init : message);
  assert.ok(
    actual !== null,
    `the codec declined ${JSON.stringify(init, (_, v) => (typeof v === "bigint" ? `${v}n` : v))}`,
  );
  assert.deepEqual(actual, expected);
}

/** Deterministic pseudo-random numbers (mulberry32), so a failure replays. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHABETS = ["abcxyz-_./0123456789", "héllo wörld", "日本語テキスト", "emoji 🎉🚀", "\u0000\u007f\u0080"];

function text(next: () => number, maxLength: number): string {
  const alphabet = [...ALPHABETS[Math.floor(next() * ALPHABETS.length)]!];
  const length = Math.floor(next() * maxLength);
  let out = "";
  for (let index = 0; index < length; index++) out += alphabet[Math.floor(next() * alphabet.length)];
  return out;
}

function record(next: () => number, maxEntries: number): Record<string, string> {
  const out: Record<string, string> = {};
  const entries = Math.floor(next() * maxEntries);
  for (let index = 0; index < entries; index++) out[text(next, 12)] = text(next, 20);
  return out;
}

function randomTopic(next: () => number): MessageInitShape<typeof TopicSchema> {
  return {
    name: next() < 0.9 ? `projects/p/topics/${text(next, 40)}` : "",
    labels: next() < 0.5 ? record(next, 4) : {},
    kmsKeyName: next() < 0.3 ? text(next, 30) : "",
    messageStoragePolicy:
      next() < 0.4
        ? {
            allowedPersistenceRegions: Array.from({ length: Math.floor(next() * 3) }, () => text(next, 12)),
            enforceInTransit: next() < 0.5,
          }
        : undefined,
    schemaSettings:
      next() < 0.4
        ? {
            schema: next() < 0.8 ? `projects/p/schemas/${text(next, 10)}` : "",
            encoding: Math.floor(next() * 3) as Encoding,
            firstRevisionId: next() < 0.5 ? text(next, 8) : "",
            lastRevisionId: next() < 0.5 ? text(next, 8) : "",
          }
        : undefined,
    satisfiesPzs: next() < 0.2,
    messageRetentionDuration:
      next() < 0.5
        ? {
            seconds: BigInt(Math.floor(next() * (next() < 0.5 ? 1000 : 2 ** 31 - 1))),
            nanos: next() < 0.3 ? Math.floor(next() * 999_999_999) : 0,
          }
        : undefined,
    state: next() < 0.8 ? Topic_State.ACTIVE : Topic_State.STATE_UNSPECIFIED,
    tags: next() < 0.2 ? record(next, 3) : {},
  };
}

describe("pubsub codecs - encoders", () => {
  test("pubsub codecs - a Topic encodes byte for byte as toBinary, over 2,000 varied topics", () => {
    const next = random(12);
    assertSameBytes(TopicSchema, {});
    assertSameBytes(TopicSchema, { name: "projects/p/topics/t", state: Topic_State.ACTIVE });
    assertSameBytes(TopicSchema, {
      name: "projects/p/topics/t",
      labels: { "": "", env: "prod", ключ: "значение" },
      messageStoragePolicy: { allowedPersistenceRegions: ["", "europe-west1"], enforceInTransit: true },
      kmsKeyName: "projects/p/locations/l/keyRings/r/cryptoKeys/k",
      schemaSettings: {
        schema: "projects/p/schemas/s",
        encoding: Encoding.BINARY,
        firstRevisionId: "a",
        lastRevisionId: "b",
      },
      satisfiesPzs: true,
      messageRetentionDuration: { seconds: 2n ** 31n - 1n, nanos: 999_999_999 },
      state: Topic_State.INGESTION_RESOURCE_ERROR,
      tags: { "tagKeys/1": "tagValues/2" },
    });
    assertSameBytes(TopicSchema, { messageStoragePolicy: {}, schemaSettings: {}, messageRetentionDuration: {} });
    for (let index = 0; index < 2_000; index++) assertSameBytes(TopicSchema, randomTopic(next));
  });

  test("pubsub codecs - a Topic the codec does not cover is left to toBinary", () => {
    const sized = (init: MessageInitShape<typeof TopicSchema>, edit?: (topic: Topic) => void) => {
      const topic = create(TopicSchema, init);
      edit?.(topic);
      return codec(TopicSchema).size!(topic);
    };
    assert.equal(sized({ name: "lone \ud800 surrogate" }), -1);
    assert.equal(sized({ labels: { key: "\udfff" } }), -1);
    assert.equal(sized({ messageRetentionDuration: { seconds: -1n } }), -1);
    assert.equal(sized({ messageRetentionDuration: { seconds: 2n ** 31n } }), -1);
    assert.equal(sized({ ingestionDataSourceSettings: {} }), -1);
    assert.equal(sized({ messageTransforms: [{}] }), -1);
    assert.equal(
      sized({ name: "t" }, (topic) => (topic.$unknown = [{ no: 99, wireType: 0, data: new Uint8Array([1]) }])),
      -1,
    );
    assert.equal(codec(TopicSchema).size!({ name: "an init object, not a message" }), -1);
    assert.equal(codec(TopicSchema).size!(create(PublishResponseSchema)), -1);
  });

  test("pubsub codecs - PublishResponse and Empty encode as toBinary, from messages and from plain objects", () => {
    const next = random(7);
    assertSameBytes(PublishResponseSchema, {});
    assertSameBytes(PublishResponseSchema, {}, true);
    assertSameBytes(PublishResponseSchema, { messageIds: ["", "1", "ünïcode"] });
    for (let index = 0; index < 500; index++) {
      const ids = Array.from({ length: Math.floor(next() * 120) }, () => text(next, 24));
      assertSameBytes(PublishResponseSchema, { messageIds: ids }, next() < 0.5);
    }
    assertSameBytes(EmptySchema, {});
    assertSameBytes(EmptySchema, {}, true);
    assert.equal(codec(PublishResponseSchema).size!({ messageIds: ["\ud800"] }), -1);
    assert.equal(codec(PublishResponseSchema).size!({ messageIds: [1] }), -1);
    assert.equal(codec(EmptySchema).size!(create(TopicSchema)), -1);
  });
});

function assertSameDecoding<Desc extends DescMessage>(schema: Desc, bytes: Uint8Array): void {
  const decoded = codec(schema).decode!(bytes);
  assert.ok(decoded !== undefined, "the codec declined");
  assert.deepStrictEqual(decoded, fromBinary(schema, bytes));
}

describe("pubsub codecs - decoders", () => {
  test("pubsub codecs - GetTopic, Acknowledge and Publish requests decode as fromBinary, over varied requests", () => {
    const next = random(3);
    const ascii = (max: number) => text(() => next() * 0.19, max);
    for (let index = 0; index < 1_000; index++) {
      assertSameDecoding(
        GetTopicRequestSchema,
        Buffer.from(toBinary(GetTopicRequestSchema, create(GetTopicRequestSchema, { topic: ascii(60) }))),
      );
      const ack = create(AcknowledgeRequestSchema, {
        subscription: ascii(60),
        ackIds: Array.from({ length: Math.floor(next() * 40) }, () => ascii(80)),
      });
      assertSameDecoding(AcknowledgeRequestSchema, Buffer.from(toBinary(AcknowledgeRequestSchema, ack)));
      const publish = create(PublishRequestSchema, {
        topic: ascii(60),
        messages: Array.from({ length: 1 + Math.floor(next() * 5) }, () => ({
          data: new Uint8Array(Math.floor(next() * 600)).map(() => next() * 256),
          attributes: Object.fromEntries(Array.from({ length: Math.floor(next() * 3) }, () => [ascii(10), ascii(10)])),
          messageId: next() < 0.1 ? ascii(10) : "",
          orderingKey: next() < 0.3 ? ascii(20) : "",
        })),
      });
      const bytes = Buffer.from(toBinary(PublishRequestSchema, publish));
      assertSameDecoding(PublishRequestSchema, bytes);
      // Also from a plain Uint8Array (a decompressed body is not always a Buffer).
      assertSameDecoding(PublishRequestSchema, new Uint8Array(bytes));
    }
    // Repeated singular fields: the last one wins, as in fromBinary.
    const twice = Buffer.concat([
      toBinary(GetTopicRequestSchema, create(GetTopicRequestSchema, { topic: "first" })),
      toBinary(GetTopicRequestSchema, create(GetTopicRequestSchema, { topic: "second" })),
    ]);
    assertSameDecoding(GetTopicRequestSchema, twice);
    assertSameDecoding(GetTopicRequestSchema, new Uint8Array());
  });

  test("pubsub codecs - requests the codec does not cover are left to fromBinary, and no input makes it throw", () => {
    const declined = (schema: DescMessage, bytes: Uint8Array) =>
      assert.equal(codec(schema).decode!(bytes), undefined, Buffer.from(bytes).toString("hex"));
    declined(GetTopicRequestSchema, toBinary(GetTopicRequestSchema, create(GetTopicRequestSchema, { topic: "ünï" })));
    declined(GetTopicRequestSchema, Buffer.from([0x0a, 0x05, 0x61]));
    declined(GetTopicRequestSchema, Buffer.from([0x10, 0x01]));
    declined(
      PublishRequestSchema,
      toBinary(
        PublishRequestSchema,
        create(PublishRequestSchema, { topic: "t", messages: [{ publishTime: { seconds: 1n } }] }),
      ),
    );
    declined(
      PublishRequestSchema,
      toBinary(
        PublishRequestSchema,
        create(PublishRequestSchema, { topic: "t", messages: [{ attributes: JSON.parse('{"__proto__":"x"}') }] }),
      ),
    );
    declined(
      PublishRequestSchema,
      toBinary(
        PublishRequestSchema,
        create(PublishRequestSchema, { topic: "t", messages: [{ attributes: { k: "ü" } }] }),
      ),
    );
    // Random bytes: the codec declines or agrees with fromBinary, and never throws.
    const next = random(99);
    for (const schema of [GetTopicRequestSchema, AcknowledgeRequestSchema, PublishRequestSchema]) {
      for (let index = 0; index < 3_000; index++) {
        const bytes = Buffer.from(Array.from({ length: Math.floor(next() * 24) }, () => Math.floor(next() * 256)));
        const decoded = codec(schema).decode!(bytes);
        if (decoded !== undefined) assert.deepStrictEqual(decoded, fromBinary(schema, bytes));
      }
    }
  });
});
