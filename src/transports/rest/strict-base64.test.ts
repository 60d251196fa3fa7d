// REST publish data: base64 in the standard or URL-safe alphabet, padded or not, and nothing else.
import assert from "node:assert/strict";
import { test } from "node:test";
import { StreamgateError } from "../../errors/index.js";
import { checkPublishData, isStrictBase64 } from "./strict-base64.js";

test("strict base64 - both alphabets, with or without padding", () => {
  for (const text of [
    "",
    "aGk=",
    "aGk",
    "aGk/",
    "aGk_",
    "aGVsbG8gd29ybGQ=",
    "aGVsbG8gd29ybGQ",
    "+/+/",
    "-_-_",
    "YQ==",
    "YQ",
  ]) {
    assert.ok(isStrictBase64(text), text);
  }
});

test("strict base64 - text, whitespace, mixed alphabets and broken padding are refused", () => {
  for (const text of [
    "hello world",
    "aGk= ",
    " aGk=",
    "aGk\n",
    "a",
    "aGk==",
    "YQ=",
    "a+b_",
    "aG=k",
    "aGk*",
    "====",
    "YQ===",
  ]) {
    assert.ok(!isStrictBase64(text), JSON.stringify(text));
  }
});

test("strict base64 - a publish body names the first bad message's data field", () => {
  checkPublishData({ messages: [{ data: "aGk=" }, { attributes: { a: "b" } }] });
  assert.throws(
    () => checkPublishData({ messages: [{ data: "aGk=" }, { data: "hello world" }] }),
    (error: unknown) =>
      error instanceof StreamgateError &&
      error.details.field === "messages[1].data" &&
      /Base64 decoding failed/.test(error.message),
  );
});
