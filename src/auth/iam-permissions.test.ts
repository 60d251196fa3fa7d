// Which policy members a token is, what roles grant, and what a token's own grants hold as Pub/Sub permissions.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { grantPermissions, memberMatches, policyPermissions } from "./iam-permissions.js";
import { grantsFromClaim } from "./permissions.js";

const policy = (role: string, members: string[]) => ({
  version: 1,
  bindings: [{ role, members }],
  etag: new Uint8Array(),
});

describe("iam permissions", () => {
  test("iam permissions - user: and serviceAccount: match the token's sub exactly; all* match every token", () => {
    assert.ok(memberMatches("user:bob", "bob"));
    assert.ok(memberMatches("serviceAccount:bob", "bob"));
    assert.ok(!memberMatches("user:bob", "bobby"));
    assert.ok(!memberMatches("user:Bob", "bob"));
    assert.ok(memberMatches("allUsers", "anyone"));
    assert.ok(memberMatches("allAuthenticatedUsers", "anyone"));
    assert.ok(!memberMatches("group:team", "team"));
    assert.ok(!memberMatches("user:unknown-subject", "unknown-subject"), "a token without sub matches no user");
  });

  test("iam permissions - roles grant Pub/Sub's permissions of the resource's kind", () => {
    assert.deepEqual([...policyPermissions(policy("roles/pubsub.publisher", ["user:bob"]), "topics", "bob")].sort(), [
      "pubsub.topics.get",
      "pubsub.topics.publish",
    ]);
    assert.deepEqual(
      [...policyPermissions(policy("roles/pubsub.subscriber", ["user:bob"]), "subscriptions", "bob")].sort(),
      ["pubsub.subscriptions.consume", "pubsub.subscriptions.get"],
    );
    const editor = policyPermissions(policy("roles/pubsub.editor", ["allUsers"]), "topics", "x");
    assert.ok(editor.has("pubsub.topics.delete") && !editor.has("pubsub.topics.setIamPolicy"));
    assert.ok(
      policyPermissions(policy("roles/pubsub.admin", ["user:x"]), "snapshots", "x").has(
        "pubsub.snapshots.setIamPolicy",
      ),
    );
    assert.equal(policyPermissions(policy("roles/pubsub.admin", ["user:x"]), "topics", "y").size, 0, "not a member");
    assert.equal(policyPermissions(null, "topics", "x").size, 0);
  });

  test("iam permissions - a token's grants as permissions: admin all, publish, subscribe, any grant = get", () => {
    const grants = grantsFromClaim({
      publish: ["orders"],
      subscribe: ["subscriptions/orders-*"],
      admin: ["sandbox-*"],
    });
    assert.deepEqual([...grantPermissions(grants, "topics", "projects/p/topics/orders")].sort(), [
      "pubsub.topics.get",
      "pubsub.topics.publish",
    ]);
    assert.deepEqual([...grantPermissions(grants, "subscriptions", "projects/p/subscriptions/orders-1")].sort(), [
      "pubsub.subscriptions.consume",
      "pubsub.subscriptions.get",
    ]);
    assert.equal(grantPermissions(grants, "topics", "projects/p/topics/sandbox-a").size, 9, "admin holds all nine");
    assert.equal(grantPermissions(grants, "topics", "projects/p/topics/payments").size, 0);
  });
});
