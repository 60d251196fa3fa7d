// Hand-written head frames: the same bytes as the schema encoder, the same values as its decoder, and anything
// unusual left to the schema.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { Protocol, TunnelFrameSchema } from "../../gen/streamgate/tunnel/v1/tunnel_pb.js";
import { encodeFrameIds } from "./data-frame.js";
import { encodeFrame, FrameDecoder, PREFIX_BYTES } from "./frame-codec.js";
import {
  decodeHeadFrame,
  decodeHotFrame,
  encodeRequestHeadFrame,
  encodeResponseHeadFrame,
  encodeTrailersFrame,
} from "./head-frame.js";

const IDS: [string, string][] = [
  ["", ""],
  ["0f8fad5b-d9cb-469f-a165-70867728950e", "4bf92f3577b34da6a3ce929d0e0e4736"],
  ["ünïcødé-✓", ""],
];

const HEADER_SETS: { name: string; value: string }[][] = [
  [],
  [{ name: "grpc-status", value: "0" }],
  [
    { name: "content-type", value: "application/grpc" },
    { name: "", value: "" },
    { name: "x-empty", value: "" },
    { name: "x-latin1", value: "caf\u00e9 \u00ff" },
    { name: "x-long", value: "v".repeat(300) },
    { name: "x-long", value: "w".repeat(20_000) },
    { name: "x-lone-surrogate", value: "a\ud800b" },
  ],
];

type RequestHeadInit = MessageInitShape<typeof TunnelFrameSchema> & { kind: { case: "requestHead" } };

function requestHeads(): RequestHeadInit["kind"]["value"][] {
  const heads: RequestHeadInit["kind"]["value"][] = [];
  for (const headers of HEADER_SETS) {
    heads.push(
      {},
      {
        protocol: Protocol.GRPC,
        method: "POST",
        scheme: "http",
        authority: "127.0.0.1:8080",
        path: "/grpc.testing.TestService/UnaryCall",
        headers,
        timeoutMs: 29_999n,
        endStream: false,
        rule: "grpc",
        group: "backends",
        httpVersion: "2",
      },
      {
        protocol: 3 as Protocol,
        method: "GET",
        path: "/p?q=ü",
        headers,
        timeoutMs: BigInt(Number.MAX_SAFE_INTEGER),
        endStream: true,
        httpVersion: "1.1",
      },
      { timeoutMs: 127n, protocol: 1_000_000 as Protocol },
      { timeoutMs: 128n, authority: "a".repeat(130) },
    );
  }
  return heads;
}

const show = (value: unknown) =>
  JSON.stringify(value, (_key, item: unknown) => (typeof item === "bigint" ? String(item) : item)).slice(0, 160);

const schemaBytes = (frame: MessageInitShape<typeof TunnelFrameSchema>) =>
  Buffer.from(encodeFrame(TunnelFrameSchema, create(TunnelFrameSchema, frame)));

describe("tunnel head frames", () => {
  it("request head - encodes byte for byte what the schema encoder writes", () => {
    for (const [requestId, traceId] of IDS) {
      const ids = encodeFrameIds(requestId, traceId);
      for (const init of requestHeads()) {
        const head = create(TunnelFrameSchema, { kind: { case: "requestHead", value: init } }).kind.value!;
        const expected = schemaBytes({ requestId, traceId, kind: { case: "requestHead", value: init } });
        const actual = encodeRequestHeadFrame(ids, head as never);
        assert.ok(actual !== null);
        assert.ok(Buffer.from(actual).equals(expected), `${requestId} ${show(init)}`);
      }
    }
  });

  it("response head and trailers - encode byte for byte what the schema encoder writes", () => {
    for (const [requestId, traceId] of IDS) {
      const ids = encodeFrameIds(requestId, traceId);
      for (const headers of HEADER_SETS) {
        for (const status of [0, 200, 404, 127, 128, 100_000]) {
          for (const endStream of [false, true]) {
            const expected = schemaBytes({
              requestId,
              traceId,
              kind: { case: "responseHead", value: { status, headers, endStream } },
            });
            const actual = encodeResponseHeadFrame(ids, status, headers, endStream);
            assert.ok(actual !== null && Buffer.from(actual).equals(expected), `${status} ${endStream}`);
          }
        }
        const trailers = encodeTrailersFrame(ids, headers);
        assert.ok(
          Buffer.from(trailers).equals(
            schemaBytes({ requestId, traceId, kind: { case: "trailers", value: { headers } } }),
          ),
        );
      }
    }
  });

  it("request head - leaves a negative timeout or protocol to the schema", () => {
    const ids = encodeFrameIds("r", "t");
    const base = create(TunnelFrameSchema, { kind: { case: "requestHead", value: {} } }).kind.value as never as {
      timeoutMs: bigint;
      protocol: number;
    };
    assert.equal(encodeRequestHeadFrame(ids, { ...base, timeoutMs: -1n } as never), null);
    assert.equal(encodeRequestHeadFrame(ids, { ...base, protocol: -1 } as never), null);
  });

  it("decodes to the values the schema decoder gives", () => {
    const frames: MessageInitShape<typeof TunnelFrameSchema>[] = [];
    for (const [requestId, traceId] of IDS) {
      for (const value of requestHeads()) frames.push({ requestId, traceId, kind: { case: "requestHead", value } });
      for (const headers of HEADER_SETS) {
        frames.push({ requestId, traceId, kind: { case: "trailers", value: { headers } } });
        for (const status of [0, 200, 503]) {
          frames.push({
            requestId,
            traceId,
            kind: { case: "responseHead", value: { status, headers, endStream: true } },
          });
          frames.push({ requestId, traceId, kind: { case: "responseHead", value: { status, headers } } });
        }
      }
    }
    for (const init of frames) {
      const body = toBinary(TunnelFrameSchema, create(TunnelFrameSchema, init));
      const decoded = decodeHeadFrame(body);
      assert.ok(decoded !== null, show(init));
      assert.deepStrictEqual(decoded, fromBinary(TunnelFrameSchema, body));
      assert.deepStrictEqual(decodeHotFrame(body), decoded);
    }
  });

  it("decodeHotFrame - Data and head frames behind ids of any length decode as the schema does", () => {
    // Ids of one-byte and multi-byte lengths, and non-ASCII ones: the kind is found behind them, or both
    // decoders are tried.
    const ids: [string, string][] = [...IDS, ["x".repeat(130), "ünïcødé-✓"], ["é", "t".repeat(300)]];
    for (const [requestId, traceId] of ids) {
      const inits: MessageInitShape<typeof TunnelFrameSchema>[] = [
        { requestId, traceId, kind: { case: "data", value: { data: Uint8Array.of(1, 2, 3), endStream: true } } },
        { requestId, traceId, kind: { case: "data", value: {} } },
        { requestId, traceId, kind: { case: "trailers", value: { headers: [{ name: "grpc-status", value: "0" }] } } },
        { requestId, traceId, kind: { case: "responseHead", value: { status: 200, endStream: true } } },
      ];
      for (const init of inits) {
        const body = toBinary(TunnelFrameSchema, create(TunnelFrameSchema, init));
        assert.deepStrictEqual(decodeHotFrame(body), fromBinary(TunnelFrameSchema, body), show(init));
      }
    }
  });

  it("leaves to the schema what is not a plain head frame", () => {
    const head = toBinary(
      TunnelFrameSchema,
      create(TunnelFrameSchema, { requestId: "r", kind: { case: "responseHead", value: { status: 200 } } }),
    );
    const cases: Uint8Array[] = [
      // Another kind.
      toBinary(TunnelFrameSchema, create(TunnelFrameSchema, { kind: { case: "attach", value: { sessionId: "s" } } })),
      toBinary(TunnelFrameSchema, create(TunnelFrameSchema, { kind: { case: "cancel", value: { reason: "x" } } })),
      // No kind at all.
      toBinary(TunnelFrameSchema, create(TunnelFrameSchema, { requestId: "r" })),
      // An unknown field after the head.
      Uint8Array.from([...head, (99 << 3) | 0, 1]),
      // The head twice (the schema merges).
      Uint8Array.from([...head, ...head.subarray(3)]),
      // A repeated scalar inside ResponseHead (the schema takes the last).
      Uint8Array.from([(12 << 3) | 2, 4, 8, 200, 1, 8]),
      // Invalid UTF-8 in a header name.
      Uint8Array.from([(14 << 3) | 2, 5, 10, 3, 10, 1, 0xff]),
      // A truncated length.
      Uint8Array.from([(14 << 3) | 2, 9, 10]),
    ];
    for (const body of cases) assert.equal(decodeHeadFrame(body), null, Buffer.from(body).toString("hex"));
    // The frame decoder still decodes them (or rejects malformed bytes) through the schema.
    const decoder = new FrameDecoder(TunnelFrameSchema, undefined, decodeHotFrame);
    const frame = new Uint8Array(PREFIX_BYTES + cases[3]!.length);
    new DataView(frame.buffer).setUint32(1, cases[3]!.length);
    frame.set(cases[3]!, PREFIX_BYTES);
    const [decoded] = decoder.push(frame);
    assert.equal(decoded?.kind.case, "responseHead");
  });
});
