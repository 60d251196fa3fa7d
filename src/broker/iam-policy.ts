// IAM policies on Pub/Sub resources (google.iam.v1.Policy): the resource kinds that carry one, validation, etags.
import { randomBytes } from "node:crypto";
import { Code, errors, StreamgateError } from "../errors/index.js";
import {
  parseSchemaName,
  parseSnapshotName,
  parseSubscriptionName,
  parseTopicName,
  type ResourceName,
} from "./names.js";

/**
 * Resource kinds that carry an IAM policy, keyed by the collection segment of their name
 * (`projects/{p}/{collection}/{id}`). Adding a kind is one entry here (plus the engines' lookup,
 * which the type system then asks for). A schema's policy is the schema's, whatever its revisions.
 */
export const IAM_RESOURCE_KINDS = {
  topics: parseTopicName,
  subscriptions: parseSubscriptionName,
  snapshots: parseSnapshotName,
  schemas: (name: string, field?: string) => parseSchemaName(name, field),
} as const satisfies Record<string, (name: string, field?: string) => ResourceName>;
export type IamResourceKind = keyof typeof IAM_RESOURCE_KINDS;

/** The Pub/Sub permissions that exist on each kind of resource (what TestIamPermissions can answer). */
export const IAM_PERMISSIONS: Record<IamResourceKind, readonly string[]> = {
  topics: [
    "pubsub.topics.attachSubscription",
    "pubsub.topics.delete",
    "pubsub.topics.detachSubscription",
    "pubsub.topics.get",
    "pubsub.topics.getIamPolicy",
    "pubsub.topics.publish",
    "pubsub.topics.setIamPolicy",
    "pubsub.topics.update",
    "pubsub.topics.updateTag",
  ],
  subscriptions: [
    "pubsub.subscriptions.consume",
    "pubsub.subscriptions.delete",
    "pubsub.subscriptions.get",
    "pubsub.subscriptions.getIamPolicy",
    "pubsub.subscriptions.setIamPolicy",
    "pubsub.subscriptions.update",
  ],
  snapshots: [
    "pubsub.snapshots.delete",
    "pubsub.snapshots.get",
    "pubsub.snapshots.getIamPolicy",
    "pubsub.snapshots.seek",
    "pubsub.snapshots.setIamPolicy",
    "pubsub.snapshots.update",
  ],
  schemas: [
    "pubsub.schemas.attach",
    "pubsub.schemas.commit",
    "pubsub.schemas.delete",
    "pubsub.schemas.get",
    "pubsub.schemas.getIamPolicy",
    "pubsub.schemas.listRevisions",
    "pubsub.schemas.rollback",
    "pubsub.schemas.setIamPolicy",
    "pubsub.schemas.validate",
  ],
};

/** One role granted to members (google.iam.v1.Binding without conditions). */
export interface IamBinding {
  /** e.g. `roles/pubsub.publisher`. */
  role: string;
  /** e.g. `user:alice`, `serviceAccount:orders-service`, `allUsers`. */
  members: string[];
}

/** A stored policy. `etag` changes with every write; a write naming an older etag is refused (ABORTED). */
export interface IamPolicy {
  /** 1 for a policy without conditions (the only kind streamgate stores). */
  version: number;
  bindings: IamBinding[];
  /** Opaque bytes identifying this revision of the policy. */
  etag: Uint8Array;
}

/** What a SetIamPolicy call asks for. */
export interface IamPolicyWrite {
  version: number;
  bindings: IamBinding[];
  /** The etag the caller read; empty = overwrite whatever is stored (as Pub/Sub does). */
  expectedEtag: Uint8Array;
}

/** The etag of a resource that never had a policy set ("ACAB" in base64, as Pub/Sub answers). */
export const EMPTY_POLICY_ETAG: Uint8Array = Uint8Array.of(0x00, 0x20, 0x01);

/** The policy of a resource nobody set one on (Pub/Sub answers `{"etag": "ACAB"}`). */
export function emptyIamPolicy(): IamPolicy {
  return { version: 0, bindings: [], etag: EMPTY_POLICY_ETAG };
}

/** The roles a binding may name: Pub/Sub's five and the basic roles (owner = admin). */
export const IAM_ROLES = [
  "roles/pubsub.admin",
  "roles/pubsub.editor",
  "roles/pubsub.publisher",
  "roles/pubsub.subscriber",
  "roles/pubsub.viewer",
  "roles/owner",
  "roles/editor",
  "roles/viewer",
] as const;
export type IamRole = (typeof IAM_ROLES)[number];

const MEMBER = /^(?:allUsers|allAuthenticatedUsers|(?:user|serviceAccount|group|domain):[^\s]{1,512})$/;
const MAX_BINDINGS = 1500;

/**
 * The kind and parsed name of `resource`.
 * @throws StreamgateError INVALID_ARGUMENT (naming `field`) when it is not the name of a kind that carries policies.
 */
export function parseIamResource(resource: string, field = "resource"): { kind: IamResourceKind; name: ResourceName } {
  const collection = typeof resource === "string" ? resource.split("/")[2] : undefined;
  if (collection === undefined || !Object.hasOwn(IAM_RESOURCE_KINDS, collection)) {
    const kinds = Object.keys(IAM_RESOURCE_KINDS).join(", ");
    throw errors.invalidArgument(
      field,
      `${JSON.stringify(String(resource).slice(0, 200))} is not a resource with an IAM policy; expected projects/{project}/{kind}/{id} with kind ${kinds}`,
    );
  }
  const kind = collection as IamResourceKind;
  return { kind, name: IAM_RESOURCE_KINDS[kind](resource, field) };
}

/**
 * Checks a policy to store and returns it normalized (bindings merged by role, members deduplicated,
 * empty bindings dropped, version 1).
 * @throws StreamgateError INVALID_ARGUMENT naming the offending field.
 */
export function validateIamPolicy(
  version: number,
  bindings: readonly { role: string; members: readonly string[]; hasCondition: boolean }[],
): { version: number; bindings: IamBinding[] } {
  if (version !== 0 && version !== 1 && version !== 3) {
    throw errors.invalidArgument("policy.version", `must be 0, 1 or 3, got ${version}`);
  }
  if (bindings.length > MAX_BINDINGS) {
    throw errors.invalidArgument("policy.bindings", `at most ${MAX_BINDINGS} bindings`);
  }
  const byRole = new Map<string, Set<string>>();
  bindings.forEach((binding, index) => {
    const field = `policy.bindings[${index}]`;
    if (binding.hasCondition) {
      throw errors.invalidArgument(
        `${field}.condition`,
        "conditional role bindings are not supported on Pub/Sub resources; remove the condition",
      );
    }
    if (!(IAM_ROLES as readonly string[]).includes(binding.role)) {
      throw errors.invalidArgument(
        `${field}.role`,
        `role ${JSON.stringify(binding.role.slice(0, 100))} is not supported for this resource; use one of ${IAM_ROLES.join(", ")}`,
      );
    }
    const members = byRole.get(binding.role) ?? new Set<string>();
    binding.members.forEach((member, memberIndex) => {
      if (!MEMBER.test(member)) {
        throw errors.invalidArgument(
          `${field}.members[${memberIndex}]`,
          `${JSON.stringify(member.slice(0, 100))} is not a member: use user:ID, serviceAccount:ID, group:ID, domain:NAME, allUsers or allAuthenticatedUsers`,
        );
      }
      members.add(member);
    });
    byRole.set(binding.role, members);
  });
  return {
    version: 1,
    bindings: [...byRole]
      .filter(([, members]) => members.size > 0)
      .map(([role, members]) => ({ role, members: [...members].sort() })),
  };
}

/**
 * Throws ABORTED unless `expected` is empty or equals the stored policy's etag (Pub/Sub's answer to a
 * read-modify-write that lost a race).
 */
export function checkIamEtag(current: IamPolicy, expected: Uint8Array, resource: string): void {
  if (expected.length === 0 || Buffer.from(expected).equals(Buffer.from(current.etag))) return;
  throw new StreamgateError(
    Code.ABORTED,
    `the IAM policy of ${resource} changed since it was read (etag mismatch); get the policy again, apply the change and retry`,
    { reason: "IAM_POLICY_ETAG_MISMATCH", details: { resource } },
  );
}

/** A fresh etag for a new revision of a policy. */
export function newIamEtag(): Uint8Array {
  return new Uint8Array(randomBytes(8));
}

/** JSON form for storage (etag as base64). */
export function iamPolicyToJson(policy: IamPolicy): string {
  return JSON.stringify({
    version: policy.version,
    bindings: policy.bindings,
    etag: Buffer.from(policy.etag).toString("base64"),
  });
}

export function iamPolicyFromJson(text: string): IamPolicy {
  const parsed = JSON.parse(text) as { version: number; bindings: IamBinding[]; etag: string };
  return {
    version: parsed.version,
    bindings: parsed.bindings,
    etag: new Uint8Array(Buffer.from(parsed.etag, "base64")),
  };
}
