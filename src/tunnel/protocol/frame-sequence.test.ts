// Unit tests of the tunnel frame order state machine, fed frames decoded from an in-memory pair.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { StreamgateError } from "../../errors/index.js";
import { type TunnelFrame, TunnelFrameSchema } from "../../gen/streamgate/tunnel/v1/tunnel_pb.js";
import { createFrameChannel, createMemoryDuplexPair } from "./frame-channel.js";
import { FrameSequence } from "./frame-sequence.js";

const frame = (kind: TunnelFrame["kind"], requestId = "r1"): TunnelFrame =>
  create(TunnelFrameSchema, { requestId, kind } as never);
const attach = frame({ case: "attach", value: { sessionId: "s" } } as never, "");
const head = (endStream = false) => frame({ case: "requestHead", value: { endStream } } as never);
const responseHead = (endStream = false) => frame({ case: "responseHead", value: { status: 200, endStream } } as never);
const data = (endStream = false) => frame({ case: "data", value: { data: new Uint8Array([1]), endStream } } as never);
const trailers = frame({ case: "trailers", value: { headers: [] } } as never);
const cancel = frame({ case: "cancel", value: { reason: "client went away" } } as never);

const rejects = (reason: string, run: () => unknown) =>
  assert.throws(run, (error: unknown) => error instanceof StreamgateError && error.reason === reason);

describe("tunnel frame sequence", () => {
  it("frame sequence - a whole exchange through a memory pair is accepted in order", async () => {
    const [agentSide, serverSide] = createMemoryDuplexPair();
    const agent = createFrameChannel(agentSide, { receive: TunnelFrameSchema, send: TunnelFrameSchema });
    const server = createFrameChannel(serverSide, { receive: TunnelFrameSchema, send: TunnelFrameSchema });
    const sequence = new FrameSequence();
    const sent = [attach, responseHead(), data(), data(true), trailers];
    const writing = (async () => {
      for (const item of sent) await agent.send(item);
      agent.end();
    })();
    let index = 0;
    for await (const received of server) {
      if (index === 1) {
        assert.equal(sequence.check("server", head(true)), "accept");
      }
      assert.equal(sequence.check("agent", received), "accept", `frame ${index}`);
      index++;
    }
    await writing;
    assert.equal(index, sent.length);
    assert.equal(sequence.finished, true);
  });

  it("frame sequence - frames out of order are protocol errors", () => {
    rejects("TUNNEL_FRAME_SEQUENCE", () => new FrameSequence().check("agent", responseHead()));
    const attached = new FrameSequence();
    attached.check("agent", attach);
    rejects("TUNNEL_FRAME_SEQUENCE", () => attached.check("agent", attach));
    rejects("TUNNEL_FRAME_SEQUENCE", () => attached.check("agent", data()));
    rejects("TUNNEL_FRAME_SEQUENCE", () => attached.check("agent", head()));
    attached.check("server", head());
    rejects("TUNNEL_FRAME_SEQUENCE", () => attached.check("agent", data()));
    rejects("TUNNEL_FRAME_SEQUENCE", () => attached.check("server", head()));
    attached.check("agent", responseHead());
    attached.check("agent", trailers);
    rejects("TUNNEL_FRAME_SEQUENCE", () => attached.check("agent", data()));
  });

  it("frame sequence - a frame for another request id is rejected", () => {
    const sequence = new FrameSequence();
    sequence.check("agent", attach);
    sequence.check("server", head());
    rejects("TUNNEL_UNKNOWN_REQUEST", () => sequence.check("agent", frame(responseHead().kind, "other")));
  });

  it("frame sequence - frames crossing a Cancel in flight are ignored, not errors", () => {
    const sequence = new FrameSequence();
    sequence.check("agent", attach);
    sequence.check("server", head());
    sequence.check("server", cancel);
    assert.equal(sequence.finished, true);
    assert.equal(sequence.check("agent", responseHead()), "ignore");
    assert.equal(sequence.check("agent", data()), "ignore");
  });

  it("frame sequence - a trailers-only response completes the exchange", () => {
    const sequence = new FrameSequence();
    sequence.check("agent", attach);
    sequence.check("server", head(true));
    sequence.check("agent", responseHead(true));
    assert.equal(sequence.finished, true);
    rejects("TUNNEL_FRAME_SEQUENCE", () => sequence.check("agent", trailers));
  });
});
