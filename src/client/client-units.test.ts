// Unit tests of the client's pure parts: the SSE parser, base64 and backoff.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { backoffDelayMs, resolveReconnectOptions } from "./backoff.js";
import { base64ToBytes, bytesToBase64 } from "./message-codec.js";
import { createSseParser } from "./sse-source.js";

describe("client units", () => {
  test("client sse parser - events split across chunks, CRLF and CR line ends, multi-line data, comments", () => {
    const parser = createSseParser();
    const bytes = new TextEncoder().encode(
      ': keepalive\r\n\r\nretry: 2000\n\nid: 1\nevent: message\ndata: {"a":1}\n\nid: 2\revent: gap\rdata: x\rdata: y\r\r\n',
    );
    const events = [];
    for (let index = 0; index < bytes.length; index += 3) events.push(...parser.push(bytes.subarray(index, index + 3)));
    assert.deepEqual(events, [
      { event: "message", data: '{"a":1}' },
      { event: "gap", data: "x\ny" },
    ]);
  });

  test("client sse parser - a multi-byte character split between chunks decodes whole", () => {
    const parser = createSseParser();
    const bytes = new TextEncoder().encode("data: é€\n\n");
    assert.deepEqual(
      [...parser.push(bytes.subarray(0, 7)), ...parser.push(bytes.subarray(7))],
      [{ event: "message", data: "é€" }],
    );
  });

  test("client base64 - round trip of every byte value and a large payload", () => {
    const all = Uint8Array.from({ length: 256 }, (_, index) => index);
    assert.equal(bytesToBase64(all), Buffer.from(all).toString("base64"));
    assert.deepEqual(base64ToBytes(bytesToBase64(all)), all);
    const large = new Uint8Array(200_000).fill(7);
    assert.deepEqual(base64ToBytes(bytesToBase64(large)), large);
  });

  test("client backoff - doubles up to the cap, jitter takes off at most its fraction", () => {
    const options = resolveReconnectOptions({ initialDelayMs: 100, maxDelayMs: 1_000, jitter: 0.5 });
    for (let attempt = 0; attempt < 8; attempt++) {
      const base = Math.min(1_000, 100 * 2 ** attempt);
      const delay = backoffDelayMs(options, attempt);
      assert.ok(delay <= base && delay >= base / 2, `attempt ${attempt}: ${delay}`);
    }
    assert.equal(backoffDelayMs(resolveReconnectOptions({ jitter: 0 }), 0), 250);
    assert.throws(() => resolveReconnectOptions({ jitter: 2 }), RangeError);
  });
});
