// Frame channel - frames both ways over an in-memory pair, backpressure, half-close and malformed bytes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { StreamgateError } from "../../errors/index.js";
import { type TunnelFrame, TunnelFrameSchema } from "../../gen/streamgate/tunnel/v1/tunnel_pb.js";
import { createFrameChannel, createMemoryDuplexPair } from "./frame-channel.js";

const options = { receive: TunnelFrameSchema, send: TunnelFrameSchema };
const data = (requestId: string, bytes: number): TunnelFrame =>
  create(TunnelFrameSchema, {
    requestId,
    kind: { case: "data", value: { data: new Uint8Array(bytes), endStream: false } },
  });

describe("tunnel frame channel", () => {
  it("frame channel - carries frames both ways and ends on half-close", async () => {
    const [a, b] = createMemoryDuplexPair();
    const left = createFrameChannel(a, options);
    const right = createFrameChannel(b, options);
    const received: string[] = [];
    const reading = (async () => {
      for await (const frame of right) {
        received.push(frame.requestId);
        await right.send(data(`echo-${frame.requestId}`, 1));
      }
      right.end();
    })();
    const echoes: string[] = [];
    const echoing = (async () => {
      for await (const frame of left) echoes.push(frame.requestId);
    })();
    for (let index = 0; index < 50; index += 1) await left.send(data(String(index), 1000));
    left.end();
    await Promise.all([reading, echoing]);
    assert.equal(received.length, 50);
    assert.deepEqual(
      echoes,
      received.map((id) => `echo-${id}`),
    );
  });

  it("frame channel - send waits while the peer does not read (bounded buffering)", async () => {
    const [a, b] = createMemoryDuplexPair({ highWaterMark: 16 * 1024 });
    const left = createFrameChannel(a, options);
    const right = createFrameChannel(b, options);
    let sent = 0;
    const sending = (async () => {
      for (let index = 0; index < 100; index += 1) {
        await left.send(data("x", 8 * 1024));
        sent += 1;
      }
      left.end();
    })();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(sent < 10, `sender ran ahead of a reader that reads nothing: ${sent} frames accepted`);
    let count = 0;
    for await (const _ of right) count += 1;
    await sending;
    assert.equal(count, 100);
  });

  it("frame channel - malformed bytes end the iteration with a clear error; send after close rejects", async () => {
    const [a, b] = createMemoryDuplexPair();
    const right = createFrameChannel(b, options);
    a.write(Uint8Array.of(0, 0, 0, 0, 2, 0xff, 0xff));
    await assert.rejects(
      (async () => {
        for await (const _ of right) assert.fail("no frame expected");
      })(),
      (error: unknown) => error instanceof StreamgateError && error.reason === "TUNNEL_FRAME_MALFORMED",
    );
    const left = createFrameChannel(a, options);
    a.destroy();
    await assert.rejects(left.send(data("late", 1)), /closed/);
  });
});
