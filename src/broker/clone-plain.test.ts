// clonePlain: the same copy structuredClone makes of an engine's plain resource data, sharing nothing with it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { clonePlain } from "./clone-plain.js";

test("clonePlain - a topic-like config is copied deeply and equals structuredClone's copy", () => {
  const topic = {
    name: "projects/p/topics/t",
    labels: { team: "a", "cost-centre": "b" },
    messageRetentionDurationMs: null,
    retentionBytes: 1024,
    kmsKeyName: "",
    schemaSettings: { schema: "projects/p/schemas/s", encoding: "JSON", firstRevisionId: "", lastRevisionId: "" },
    messageStoragePolicy: { allowedPersistenceRegions: ["europe-west1", "us-east1"], enforceInTransit: true },
    createTimeMs: 1_765_000_000_000,
    flags: [true, false, undefined, 0, -0, Number.NaN, "x", [1, [2, { three: 3 }]]],
  };
  const copy = clonePlain(topic);
  assert.deepEqual(copy, structuredClone(topic));
  assert.notEqual(copy.labels, topic.labels);
  assert.notEqual(
    copy.messageStoragePolicy.allowedPersistenceRegions,
    topic.messageStoragePolicy.allowedPersistenceRegions,
  );
  copy.labels.team = "changed";
  copy.messageStoragePolicy.allowedPersistenceRegions.push("asia-east1");
  (copy.flags[7] as [number, [number, { three: number }]])[1][1].three = 4;
  assert.equal(topic.labels.team, "a");
  assert.deepEqual(topic.messageStoragePolicy.allowedPersistenceRegions, ["europe-west1", "us-east1"]);
  assert.deepEqual(topic.flags[7], [1, [2, { three: 3 }]]);
});

test("clonePlain - values that are not plain data are copied as structuredClone copies them", () => {
  const value = {
    when: new Date(5),
    bytes: new Uint8Array([1, 2]),
    map: new Map([["k", { v: 1 }]]),
    empty: Object.create(null),
  };
  const copy = clonePlain(value);
  assert.deepEqual(copy, structuredClone(value));
  assert.notEqual(copy.bytes, value.bytes);
  assert.notEqual(copy.map.get("k"), value.map.get("k"));
  assert.equal(clonePlain("text"), "text");
  assert.equal(clonePlain(null), null);
});
