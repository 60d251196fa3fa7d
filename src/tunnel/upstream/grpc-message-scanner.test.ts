// The message-size scanner: the same verdict wherever the chunks split the prefixes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { StreamgateError } from "../../errors/index.js";
import { GrpcMessageScanner } from "./grpc-message-scanner.js";

function message(length: number): Uint8Array {
  const bytes = new Uint8Array(5 + length);
  new DataView(bytes.buffer).setUint32(1, length);
  bytes.fill(0xab, 5);
  return bytes;
}

function stream(lengths: number[]): Uint8Array {
  return Buffer.concat(lengths.map(message));
}

/** Pushes `bytes` in chunks of `size`; the error thrown, if any. */
function scan(bytes: Uint8Array, size: number, limit: number): StreamgateError | null {
  const scanner = new GrpcMessageScanner(limit, "request");
  try {
    for (let at = 0; at < bytes.length; at += size) scanner.push(bytes.subarray(at, at + size));
  } catch (error) {
    return error as StreamgateError;
  }
  return null;
}

describe("gRPC message scanner", () => {
  it("accepts messages up to the limit, however the chunks split them", () => {
    const bytes = stream([0, 1, 100, 0x1_0000, 0x1_0203, 7]);
    for (const size of [1, 2, 3, 4, 5, 6, 7, 11, 1024, bytes.length]) assert.equal(scan(bytes, size, 0x1_0203), null);
  });

  it("refuses the first message above the limit, however the chunks split its prefix", () => {
    const bytes = stream([10, 0x1_0204, 5]);
    for (const size of [1, 2, 3, 4, 5, 6, 16, bytes.length]) {
      const error = scan(bytes, size, 0x1_0203);
      assert.equal(error?.reason, "TUNNEL_MESSAGE_TOO_LARGE", `chunks of ${size}`);
      assert.match(error?.message ?? "", /message of 66052 bytes exceeds the tunnel limit of 66051 bytes/);
    }
    // A length with the top byte set (above 16 MiB) is read whole.
    const huge = new Uint8Array([0, 0x80, 0, 0, 1]);
    assert.match(scan(huge, 5, 4 * 1024 * 1024)?.message ?? "", /of 2147483649 bytes/);
    assert.match(scan(huge, 2, 4 * 1024 * 1024)?.message ?? "", /of 2147483649 bytes/);
  });
});
