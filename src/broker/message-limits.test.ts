// Tests for the per-message checks of a publish batch: each rule names the message (and field) it refused.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Code, StreamgateError } from "../errors/index.js";
import { MAX_MESSAGE_BYTES, messageSize, validateMessages } from "./message-limits.js";
import type { MessageInput } from "./types.js";

function assertInvalid(messages: MessageInput[], field: string, message: RegExp): void {
  assert.throws(
    () => validateMessages(messages),
    (error: unknown) => {
      assert.ok(error instanceof StreamgateError);
      assert.equal(error.code, Code.INVALID_ARGUMENT);
      assert.equal(error.details.field, field);
      assert.match(error.message, message);
      return true;
    },
  );
}

const ok: MessageInput = { data: new Uint8Array([1]), attributes: {}, orderingKey: "" };

describe("validateMessages", () => {
  test("validateMessages - plain, attributed and keyed messages pass", () => {
    validateMessages([
      ok,
      { data: new Uint8Array(0), attributes: { only: "attributes" }, orderingKey: "" },
      { data: new Uint8Array([2]), attributes: { a: "b" }, orderingKey: "key" },
      { data: new Uint8Array([3]) } as MessageInput,
    ]);
  });

  test("validateMessages - an empty batch is refused", () => {
    assertInvalid([], "messages", /at least one message/);
  });

  test("validateMessages - each rule names the message it refused, wherever it is in the batch", () => {
    assertInvalid([ok, { ...ok, data: "text" as unknown as Uint8Array }], "messages[1].data", /must be bytes/);
    assertInvalid([ok, ok, { ...ok, data: new Uint8Array(0) }], "messages[2]", /non-empty data or at least one/);
    assertInvalid([{ ...ok, attributes: { googx: "v" } }], "messages[0].attributes", /reserved/);
    assertInvalid([ok, { ...ok, attributes: { "": "v" } }], "messages[1].attributes", /must not be empty/);
    assertInvalid([ok, { ...ok, orderingKey: 7 as unknown as string }], "messages[1].ordering_key", /must be a string/);
    assertInvalid([{ ...ok, orderingKey: "k".repeat(1025) }], "messages[0].ordering_key", /at most 1024 bytes/);
  });

  test("validateMessages - the size limit counts data, attributes and the ordering key", () => {
    const data = new Uint8Array(MAX_MESSAGE_BYTES - 4);
    validateMessages([{ data, attributes: { ab: "cd" }, orderingKey: "" }]);
    validateMessages([{ data, attributes: {}, orderingKey: "abcd" }]);
    assertInvalid(
      [ok, { data, attributes: { ab: "cd" }, orderingKey: "x" }],
      "messages[1]",
      new RegExp(`message is ${MAX_MESSAGE_BYTES + 1} bytes; the limit is ${MAX_MESSAGE_BYTES} bytes`),
    );
    assertInvalid(
      [{ data: new Uint8Array(MAX_MESSAGE_BYTES + 1), attributes: {}, orderingKey: "" }],
      "messages[0]",
      /the limit is/,
    );
  });

  test("messageSize - data plus attribute keys and values in UTF-8 bytes", () => {
    assert.equal(messageSize({ data: new Uint8Array(3), attributes: { é: "ab" } }), 3 + 2 + 2);
  });
});
