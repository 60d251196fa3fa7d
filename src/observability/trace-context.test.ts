// Unit tests of the W3C trace context helpers.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { MessageInput } from "../broker/types.js";
import {
  childTraceparent,
  currentTraceContext,
  formatTraceparent,
  parseTraceparent,
  runWithTraceContext,
  traceContextFromHeaders,
  withTraceAttributes,
} from "./trace-context.js";

const VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

function message(attributes: Record<string, string> = {}, data = "x"): MessageInput {
  return { data: Buffer.from(data), attributes, orderingKey: "" };
}

describe("trace context", () => {
  it("trace context - parses and formats a valid traceparent", () => {
    const parsed = parseTraceparent(VALID);
    assert.deepEqual(parsed, { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", parentId: "00f067aa0ba902b7", flags: 1 });
    assert.equal(formatTraceparent(parsed!), VALID);
    assert.equal(formatTraceparent({ ...parsed!, flags: 0 }).slice(-3), "-00");
  });

  it("trace context - rejects invalid headers as absent", () => {
    for (const bad of [
      undefined,
      "",
      "garbage",
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      `${VALID}-extra`,
      "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
    ]) {
      assert.equal(parseTraceparent(bad), undefined, String(bad));
    }
    // A future version may carry more fields; its first four are read.
    assert.equal(parseTraceparent(`01-${VALID.slice(3)}-more`)?.traceId, "4bf92f3577b34da6a3ce929d0e0e4736");
  });

  it("trace context - a child keeps trace id and flags with a new span id", () => {
    const child = childTraceparent(VALID);
    assert.equal(child.traceId, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert.equal(child.flags, 1);
    assert.match(child.parentId, /^[0-9a-f]{16}$/);
    assert.notEqual(child.parentId, "00f067aa0ba902b7");
    const fresh = childTraceparent(undefined);
    assert.match(formatTraceparent(fresh), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    assert.notEqual(fresh.traceId, child.traceId);
  });

  it("trace context - reads headers and scopes the current context to a request", async () => {
    const context = traceContextFromHeaders({ traceparent: VALID, tracestate: ["a=1", "b=2"] });
    assert.equal(context?.tracestate, "a=1,b=2");
    assert.equal(traceContextFromHeaders({ tracestate: "a=1" }), undefined);
    assert.equal(currentTraceContext(), undefined);
    const seen = await runWithTraceContext(context, async () => {
      await new Promise((resolve) => setImmediate(resolve));
      return currentTraceContext();
    });
    assert.equal(seen, context);
    assert.equal(currentTraceContext(), undefined);
  });

  it("trace context - stores traceparent and tracestate as attributes without overwriting the client's", () => {
    const context = traceContextFromHeaders({ traceparent: VALID, tracestate: "vendor=1" });
    const own = "00-11111111111111111111111111111111-2222222222222222-00";
    const input = [message({ k: "v" }), message({ traceparent: own }), message({}, ""), message()];
    const output = withTraceAttributes(input, context);
    assert.deepEqual(output[0]?.attributes, { k: "v", traceparent: VALID, tracestate: "vendor=1" });
    assert.deepEqual(output[1]?.attributes, { traceparent: own });
    // An empty message stays empty so that validation still refuses it.
    assert.deepEqual(output[2]?.attributes, {});
    assert.deepEqual(output[3]?.attributes, { traceparent: VALID, tracestate: "vendor=1" });
    assert.deepEqual(input[0]?.attributes, { k: "v" }, "the caller's messages are not mutated");
    assert.equal(withTraceAttributes(input, undefined), input);
  });

  it("trace context - leaves a message with no room for more attributes unchanged", () => {
    const full = Object.fromEntries(Array.from({ length: 100 }, (_, index) => [`a${index}`, "v"]));
    const context = traceContextFromHeaders({ traceparent: VALID });
    const input = [message(full)];
    assert.equal(withTraceAttributes(input, context), input);
  });
});
