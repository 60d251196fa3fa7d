// Tests for label, attribute and ordering-key validation.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Code, StreamgateError } from "../errors/index.js";
import { LabelLimits, MessageLimits, validateAttributes, validateLabels, validateOrderingKey } from "./labels.js";

function assertInvalid(run: () => unknown, field: string, message: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof StreamgateError);
    assert.equal(error.code, Code.INVALID_ARGUMENT);
    assert.equal(error.details.field, field);
    assert.ok(error.message.startsWith(`${field}: `), error.message);
    assert.match(error.message, message);
    return true;
  });
}

function manyEntries(count: number): Record<string, string> {
  return Object.fromEntries(Array.from({ length: count }, (_, index) => [`k${index}`, "v"]));
}

describe("labels - resource labels", () => {
  test("labels - accepts GCP-style labels, international lowercase included", () => {
    validateLabels({});
    validateLabels({ env: "prod", "team_a-1": "", cost_center: "cc-42", ñandú: "año", 日本: "値" });
    validateLabels({ ["a".repeat(63)]: "b".repeat(63) });
    validateLabels(manyEntries(LabelLimits.maxLabels));
  });

  test("labels - rejects bad keys", () => {
    assertInvalid(() => validateLabels({ "": "x" }), "labels", /label key "" must be 1 to 63 characters long/);
    assertInvalid(() => validateLabels({ ["a".repeat(64)]: "x" }), "labels", /must be 1 to 63 characters long/);
    assertInvalid(() => validateLabels({ Env: "x" }), "labels", /label key "Env" must start with a lowercase letter/);
    assertInvalid(() => validateLabels({ "1env": "x" }), "labels", /must start with a lowercase letter/);
    assertInvalid(() => validateLabels({ _env: "x" }), "labels", /must start with a lowercase letter/);
    assertInvalid(() => validateLabels({ "e.nv": "x" }, "topic.labels"), "topic.labels", /contain only lowercase/);
  });

  test("labels - rejects bad values", () => {
    assertInvalid(() => validateLabels({ env: "Prod" }), "labels", /value of label "env" may contain only lowercase/);
    assertInvalid(() => validateLabels({ env: "a b" }), "labels", /may contain only/);
    assertInvalid(() => validateLabels({ env: "a".repeat(64) }), "labels", /at most 63 characters long/);
  });

  test("labels - at most 64 labels", () => {
    assertInvalid(() => validateLabels(manyEntries(65)), "labels", /at most 64 labels are allowed, got 65/);
  });
});

describe("labels - message attributes", () => {
  test("labels - accepts attributes within Pub/Sub limits", () => {
    validateAttributes({});
    validateAttributes({ "Any Key/with.chars": "", key: "v".repeat(MessageLimits.maxAttributeValueBytes) });
    validateAttributes({ ["k".repeat(MessageLimits.maxAttributeKeyBytes)]: "v" });
    validateAttributes(manyEntries(MessageLimits.maxAttributes));
    validateAttributes({ "x-goog-version": "v1", Goog: "capital G is fine" });
  });

  test("labels - rejects too many attributes, naming the message", () => {
    assertInvalid(
      () => validateAttributes(manyEntries(101), "messages[3].attributes"),
      "messages[3].attributes",
      /at most 100 attributes are allowed, got 101/,
    );
  });

  test("labels - limits keys and values in UTF-8 bytes", () => {
    assertInvalid(
      () => validateAttributes({ ["é".repeat(129)]: "v" }),
      "attributes",
      /attribute key ".*…" must be at most 256 bytes, got 258/,
    );
    assertInvalid(
      () => validateAttributes({ key: "€".repeat(342) }, "messages[0].attributes"),
      "messages[0].attributes",
      /value of attribute "key" must be at most 1024 bytes, got 1026/,
    );
  });

  test("labels - rejects empty and goog-prefixed keys but accepts the clients' googclient_ keys", () => {
    assertInvalid(() => validateAttributes({ "": "v" }), "attributes", /must not be empty/);
    assertInvalid(() => validateAttributes({ goog_x: "v" }), "attributes", /"goog_x" must not start with "goog"/);
    validateAttributes({ googclient_OpenTelemetrySpanContext: "{}" });
  });
});

describe("labels - ordering keys", () => {
  test("labels - ordering key is at most 1024 bytes", () => {
    validateOrderingKey("");
    validateOrderingKey("k".repeat(1024));
    assertInvalid(
      () => validateOrderingKey("k".repeat(1025), "messages[2].orderingKey"),
      "messages[2].orderingKey",
      /ordering key must be at most 1024 bytes, got 1025/,
    );
    assertInvalid(() => validateOrderingKey("é".repeat(513)), "orderingKey", /got 1026/);
  });
});
