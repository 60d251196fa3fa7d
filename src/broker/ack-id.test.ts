// Ack ids: round trips, and every malformed shape refused with INVALID_ARGUMENT naming the id.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code, StreamgateError } from "../errors/index.js";
import { decodeAckId, encodeAckId } from "./ack-id.js";

describe("ack ids", () => {
  it("ack ids - decode what encode wrote, up to the largest safe integers", () => {
    for (const parts of [
      { subscriptionId: 0, epoch: 1, offset: 1, attempt: 1 },
      { subscriptionId: 42, epoch: 2 ** 31 - 1, offset: 123_456_789, attempt: 7 },
      { subscriptionId: Number.MAX_SAFE_INTEGER, epoch: 0, offset: Number.MAX_SAFE_INTEGER, attempt: 300 },
    ]) {
      assert.deepEqual(decodeAckId(encodeAckId(parts)), parts);
    }
  });

  it("ack ids - malformed ids are INVALID_ARGUMENT naming the id", () => {
    const tooBig = (Number.MAX_SAFE_INTEGER + 2).toString(36);
    for (const bad of [
      "",
      "1.2.3",
      "1.2.3.4.5",
      "1..3.4",
      ".1.2.3",
      "1.2.3.",
      "1.2.3.4 ",
      "1.2.A.4",
      "1.2.-3.4",
      "1.2.0.4",
      "1.2.3.0",
      `1.2.${"1".repeat(12)}.4`,
      `1.2.${tooBig}.4`,
      "1.2.3.4\u0000",
    ]) {
      assert.throws(
        () => decodeAckId(bad),
        (error: unknown) =>
          error instanceof StreamgateError &&
          error.code === Code.INVALID_ARGUMENT &&
          error.message.includes(JSON.stringify(bad)),
        bad,
      );
    }
    assert.throws(() => decodeAckId(42 as unknown as string), StreamgateError);
  });
});
