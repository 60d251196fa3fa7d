// Grant patterns: the three name forms, wildcards within one segment, admin implying the rest, bad claims refused.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { allows, allowsAny, grantsFromClaim, noGrants } from "./permissions.js";

describe("auth - permissions", () => {
  const grants = grantsFromClaim({
    publish: ["orders", "orders-*"],
    subscribe: ["topics/audit", "subscriptions/worker-*", "projects/shop/*/*"],
    admin: ["projects/sandbox/topics/*"],
  });
  const cases: [string, "publish" | "subscribe" | "admin", string, boolean][] = [
    ["short name, any project", "publish", "projects/a/topics/orders", true],
    ["short name covers every kind", "publish", "projects/b/subscriptions/orders-eu", true],
    ["prefix wildcard", "publish", "projects/a/topics/orders-eu", true],
    ["wildcard stays inside its segment", "publish", "projects/a/topics/order", false],
    ["kind-qualified name", "subscribe", "projects/x/topics/audit", true],
    ["kind-qualified name is only that kind", "subscribe", "projects/x/subscriptions/audit", false],
    ["kind-qualified wildcard", "subscribe", "projects/x/subscriptions/worker-7", true],
    ["full name with wildcards", "subscribe", "projects/shop/snapshots/daily", true],
    ["full name pins the project", "subscribe", "projects/shoe/topics/audit-log", false],
    ["publish does not grant subscribe", "subscribe", "projects/a/topics/orders", false],
    ["admin implies publish", "publish", "projects/sandbox/topics/tmp", true],
    ["admin implies subscribe", "subscribe", "projects/sandbox/topics/tmp", true],
    ["admin is per kind", "admin", "projects/sandbox/subscriptions/tmp", false],
    ["admin needs an admin grant", "admin", "projects/a/topics/orders", false],
  ];
  for (const [name, permission, resource, expected] of cases) {
    test(`auth - permissions: ${name}`, () => assert.equal(allows(grants, permission, resource), expected));
  }

  test("auth - permissions: any grant lets a resource be seen; no claim grants nothing", () => {
    assert.equal(allowsAny(grants, "projects/shop/topics/x"), true);
    assert.equal(allowsAny(grants, "projects/other/topics/x"), false);
    assert.equal(allowsAny(grantsFromClaim(undefined), "projects/a/topics/orders"), false);
    assert.equal(noGrants.globalAdmin, false);
  });

  test("auth - permissions: admin on everything is recognised in each form", () => {
    for (const pattern of ["*", "*/*", "projects/*/*/*"])
      assert.equal(grantsFromClaim({ admin: [pattern] }).globalAdmin, true);
    assert.equal(grantsFromClaim({ admin: ["projects/p/*/*"] }).globalAdmin, false);
  });

  test("auth - permissions: a claim of the wrong shape is refused as TOKEN_CLAIMS_INVALID", () => {
    for (const claim of [
      "publish",
      [],
      { publish: [1] },
      { read: ["x"] },
      { admin: ["projects/p/topics"] },
      { admin: ["a/b/c"] },
      { admin: ["things/x"] },
      { subscribe: [""] },
    ]) {
      assert.throws(() => grantsFromClaim(claim), { reason: "TOKEN_CLAIMS_INVALID" }, JSON.stringify(claim));
    }
  });
});
