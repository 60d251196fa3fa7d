// Pub/Sub IAM permissions: what roles grant, which policy members a token is, and a caller's effective permissions.
import { IAM_PERMISSIONS, type IamPolicy, type IamResourceKind } from "../broker/iam-policy.js";
import { allows, allowsAny, type Grants, Permission } from "./permissions.js";

/** What the editor roles grant: everything but reading and setting the policy. */
const EDITOR_VERBS = [
  "get",
  "listRevisions",
  "attach",
  "commit",
  "rollback",
  "validate",
  "update",
  "delete",
  "publish",
  "attachSubscription",
  "detachSubscription",
  "consume",
  "seek",
  "updateTag",
] as const;
/** What the viewer roles grant. */
const VIEWER_VERBS = ["get", "listRevisions"] as const;

/** The verbs (last permission segment) each role grants; `*` = every permission of the kind. */
const ROLE_VERBS: Record<string, readonly string[]> = {
  "roles/pubsub.admin": ["*"],
  "roles/owner": ["*"],
  "roles/pubsub.editor": EDITOR_VERBS,
  "roles/editor": EDITOR_VERBS,
  // Any role lets its members see the resource: streamgate's Get needs "any permission" on it.
  "roles/pubsub.publisher": ["get", "publish"],
  "roles/pubsub.subscriber": ["get", "consume", "attachSubscription", "seek"],
  "roles/pubsub.viewer": VIEWER_VERBS,
  "roles/viewer": VIEWER_VERBS,
};

/** The subject a token without `sub` is given by the verifier; it matches no `user:`/`serviceAccount:` member. */
const NO_SUBJECT = "unknown-subject";

/**
 * Whether a policy member names the caller whose token has subject `subject`: `allUsers` and
 * `allAuthenticatedUsers` match every verified token; `user:SUB` and `serviceAccount:SUB` match the token
 * whose `sub` is exactly SUB; `group:` and `domain:` members never match (tokens carry no groups).
 */
export function memberMatches(member: string, subject: string): boolean {
  if (member === "allUsers" || member === "allAuthenticatedUsers") return true;
  if (subject === NO_SUBJECT) return false;
  return member === `user:${subject}` || member === `serviceAccount:${subject}`;
}

/** The permissions `policy` grants the token with subject `subject` on a resource of `kind`. */
export function policyPermissions(policy: IamPolicy | null, kind: IamResourceKind, subject: string): Set<string> {
  const granted = new Set<string>();
  if (policy === null) return granted;
  for (const binding of policy.bindings) {
    if (!binding.members.some((member) => memberMatches(member, subject))) continue;
    const verbs = ROLE_VERBS[binding.role] ?? [];
    for (const permission of IAM_PERMISSIONS[kind]) {
      if (verbs.includes("*") || verbs.includes(permission.slice(permission.lastIndexOf(".") + 1))) {
        granted.add(permission);
      }
    }
  }
  return granted;
}

/**
 * The permissions a token's own grants give on `name` of `kind`: admin = all of them; publish on a topic
 * = publish; subscribe = attachSubscription (topic), consume (subscription), seek (snapshot); any grant = get.
 */
export function grantPermissions(grants: Grants, kind: IamResourceKind, name: string): Set<string> {
  const all = IAM_PERMISSIONS[kind];
  if (allows(grants, Permission.admin, name)) return new Set(all);
  const granted = new Set<string>();
  const add = (verb: string) => {
    const permission = all.find((candidate) => candidate.endsWith(`.${verb}`));
    if (permission !== undefined) granted.add(permission);
  };
  if (allowsAny(grants, name)) {
    add("get");
    // A schema's readers may also list its revisions, validate against it and attach it to a topic.
    if (kind === "schemas") for (const verb of ["listRevisions", "validate", "attach"]) add(verb);
  }
  if (kind === "topics" && allows(grants, Permission.publish, name)) add("publish");
  if (allows(grants, Permission.subscribe, name)) {
    add(kind === "topics" ? "attachSubscription" : kind === "subscriptions" ? "consume" : "seek");
  }
  return granted;
}
