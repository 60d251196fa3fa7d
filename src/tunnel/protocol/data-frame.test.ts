// Hand-written Data frames - the same bytes as the schema encoder, the same values as its decoder, and
// every other frame left to the schema.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { TunnelFrameSchema } from "../../gen/streamgate/tunnel/v1/tunnel_pb.js";
import { decodeDataFrame, encodeDataFrame, encodeFrameIds } from "./data-frame.js";
import { encodeFrame, FrameDecoder, PREFIX_BYTES } from "./frame-codec.js";

/** Deterministic bytes (no Math.random: a failure must reproduce). */
function bytesOf(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let state = seed || 1;
  for (let index = 0; index < length; index++) {
    state = (state * 1103515245 + 12345) >>> 0;
    out[index] = state >>> 24;
  }
  return out;
}

const ID_CASES: [string, string][] = [
  ["", ""],
  ["r1", ""],
  ["", "4bf92f3577b34da6a3ce929d0e0e4736"],
  ["0f8fad5b-d9cb-469f-a165-70867728950e", "4bf92f3577b34da6a3ce929d0e0e4736"],
  ["ünïcødé-request-✓", "t".repeat(200)],
];
// Lengths around the varint boundaries of both the data field and the enclosing Data message.
const LENGTHS = [0, 1, 5, 124, 125, 126, 127, 128, 129, 1024, 16_381, 16_383, 16_384, 70_000, 2_097_152];

describe("tunnel data frames", () => {
  it("data frame - encodes byte for byte what the schema encoder writes", () => {
    for (const [requestId, traceId] of ID_CASES) {
      const ids = encodeFrameIds(requestId, traceId);
      for (const length of LENGTHS) {
        for (const endStream of [false, true]) {
          const data = bytesOf(length, length + 7);
          const expected = encodeFrame(
            TunnelFrameSchema,
            create(TunnelFrameSchema, { requestId, traceId, kind: { case: "data", value: { data, endStream } } }),
          );
          const actual = encodeDataFrame(ids, data, endStream);
          assert.ok(
            Buffer.from(actual).equals(Buffer.from(expected)),
            `ids ${requestId}/${traceId}, ${length} bytes, end ${endStream}`,
          );
        }
      }
    }
  });

  it("data frame - decodes to the values the schema decoder gives", () => {
    for (const [requestId, traceId] of ID_CASES) {
      for (const length of LENGTHS) {
        for (const endStream of [false, true]) {
          const frame = create(TunnelFrameSchema, {
            requestId,
            traceId,
            kind: { case: "data", value: { data: bytesOf(length, length), endStream } },
          });
          const body = toBinary(TunnelFrameSchema, frame);
          const fast = decodeDataFrame(body);
          assert.ok(fast !== null, `${length} bytes not recognized`);
          assert.deepEqual(fast, fromBinary(TunnelFrameSchema, body));
        }
      }
    }
  });

  it("data frame - other kinds, unknown or repeated fields and broken bytes are left to the schema", () => {
    const others = [
      create(TunnelFrameSchema, { requestId: "r", kind: { case: "attach", value: { sessionId: "s" } } }),
      create(TunnelFrameSchema, { requestId: "r", kind: { case: "cancel", value: { reason: "x" } } }),
      create(TunnelFrameSchema, { requestId: "r", kind: { case: "trailers", value: { headers: [] } } }),
      create(TunnelFrameSchema, { requestId: "r" }),
    ];
    for (const frame of others) assert.equal(decodeDataFrame(toBinary(TunnelFrameSchema, frame)), null);
    const data = toBinary(
      TunnelFrameSchema,
      create(TunnelFrameSchema, { requestId: "r", kind: { case: "data", value: { data: bytesOf(10, 1) } } }),
    );
    // An unknown field (number 3, varint) after a valid Data frame.
    assert.equal(decodeDataFrame(Uint8Array.of(...data, 3 << 3, 1)), null);
    // The request id twice (legal protobuf, last wins): the schema decides.
    assert.equal(decodeDataFrame(Uint8Array.of(...data, 0x0a, 1, 0x41)), null);
    // Truncated at every length: never a wrong frame, never a throw.
    for (let cut = 0; cut < data.length; cut++) {
      const result = decodeDataFrame(data.subarray(0, cut));
      if (result !== null) assert.fail(`a truncated frame (${cut} of ${data.length} bytes) was accepted`);
    }
    // Invalid UTF-8 in the request id.
    assert.equal(decodeDataFrame(Uint8Array.of(0x0a, 2, 0xc3, 0x28, 0x6a, 0)), null);
  });

  it("data frame - a decoder with the fast path returns the same frames as the schema alone", () => {
    const frames = [
      create(TunnelFrameSchema, { requestId: "a", kind: { case: "attach", value: { sessionId: "s" } } }),
      create(TunnelFrameSchema, {
        requestId: "a",
        traceId: "t",
        kind: { case: "data", value: { data: bytesOf(300, 3) } },
      }),
      create(TunnelFrameSchema, { requestId: "a", kind: { case: "data", value: { endStream: true } } }),
      create(TunnelFrameSchema, {
        requestId: "a",
        kind: { case: "trailers", value: { headers: [{ name: "grpc-status", value: "0" }] } },
      }),
    ];
    const wire = Buffer.concat(frames.map((frame) => encodeFrame(TunnelFrameSchema, frame)));
    const plain = new FrameDecoder(TunnelFrameSchema).push(wire);
    const fast = new FrameDecoder(TunnelFrameSchema, undefined, decodeDataFrame).push(wire);
    assert.deepEqual(fast, plain);
    assert.equal(PREFIX_BYTES, 5);
  });
});
