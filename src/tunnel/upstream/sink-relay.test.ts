// SinkRelay - call order, one terminal call, and data chunks joining the data call queued behind a running one.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code, StreamgateError } from "../../errors/index.js";
import type { ResponseSink } from "./exchange.js";
import { SinkRelay } from "./sink-relay.js";

/** A sink that records calls; each data call resolves only when the test releases it. */
function recordingSink() {
  const calls: string[] = [];
  const releases: (() => void)[] = [];
  const sink: ResponseSink = {
    head: async (head) => {
      calls.push(`head ${head.status}`);
    },
    data: (bytes) => {
      calls.push(`data ${Buffer.from(bytes).toString()}`);
      return new Promise((resolve) => releases.push(resolve));
    },
    trailers: async () => {
      calls.push("trailers");
    },
    error: async (error) => {
      calls.push(`error ${error.code}`);
    },
  };
  const releaseAll = async () => {
    while (releases.length > 0) releases.shift()!();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { sink, calls, releaseAll };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("upstream sink relay", () => {
  it("sink relay - chunks queued behind a running data call go out as one, in order", async () => {
    const { sink, calls, releaseAll } = recordingSink();
    const relay = new SinkRelay(sink, () => assert.fail("not stopped"));
    void relay.head({ status: 200, headers: [], endStream: false });
    const first = relay.data(Buffer.from("a"));
    await tick(); // "a" is being written (its promise pending)
    const joined = [relay.data(Buffer.from("b")), relay.data(Buffer.from("c")), relay.data(Buffer.from("d"))];
    await tick();
    assert.deepEqual(calls, ["head 200", "data a"]);
    await releaseAll();
    await first;
    assert.deepEqual(calls, ["head 200", "data a", "data bcd"]);
    await releaseAll();
    await Promise.all(joined);
    void relay.trailers([]);
    await relay.done;
    assert.deepEqual(calls, ["head 200", "data a", "data bcd", "trailers"]);
  });

  it("sink relay - an idle relay sends each chunk by itself; nothing joins across a terminal call", async () => {
    const { sink, calls, releaseAll } = recordingSink();
    const relay = new SinkRelay(sink, () => assert.fail("not stopped"));
    void relay.head({ status: 200, headers: [], endStream: false });
    const one = relay.data(Buffer.from("x"));
    await tick();
    await releaseAll();
    await one;
    const two = relay.data(Buffer.from("y"));
    await tick();
    await releaseAll();
    await two;
    void relay.error(new StreamgateError(Code.UNAVAILABLE, "gone"));
    void relay.data(Buffer.from("late"));
    await relay.done;
    await tick();
    assert.deepEqual(calls, ["head 200", "data x", "data y", `error ${Code.UNAVAILABLE}`]);
  });

  it("sink relay - a joined call carries at most 64 KiB", async () => {
    const { sink, calls, releaseAll } = recordingSink();
    const relay = new SinkRelay(sink, () => assert.fail("not stopped"));
    void relay.data(Buffer.from("s"));
    await tick();
    const big = Buffer.alloc(40 * 1024, "q");
    const queued = [relay.data(big), relay.data(big), relay.data(big)];
    for (let round = 0; round < 4; round++) await releaseAll();
    await Promise.all(queued);
    const sizes = calls.map((call) => call.length - "data ".length);
    assert.deepEqual(sizes, [1, 40 * 1024, 40 * 1024, 40 * 1024]);
  });
});
