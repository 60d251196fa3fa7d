// Fuzz: the tunnel's length-prefixed frame codec with mutated TunnelFrame bytes — only frames or a StreamgateError come out.
import { describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { StreamgateError } from "../../src/errors/index.js";
import { type TunnelFrame, TunnelFrameSchema } from "../../src/gen/streamgate/tunnel/v1/tunnel_pb.js";
import { encodeFrame, FrameDecoder } from "../../src/tunnel/protocol/frame-codec.js";
import { describeInput, FuzzRecorder, fuzzCount, mutateBytesMany } from "./fuzz-kit.js";

const MAX_FRAME_BYTES = 64 * 1024;

/** Valid frames of every kind; the generator concatenates and corrupts their encodings. */
const SEED_FRAMES: TunnelFrame[] = [
  create(TunnelFrameSchema, { kind: { case: "attach", value: { sessionId: "s-1" } } }),
  create(TunnelFrameSchema, {
    requestId: "r-1",
    traceId: "0af7651916cd43dd8448eb211c80319c",
    kind: {
      case: "requestHead",
      value: {
        protocol: 1,
        method: "POST",
        scheme: "http",
        authority: "svc.local",
        path: "/pkg.Svc/Method",
        headers: [{ name: "content-type", value: "application/grpc" }],
        timeoutMs: 5_000n,
      },
    },
  }),
  create(TunnelFrameSchema, {
    requestId: "r-1",
    kind: { case: "responseHead", value: { status: 200, headers: [{ name: "x", value: "y" }] } },
  }),
  create(TunnelFrameSchema, {
    requestId: "r-1",
    kind: { case: "data", value: { data: new Uint8Array(300).fill(7), endStream: true } },
  }),
  create(TunnelFrameSchema, {
    requestId: "r-1",
    kind: { case: "trailers", value: { headers: [{ name: "grpc-status", value: "0" }] } },
  }),
  create(TunnelFrameSchema, { requestId: "r-1", kind: { case: "cancel", value: { reason: "client went away" } } }),
  create(TunnelFrameSchema, {
    requestId: "r-1",
    kind: { case: "error", value: { code: 14, message: "upstream down" } },
  }),
];

describe("fuzz tunnel frames", () => {
  test("fuzz - the frame decoder yields frames or throws a StreamgateError, for any bytes and any chunking", () => {
    const recorder = new FuzzRecorder("tunnel frames (codec)");
    const encoded = SEED_FRAMES.map((frame) => Buffer.from(encodeFrame(TunnelFrameSchema, frame)));
    const count = fuzzCount(1.5);
    for (let index = 0; index < count; index++) {
      const rng = recorder.input(index);
      const wire = Buffer.concat(Array.from({ length: rng.range(1, 4) }, () => rng.pick(encoded)));
      let input: Buffer = mutateBytesMany(rng, wire, 4);
      if (rng.chance(0.1) && input.length >= 5) {
        // A first prefix that declares more than the limit (or 4 GiB).
        input = Buffer.from(input);
        input.writeUInt32BE(rng.pick([MAX_FRAME_BYTES + 1, 0xffff_ffff, 0x7fff_ffff]), 1);
      }
      const decoder = new FrameDecoder(TunnelFrameSchema, MAX_FRAME_BYTES);
      const started = performance.now();
      try {
        let frames = 0;
        for (let at = 0; at < input.length; ) {
          const step = rng.range(1, 64);
          frames += decoder.push(input.subarray(at, at + step)).length;
          at += step;
        }
        decoder.end();
        recorder.outcome(frames > 0 ? "decoded frames" : "decoded nothing");
        if (decoder.bufferedBytes > MAX_FRAME_BYTES + 5)
          recorder.fail(index, `buffered ${decoder.bufferedBytes} bytes`, describeInput(input));
      } catch (error) {
        if (error instanceof StreamgateError) recorder.outcome(error.reason);
        else {
          recorder.outcome("other error");
          recorder.fail(index, `threw ${String(error)} (not a StreamgateError)`, describeInput(input));
        }
      }
      const elapsed = performance.now() - started;
      // Runaway behaviour, not speed: decoding a few hundred bytes takes microseconds; a GC pause is far below this.
      if (elapsed > 2_000) recorder.fail(index, `took ${elapsed.toFixed(0)} ms`, describeInput(input));
    }
    recorder.finish();
  });
});
