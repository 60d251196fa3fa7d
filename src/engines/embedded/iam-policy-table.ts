// IAM policies of the embedded engine: one row per resource, removed with its resource by SQLite triggers.
import type Database from "better-sqlite3";
import {
  checkIamEtag,
  emptyIamPolicy,
  type IamPolicy,
  type IamPolicyWrite,
  iamPolicyFromJson,
  iamPolicyToJson,
  newIamEtag,
} from "../../broker/iam-policy.js";

/** Reads and writes the `iam_policies` table (migration 2). */
export class IamPolicyTable {
  private readonly select;
  private readonly upsert;

  constructor(private readonly db: Database.Database) {
    this.select = db.prepare("SELECT policy FROM iam_policies WHERE resource = ?").pluck();
    this.upsert = db.prepare(
      "INSERT INTO iam_policies (resource, policy) VALUES (?, ?) ON CONFLICT (resource) DO UPDATE SET policy = excluded.policy",
    );
  }

  /** The stored policy, or null when none was set (or its resource was deleted). */
  get(resource: string): IamPolicy | null {
    const text = this.select.get(resource) as string | undefined;
    return text === undefined ? null : iamPolicyFromJson(text);
  }

  /** Compare-and-set on the etag, in one transaction. */
  set(resource: string, write: IamPolicyWrite): IamPolicy {
    return this.db.transaction(() => {
      checkIamEtag(this.get(resource) ?? emptyIamPolicy(), write.expectedEtag, resource);
      const policy: IamPolicy = { version: write.version, bindings: write.bindings, etag: newIamEtag() };
      this.upsert.run(resource, iamPolicyToJson(policy));
      return policy;
    })();
  }
}
