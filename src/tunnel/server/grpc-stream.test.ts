// grpc-timeout parsing - units, the 8-digit limit, malformed values, and deadlines beyond what timers hold.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { StreamgateError } from "../../errors/index.js";
import { MAX_TIMEOUT_MS, parseGrpcTimeout } from "./grpc-stream.js";

describe("tunnel grpc-timeout", () => {
  it("grpc-timeout - every unit converts to milliseconds; absent is no deadline", () => {
    assert.equal(parseGrpcTimeout(undefined), null);
    assert.equal(parseGrpcTimeout("2H"), 7_200_000);
    assert.equal(parseGrpcTimeout("3M"), 180_000);
    assert.equal(parseGrpcTimeout("5S"), 5_000);
    assert.equal(parseGrpcTimeout("100m"), 100);
    assert.equal(parseGrpcTimeout("1500u"), 1.5);
    assert.equal(parseGrpcTimeout("2000000n"), 2);
    assert.equal(parseGrpcTimeout(["7S", "9S"]), 7_000);
  });

  it("grpc-timeout - a deadline longer than a timer can hold is capped, not fired at once", () => {
    // 99999999 hours: legal, and 2^31-1 ms (24.8 days) is the longest node timer; longer ones fire immediately.
    assert.equal(parseGrpcTimeout("99999999H"), MAX_TIMEOUT_MS);
    assert.equal(parseGrpcTimeout("99999999S"), MAX_TIMEOUT_MS);
    assert.equal(parseGrpcTimeout("1000H"), MAX_TIMEOUT_MS);
    assert.equal(parseGrpcTimeout("500H"), 1_800_000_000);
    // The cap, passed on as the next hop's grpc-timeout (rounded up to seconds), still fits a timer.
    assert.ok(Math.ceil(MAX_TIMEOUT_MS / 1000) * 1000 <= 2 ** 31 - 1);
  });

  it("grpc-timeout - malformed values are INVALID_ARGUMENT with reason TUNNEL_BAD_TIMEOUT", () => {
    for (const value of ["", "x", "1", "-1S", "1.5S", "123456789m", "1s", " 1S"]) {
      assert.throws(
        () => parseGrpcTimeout(value),
        (error: unknown) => error instanceof StreamgateError && error.reason === "TUNNEL_BAD_TIMEOUT",
        value,
      );
    }
  });
});
