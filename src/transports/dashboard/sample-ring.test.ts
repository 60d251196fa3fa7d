// Unit tests of the dashboard's sample ring: bounded, oldest first, evicts the oldest when full.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createSampleRing } from "./sample-ring.js";

describe("sample ring", () => {
  test("sample ring - starts empty", () => {
    const ring = createSampleRing<number>(3);
    assert.equal(ring.size, 0);
    assert.deepEqual(ring.values(), []);
    assert.equal(ring.latest(), undefined);
  });

  test("sample ring - keeps samples oldest first until full", () => {
    const ring = createSampleRing<number>(4);
    for (const value of [10, 20, 30]) ring.push(value);
    assert.equal(ring.size, 3);
    assert.deepEqual(ring.values(), [10, 20, 30]);
    assert.equal(ring.latest(), 30);
  });

  test("sample ring - evicts the oldest sample once full and never holds more than its capacity", () => {
    const ring = createSampleRing<number>(3);
    for (let value = 1; value <= 10; value++) {
      ring.push(value);
      assert.ok(ring.size <= 3);
    }
    assert.equal(ring.size, 3);
    assert.deepEqual(ring.values(), [8, 9, 10]);
    assert.equal(ring.latest(), 10);
  });

  test("sample ring - wraps around many times and stays in order", () => {
    const ring = createSampleRing<{ atMs: number }>(90);
    for (let atMs = 0; atMs < 1_000; atMs++) ring.push({ atMs });
    const values = ring.values();
    assert.equal(values.length, 90);
    assert.equal(values[0]?.atMs, 910);
    assert.equal(values[89]?.atMs, 999);
    assert.ok(values.every((sample, index) => index === 0 || sample.atMs === (values[index - 1]?.atMs ?? -2) + 1));
  });

  test("sample ring - values() is a copy: changing it leaves the ring alone", () => {
    const ring = createSampleRing<number>(2);
    ring.push(1);
    ring.values().push(99);
    assert.deepEqual(ring.values(), [1]);
  });

  test("sample ring - a capacity of one keeps the latest sample only", () => {
    const ring = createSampleRing<string>(1);
    ring.push("a");
    ring.push("b");
    assert.deepEqual(ring.values(), ["b"]);
  });

  test("sample ring - refuses a capacity that is not a positive integer", () => {
    for (const capacity of [0, -1, 1.5, Number.NaN]) {
      assert.throws(() => createSampleRing(capacity), /capacity must be an integer >= 1/);
    }
  });
});
