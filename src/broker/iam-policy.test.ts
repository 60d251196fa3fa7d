// IAM policy rules: resource kinds, binding validation and normalization, etag checks.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Code, StreamgateError } from "../errors/index.js";
import { checkIamEtag, EMPTY_POLICY_ETAG, emptyIamPolicy, parseIamResource, validateIamPolicy } from "./iam-policy.js";

const binding = (role: string, members: string[], hasCondition = false) => ({ role, members, hasCondition });
const failsWith = (work: () => unknown, code: Code, field: RegExp) =>
  assert.throws(work, (error: unknown) => {
    assert.ok(error instanceof StreamgateError);
    assert.equal(error.code, code);
    assert.match(error.message, field);
    return true;
  });

describe("iam policy", () => {
  test("iam policy - resource names of topics, subscriptions and snapshots; anything else is INVALID_ARGUMENT", () => {
    assert.equal(parseIamResource("projects/p/topics/orders").kind, "topics");
    assert.equal(parseIamResource("projects/p/subscriptions/orders-sub").kind, "subscriptions");
    assert.equal(parseIamResource("projects/p/snapshots/nightly").kind, "snapshots");
    failsWith(
      () => parseIamResource("projects/p/buckets/b"),
      Code.INVALID_ARGUMENT,
      /^resource: .*topics, subscriptions, snapshots/,
    );
    failsWith(() => parseIamResource("projects/p/topics/a/b"), Code.INVALID_ARGUMENT, /^resource:/);
    failsWith(() => parseIamResource("projects/p/__proto__/x"), Code.INVALID_ARGUMENT, /^resource:/);
  });

  test("iam policy - bindings merge by role, members are deduplicated and sorted, empty bindings dropped", () => {
    const policy = validateIamPolicy(0, [
      binding("roles/pubsub.publisher", ["user:b", "user:a"]),
      binding("roles/pubsub.publisher", ["user:a", "serviceAccount:svc"]),
      binding("roles/pubsub.viewer", []),
    ]);
    assert.deepEqual(policy, {
      version: 1,
      bindings: [{ role: "roles/pubsub.publisher", members: ["serviceAccount:svc", "user:a", "user:b"] }],
    });
  });

  test("iam policy - unsupported roles, bad members, conditions and versions are refused naming the field", () => {
    failsWith(
      () => validateIamPolicy(1, [binding("roles/storage.admin", ["user:a"])]),
      Code.INVALID_ARGUMENT,
      /^policy\.bindings\[0\]\.role:/,
    );
    failsWith(
      () => validateIamPolicy(1, [binding("roles/pubsub.viewer", ["user:a", "alice"])]),
      Code.INVALID_ARGUMENT,
      /^policy\.bindings\[0\]\.members\[1\]:/,
    );
    failsWith(
      () => validateIamPolicy(1, [binding("roles/pubsub.viewer", ["user:a"], true)]),
      Code.INVALID_ARGUMENT,
      /condition/,
    );
    failsWith(() => validateIamPolicy(2, []), Code.INVALID_ARGUMENT, /^policy\.version:/);
  });

  test("iam policy - a write naming an older etag is ABORTED; an empty etag always matches", () => {
    const current = { version: 1, bindings: [], etag: Uint8Array.of(1, 2, 3) };
    checkIamEtag(current, new Uint8Array(), "projects/p/topics/t");
    checkIamEtag(current, Uint8Array.of(1, 2, 3), "projects/p/topics/t");
    failsWith(() => checkIamEtag(current, Uint8Array.of(9), "projects/p/topics/t"), Code.ABORTED, /etag/);
    assert.equal(Buffer.from(emptyIamPolicy().etag).toString("base64"), "ACAB");
    checkIamEtag(emptyIamPolicy(), EMPTY_POLICY_ETAG, "projects/p/topics/t");
  });
});
