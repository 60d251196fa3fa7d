// Tests for resource names, Duration and Timestamp parsing and formatting.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Code, StreamgateError } from "../errors/index.js";
import {
  formatDuration,
  formatTimestamp,
  parseDurationMs,
  parseProjectName,
  parseSnapshotName,
  parseSubscriptionName,
  parseTimestampMs,
  parseTopicName,
  validateProjectId,
} from "./names.js";

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

describe("names - resource names", () => {
  test("names - parses topic, subscription and snapshot names", () => {
    assert.deepEqual(parseTopicName("projects/p1/topics/orders"), { project: "p1", id: "orders" });
    assert.deepEqual(parseSubscriptionName("projects/my-project/subscriptions/sub.a_b~c%2B+d"), {
      project: "my-project",
      id: "sub.a_b~c%2B+d",
    });
    assert.deepEqual(parseSnapshotName("projects/p/snapshots/Snap-1"), { project: "p", id: "Snap-1" });
  });

  test("names - id length is 3 to 255 characters", () => {
    assert.equal(parseTopicName("projects/p/topics/abc").id, "abc");
    assert.equal(parseTopicName(`projects/p/topics/a${"b".repeat(254)}`).id.length, 255);
    assertInvalid(
      () => parseTopicName("projects/p/topics/ab"),
      "name",
      /topic id "ab" must be 3 to 255 characters long, got 2/,
    );
    assertInvalid(() => parseTopicName(`projects/p/topics/a${"b".repeat(255)}`), "name", /got 256/);
  });

  test("names - id must start with a letter and use only allowed characters", () => {
    assertInvalid(() => parseTopicName("projects/p/topics/1abc"), "name", /topic id "1abc" must start with a letter/);
    assertInvalid(() => parseTopicName("projects/p/topics/-abc"), "name", /must start with a letter/);
    assertInvalid(
      () => parseSubscriptionName("projects/p/subscriptions/ab cd", "subscription"),
      "subscription",
      /subscription id "ab cd" may contain only letters, digits and the characters - \. _ ~ % \+/,
    );
    assertInvalid(() => parseTopicName("projects/p/topics/abé"), "name", /may contain only/);
  });

  test("names - ids must not start with goog", () => {
    assertInvalid(() => parseTopicName("projects/p/topics/google-topic"), "name", /must not start with "goog"/);
    assert.equal(parseTopicName("projects/p/topics/Google").id, "Google");
    assert.equal(parseTopicName("projects/p/topics/my-goog").id, "my-goog");
  });

  test("names - the shape must match the collection", () => {
    const expected = /expected "projects\/\{project\}\/topics\/\{topic\}"/;
    assertInvalid(() => parseTopicName(""), "name", /topic name is required/);
    assertInvalid(() => parseTopicName("orders"), "name", expected);
    assertInvalid(() => parseTopicName("projects/p/subscriptions/orders"), "name", expected);
    assertInvalid(() => parseTopicName("projects/p/topics/orders/extra"), "name", /invalid topic name/);
    assertInvalid(() => parseTopicName("/projects/p/topics/orders", "topic"), "topic", /invalid topic name/);
    assertInvalid(() => parseSnapshotName("projects/p/topics/abc"), "name", /snapshots\/\{snapshot\}/);
  });

  test("names - project ids are permissive but not empty", () => {
    assert.equal(parseTopicName("projects/Any_Project.123!/topics/abc").project, "Any_Project.123!");
    assertInvalid(() => parseTopicName("projects//topics/abc"), "name", /project id must not be empty/);
    validateProjectId("local-dev");
    assert.equal(parseProjectName("projects/my-project"), "my-project");
    assertInvalid(() => parseProjectName("my-project"), "project", /expected "projects\/\{project\}"/);
    assertInvalid(() => parseProjectName("projects/a/b"), "project", /invalid project name/);
    assertInvalid(() => parseProjectName("projects/", "parent"), "parent", /project id must not be empty/);
    assertInvalid(() => validateProjectId(""), "project", /must not be empty/);
    assertInvalid(() => validateProjectId("a/b", "parent"), "parent", /must not contain "\/"/);
  });
});

describe("names - durations", () => {
  test("names - parses proto Duration JSON text", () => {
    assert.equal(parseDurationMs("600s", "ackDeadline"), 600_000);
    assert.equal(parseDurationMs("1.5s", "f"), 1500);
    assert.equal(parseDurationMs("0s", "f"), 0);
    assert.equal(parseDurationMs("0.000000001s", "f"), 0);
    assert.equal(parseDurationMs("604800.123456789s", "f"), 604_800_123);
  });

  test("names - parses {seconds, nanos} objects, bigint seconds included", () => {
    assert.equal(parseDurationMs({ seconds: 10n, nanos: 500_000_000 }, "f"), 10_500);
    assert.equal(parseDurationMs({ seconds: "7" }, "f"), 7000);
    assert.equal(parseDurationMs({ nanos: 2_000_000 }, "f"), 2);
    assert.equal(parseDurationMs({}, "f"), 0);
  });

  test("names - rejects malformed and negative durations", () => {
    for (const bad of ["600", "s", "1.s", ".5s", "1.0000000001s", "10m", " 1s", "1e3s", ""]) {
      assertInvalid(
        () => parseDurationMs(bad, "retryPolicy.minimumBackoff"),
        "retryPolicy.minimumBackoff",
        /invalid duration/,
      );
    }
    assertInvalid(() => parseDurationMs("-1s", "f"), "f", /must not be negative/);
    assertInvalid(() => parseDurationMs({ seconds: -1n }, "f"), "f", /must not be negative/);
    assertInvalid(() => parseDurationMs({ seconds: 1, nanos: 1e9 }, "f"), "f", /nanos must be an integer between/);
    assertInvalid(() => parseDurationMs({ seconds: 1.5 }, "f"), "f", /seconds must be an integer/);
    assertInvalid(() => parseDurationMs("315576000001s", "f"), "f", /out of range/);
  });

  test("names - formats canonical Duration JSON", () => {
    assert.equal(formatDuration(600_000), "600s");
    assert.equal(formatDuration(0), "0s");
    assert.equal(formatDuration(1500), "1.500s");
    assert.equal(formatDuration(1), "0.001s");
    assert.equal(formatDuration(0.5), "0.000500s");
    assert.equal(formatDuration(-2000), "-2s");
    assert.throws(() => formatDuration(Number.NaN), RangeError);
  });

  test("names - format then parse round-trips whole milliseconds", () => {
    for (const ms of [0, 1, 999, 1000, 10_000, 123_456_789, 604_800_000]) {
      assert.equal(parseDurationMs(formatDuration(ms), "f"), ms);
    }
  });
});

describe("names - timestamps", () => {
  test("names - parses RFC 3339 in UTC with 0 to 9 fractional digits", () => {
    assert.equal(parseTimestampMs("1970-01-01T00:00:00Z", "t"), 0);
    assert.equal(parseTimestampMs("2024-01-01T00:00:00.123Z", "t"), Date.UTC(2024, 0, 1, 0, 0, 0, 123));
    assert.equal(parseTimestampMs("2024-01-01T00:00:00.123456789Z", "t"), Date.UTC(2024, 0, 1, 0, 0, 0, 123));
    assert.equal(parseTimestampMs("2024-01-01T00:00:00.1Z", "t"), Date.UTC(2024, 0, 1, 0, 0, 0, 100));
    assert.equal(parseTimestampMs("2024-02-29t12:30:45z", "t"), Date.UTC(2024, 1, 29, 12, 30, 45));
  });

  test("names - applies offsets", () => {
    assert.equal(parseTimestampMs("2024-01-01T02:00:00+02:00", "t"), Date.UTC(2024, 0, 1));
    assert.equal(parseTimestampMs("2023-12-31T19:30:00-04:30", "t"), Date.UTC(2024, 0, 1));
  });

  test("names - handles the proto range ends and early years", () => {
    assert.equal(parseTimestampMs("0001-01-01T00:00:00Z", "t"), -62_135_596_800_000);
    assert.equal(parseTimestampMs("9999-12-31T23:59:59.999Z", "t"), 253_402_300_799_999);
    assert.equal(formatTimestamp(parseTimestampMs("0050-06-15T00:00:00Z", "t")), "0050-06-15T00:00:00Z");
  });

  test("names - parses {seconds, nanos} objects", () => {
    assert.equal(parseTimestampMs({ seconds: 1_700_000_000n, nanos: 5_000_000 }, "t"), 1_700_000_000_005);
    assert.equal(parseTimestampMs({ seconds: -1, nanos: 500_000_000 }, "t"), -500);
    assertInvalid(() => parseTimestampMs({ seconds: 1, nanos: -1 }, "t"), "t", /nanos must not be negative/);
    assertInvalid(() => parseTimestampMs({ seconds: 300_000_000_000 }, "t"), "t", /must be between/);
  });

  test("names - rejects malformed or impossible timestamps", () => {
    for (const bad of [
      "2024-01-01",
      "2024-01-01T00:00:00",
      "2024-01-01 00:00:00Z",
      "2024-13-01T00:00:00Z",
      "2023-02-29T00:00:00Z",
      "2024-04-31T00:00:00Z",
      "2024-01-01T24:00:00Z",
      "2024-01-01T00:60:00Z",
      "2024-01-01T00:00:60Z",
      "2024-01-01T00:00:00.Z",
      "2024-01-01T00:00:00.1234567890Z",
      "2024-01-01T00:00:00+0200",
      "2024-01-01T00:00:00+24:00",
      "0000-01-01T00:00:00Z",
      "",
    ]) {
      assertInvalid(() => parseTimestampMs(bad, "time"), "time", /invalid timestamp/);
    }
  });

  test("names - formats canonical Timestamp JSON", () => {
    assert.equal(formatTimestamp(Date.UTC(2024, 0, 1, 0, 0, 0, 123)), "2024-01-01T00:00:00.123Z");
    assert.equal(formatTimestamp(Date.UTC(2024, 0, 1)), "2024-01-01T00:00:00Z");
    assert.equal(formatTimestamp(0), "1970-01-01T00:00:00Z");
    assert.equal(formatTimestamp(-1), "1969-12-31T23:59:59.999Z");
    assert.throws(() => formatTimestamp(Number.POSITIVE_INFINITY), RangeError);
    assert.throws(() => formatTimestamp(253_402_300_800_000), RangeError);
  });

  test("names - format then parse round-trips milliseconds", () => {
    for (const ms of [0, 1, -1, 1_704_067_200_123, 253_402_300_799_999, -62_135_596_800_000]) {
      assert.equal(parseTimestampMs(formatTimestamp(ms), "t"), ms);
    }
  });
});
