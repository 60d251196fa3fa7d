// The entry sinks' response header filter: the one-pass path gives what the general path (endToEndHeaders, then
// validity, then single-value headers once) gives, for headers an agent may send.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { responseHeaders, responseHeadersNamed } from "./entry-sinks.js";

/** Deterministic choices (no Math.random: a failure must reproduce). */
function rng(seed: number): (n: number) => number {
  let state = seed || 1;
  return (n) => {
    state = (state * 1103515245 + 12345) >>> 0;
    return (state >>> 8) % n;
  };
}

const NAMES = [
  "content-type",
  "Content-Type",
  "grpc-status",
  "grpc-message",
  "grpc-status-details-bin",
  "x-custom",
  "X-Multi",
  "x-multi",
  "set-cookie",
  "te",
  "upgrade",
  "keep-alive",
  "transfer-encoding",
  ":status",
  ":path",
  "bad name",
  "bad\nname",
  "",
  "location",
  "etag",
  "server",
];
const VALUES = [
  "application/grpc",
  "0",
  "13",
  "ok",
  "a, b",
  "line\nbreak",
  "nul\0",
  "tab\there",
  "ünï",
  "",
  "x".repeat(300),
];

describe("tunnel entry sinks", () => {
  it("responseHeaders - one pass gives what the general path gives", () => {
    const pick = rng(17);
    for (let round = 0; round < 2_000; round++) {
      const entries = Array.from({ length: pick(12) }, () => ({
        name: NAMES[pick(NAMES.length)]!,
        value: VALUES[pick(VALUES.length)]!,
      }));
      const keep = pick(4) === 0 ? ["upgrade"] : [];
      assert.deepStrictEqual(
        responseHeaders(entries, keep),
        responseHeadersNamed(entries, keep),
        JSON.stringify({ entries, keep }),
      );
    }
  });

  it("responseHeaders - a connection header's tokens are dropped too", () => {
    const entries = [
      { name: "x-kept", value: "1" },
      { name: "x-hop", value: "2" },
      { name: "connection", value: "x-hop" },
      { name: "grpc-status", value: "0" },
      { name: "grpc-status", value: "5" },
    ];
    assert.deepStrictEqual(responseHeaders(entries), { "x-kept": "1", "grpc-status": "0" });
  });
});
