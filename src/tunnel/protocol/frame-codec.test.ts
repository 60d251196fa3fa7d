// Tunnel frame codec - round trips, split chunks, limits and malformed input.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, StreamgateError } from "../../errors/index.js";
import { TunnelFrameSchema } from "../../gen/streamgate/tunnel/v1/tunnel_pb.js";
import { encodeFrame, FrameDecoder } from "./frame-codec.js";

const dataFrame = (bytes: number, requestId = "r1") =>
  create(TunnelFrameSchema, {
    requestId,
    kind: { case: "data", value: { data: new Uint8Array(bytes).fill(7), endStream: false } },
  });

describe("tunnel frame codec", () => {
  it("frame codec - round trips frames split at every byte boundary", () => {
    const frames = [dataFrame(0, "a"), dataFrame(10, "b"), dataFrame(70_000, "c")];
    const wire = Buffer.concat(frames.map((frame) => encodeFrame(TunnelFrameSchema, frame)));
    for (const step of [1, 3, 5, 4096, wire.length]) {
      const decoder = new FrameDecoder(TunnelFrameSchema);
      const seen = [];
      for (let at = 0; at < wire.length; at += step) seen.push(...decoder.push(wire.subarray(at, at + step)));
      decoder.end();
      assert.deepEqual(
        seen.map((frame) => [frame.requestId, frame.kind.case === "data" ? frame.kind.value.data.length : -1]),
        [
          ["a", 0],
          ["b", 10],
          ["c", 70_000],
        ],
      );
    }
  });

  it("frame codec - rejects a frame above the limit from its prefix alone", () => {
    const decoder = new FrameDecoder(TunnelFrameSchema, 1024);
    const wire = encodeFrame(TunnelFrameSchema, dataFrame(2048));
    assert.throws(
      () => decoder.push(wire.subarray(0, 5)),
      (error: unknown) => {
        assert.ok(error instanceof StreamgateError);
        assert.equal(error.code, Code.RESOURCE_EXHAUSTED);
        assert.equal(error.reason, "TUNNEL_FRAME_TOO_LARGE");
        return true;
      },
    );
    assert.throws(() => decoder.push(new Uint8Array(1)), /exceeds the limit/);
  });

  it("frame codec - rejects compressed flags, garbage and truncation", () => {
    assert.throws(() => new FrameDecoder(TunnelFrameSchema).push(Uint8Array.of(1, 0, 0, 0, 0)), /flags/);
    assert.throws(
      () => new FrameDecoder(TunnelFrameSchema).push(Uint8Array.of(0, 0, 0, 0, 3, 0xff, 0xff, 0xff)),
      (error: unknown) => error instanceof StreamgateError && error.reason === "TUNNEL_FRAME_MALFORMED",
    );
    const decoder = new FrameDecoder(TunnelFrameSchema);
    decoder.push(encodeFrame(TunnelFrameSchema, dataFrame(10)).subarray(0, 8));
    assert.throws(() => decoder.end(), /ended inside/);
  });
});
