// Resource-level authorization, once for every transport: the engine chain's authorization link and a StreamHub that check the caller's grants.
import { type IamResourceKind, parseIamResource } from "../broker/iam-policy.js";
import { parseSchemaName, parseSnapshotName, parseSubscriptionName, parseTopicName } from "../broker/names.js";
import { DELETED_SCHEMA, type Page, type SchemaSettings } from "../broker/types.js";
import type { Engine } from "../engines/engine.js";
import type { EngineInterception, EngineInterceptor } from "../engines/engine-chain.js";
import { Code, StreamgateError } from "../errors/index.js";
import type { Schemas } from "../schemas/index.js";
import type { StreamHub } from "../streams/index.js";
import { grantPermissions, policyPermissions } from "./iam-permissions.js";
import { allows, allowsAny, Permission } from "./permissions.js";
import { type PrincipalContext, principalContext } from "./principal-context.js";
import { isTokenPrincipal, type TokenPrincipal } from "./token-principal.js";

type Kind = "topic" | "subscription" | "snapshot" | "schema";

const parsers = {
  topic: parseTopicName,
  subscription: parseSubscriptionName,
  snapshot: parseSnapshotName,
  schema: (name: string, field: string) => parseSchemaName(name, field, true),
};

/** The resource a permission is checked on: a schema revision (`s@rev`) is its schema. */
const resourceOf = (kind: Kind, name: string) => (kind === "schema" ? name.split("@")[0]! : name);

/** The IAM resource kind of each kind of resource a permission is checked on. */
const iamKinds: Record<Kind, IamResourceKind> = {
  topic: "topics",
  subscription: "subscriptions",
  snapshot: "snapshots",
  schema: "schemas",
};

/**
 * The Pub/Sub permission that stands for a streamgate permission when a resource's IAM policy is consulted:
 * publish = `publish`, subscribe = `attachSubscription` (topic) / `consume` (subscription) / `seek` (snapshot),
 * admin = `update` (editor and admin roles), any = `get` (every role). On a schema: admin = `commit`, any = `get`,
 * publish or subscribe = `attach`.
 */
function iamPermissionFor(permission: Permission | "any", iamKind: IamResourceKind): string {
  const prefix = `pubsub.${iamKind}.`;
  if (permission === "any") return `${prefix}get`;
  if (iamKind === "schemas") return `${prefix}${permission === Permission.admin ? "commit" : "attach"}`;
  if (permission === Permission.publish) return `${prefix}publish`;
  if (permission === Permission.admin) return `${prefix}update`;
  return `${prefix}${iamKind === "topics" ? "attachSubscription" : iamKind === "subscriptions" ? "consume" : "seek"}`;
}

/** Called on every denial (the auth-failures metric). */
export type DeniedListener = (transport: string) => void;

/**
 * The checks the engine's authorization link and the hub share, on the caller `context` gives; `onDenied` counts
 * refusals. A call the token's grants do not cover is
 * still allowed when the resource's IAM policy (read from `policies`) grants the matching Pub/Sub
 * permission to a member the token is (see iam-permissions.ts).
 */
function createGuard(
  onDenied: DeniedListener,
  policies: Pick<Engine, "storedIamPolicy"> | null,
  context: PrincipalContext,
) {
  const caller = (): TokenPrincipal => {
    const principal = context.principal;
    if (principal === undefined) {
      // Fail closed: every request runs as a principal; reaching here means a transport lost the async context.
      throw new StreamgateError(Code.INTERNAL, "internal error: the request's caller is unknown (refused)", {
        reason: "INTERNAL",
      });
    }
    if (!isTokenPrincipal(principal)) {
      onDenied("unknown");
      throw new StreamgateError(Code.PERMISSION_DENIED, "the caller has no verified token", {
        reason: "PERMISSION_DENIED",
        details: { resource: "*" },
      });
    }
    return principal;
  };
  const deny = (principal: TokenPrincipal, permission: Permission | "any", kind: Kind, name: string) => {
    onDenied(principal.transport);
    const what = permission === "any" ? "no permission" : `no ${permission} permission`;
    return new StreamgateError(Code.PERMISSION_DENIED, `token of "${principal.id}" has ${what} on ${kind} ${name}`, {
      reason: "PERMISSION_DENIED",
      details: { resource: name },
    });
  };
  /** Whether the policy on `name` grants `iamPermission` (e.g. `pubsub.topics.publish`) to the caller. */
  const policyAllows = (principal: TokenPrincipal, kind: IamResourceKind, name: string, iamPermission: string) =>
    policies !== null && policyPermissions(policies.storedIamPolicy(name), kind, principal.id).has(iamPermission);
  /** The same, for a streamgate permission on a resource of `kind` (false for kinds without IAM policies). */
  const policyAllowsOn = (principal: TokenPrincipal, kind: Kind, name: string, permission: Permission | "any") => {
    const iamKind = iamKinds[kind];
    const resource = resourceOf(kind, name);
    return policyAllows(principal, iamKind, resource, iamPermissionFor(permission, iamKind));
  };
  return {
    caller,
    /** Throws INVALID_ARGUMENT for a malformed name, PERMISSION_DENIED when `permission` is not granted. */
    require(permission: Permission, kind: Kind, name: string, field = "name"): TokenPrincipal {
      const principal = caller();
      parsers[kind](name, field);
      if (
        !allows(principal.grants, permission, resourceOf(kind, name)) &&
        !policyAllowsOn(principal, kind, name, permission)
      ) {
        throw deny(principal, permission, kind, name);
      }
      return principal;
    },
    /** Get*: any grant on the resource is enough to see it. */
    requireAny(kind: Kind, name: string, field = "name"): TokenPrincipal {
      const principal = caller();
      parsers[kind](name, field);
      if (!allowsAny(principal.grants, resourceOf(kind, name)) && !policyAllowsOn(principal, kind, name, "any")) {
        throw deny(principal, "any", kind, name);
      }
      return principal;
    },
    /** Get/SetIamPolicy: admin on the resource, or `pubsub.<kind>.<verb>` from its policy (roles/pubsub.admin). */
    requireIam(kind: IamResourceKind, name: string, verb: "getIamPolicy" | "setIamPolicy"): void {
      const principal = caller();
      if (allows(principal.grants, Permission.admin, name)) return;
      if (policyAllows(principal, kind, name, `pubsub.${kind}.${verb}`)) return;
      onDenied(principal.transport);
      throw new StreamgateError(Code.PERMISSION_DENIED, `token of "${principal.id}" may not ${verb} on ${name}`, {
        reason: "PERMISSION_DENIED",
        details: { resource: name },
      });
    },
    /** Of `permissions`, those the caller holds on `name`: its grants' and its policy's. */
    effective(kind: IamResourceKind, name: string, permissions: string[]): string[] {
      const principal = caller();
      const held = grantPermissions(principal.grants, kind, name);
      if (policies !== null)
        for (const permission of policyPermissions(policies.storedIamPolicy(name), kind, principal.id))
          held.add(permission);
      return permissions.filter((permission) => held.has(permission));
    },
    /** List*: only resources the caller holds some grant on are shown (a page may come back short). */
    filter<T>(page: Page<T>, nameOf: (item: T) => string): Page<T> {
      const principal = caller();
      return { ...page, items: page.items.filter((item) => allowsAny(principal.grants, nameOf(item))) };
    },
    globalAdmin(what: string): void {
      const principal = caller();
      if (!principal.grants.globalAdmin) {
        onDenied(principal.transport);
        throw new StreamgateError(Code.PERMISSION_DENIED, `${what} needs admin on every resource ("admin": ["*"])`, {
          reason: "PERMISSION_DENIED",
          details: { resource: "*" },
        });
      }
    },
  };
}

type Guard = ReturnType<typeof createGuard>;

const self = (name: string) => name;
const named = (item: { name: string }) => item.name;

/** The name of the authorization link of the engine chain. */
export const AUTHORIZATION_INTERCEPTOR = "authorization";

/**
 * The engine chain's authorization link: checks the current principal's grants before each call: `publish` for
 * Publish, `subscribe` for pull/stream/ack/modack and topic reads, `admin` for everything that changes resources;
 * Get* needs any grant and List* shows only granted resources. A resource's IAM policy adds to the grants
 * (docs/auth.md, "IAM policies on resources"); Get/SetIamPolicy need admin, TestIamPermissions nothing.
 * `storedIamPolicy`, `ready` and `close` pass through. Only the transports call through it: background work (push
 * worker, hub readers) enters the chain below it and runs without a principal.
 */
export function authorizationInterceptor(onDenied: DeniedListener): EngineInterceptor<PrincipalContext> {
  return {
    name: AUTHORIZATION_INTERCEPTOR,
    intercept: (next, context) => authorizedCalls(next, createGuard(onDenied, next, context)),
  };
}

/** The calls of {@link authorizationInterceptor}, each a check then `engine`'s call (a refusal rejects). */
function authorizedCalls(engine: Engine, guard: Guard): EngineInterception {
  const { publish, subscribe, admin } = Permission;
  /** A check of `permission` ("any": some grant, as Get* needs) on the `kind` resource `name`; `field` names it in errors. */
  const need =
    (permission: Permission | "any", kind: Kind, field = "name") =>
    (name: string): void => {
      if (permission === "any") guard.requireAny(kind, name, field);
      else guard.require(permission, kind, name, field);
    };
  const adminOnTopic = need(admin, "topic");
  const anyOnTopic = need("any", "topic");
  const publishOnTopic = need(publish, "topic", "topic");
  const subscribeOnTopic = need(subscribe, "topic", "topic");
  const adminOnSubscription = need(admin, "subscription");
  const anyOnSubscription = need("any", "subscription");
  const subscribeOnSubscription = need(subscribe, "subscription", "subscription");
  const seekOnSubscription = need(admin, "subscription", "subscription");
  const adminOnSnapshot = need(admin, "snapshot");
  const anyOnSnapshot = need("any", "snapshot");
  // Attaching a schema to a topic needs some grant on the schema (Pub/Sub's pubsub.schemas.attach).
  const attachSchema = (settings: SchemaSettings | null | undefined) => {
    if (settings && settings.schema !== DELETED_SCHEMA)
      guard.requireAny("schema", settings.schema, "schema_settings.schema");
  };
  // Each method is written out (no `...args` wrapper), so a call allocates no argument array.
  return {
    schemas: authorizeSchemas(engine.schemas, guard),
    async createTopic(init) {
      adminOnTopic(init.name);
      attachSchema(init.schemaSettings);
      return engine.createTopic(init);
    },
    // The hot unary calls return the engine's own promise: an async method returning a promise costs the call
    // extra turns of the microtask queue (about a microsecond); a refusal is still a rejected promise.
    getTopic(name) {
      try {
        anyOnTopic(name);
        return engine.getTopic(name);
      } catch (error) {
        return Promise.reject(error);
      }
    },
    async updateTopic(name, update) {
      adminOnTopic(name);
      attachSchema(update.patch.schemaSettings);
      return engine.updateTopic(name, update);
    },
    async listTopics(project, page) {
      guard.caller();
      return guard.filter(await engine.listTopics(project, page), named);
    },
    async deleteTopic(name) {
      adminOnTopic(name);
      return engine.deleteTopic(name);
    },
    publish(topic, messages) {
      try {
        publishOnTopic(topic);
        return engine.publish(topic, messages);
      } catch (error) {
        return Promise.reject(error);
      }
    },
    async readTopic(topic, fromOffset, limit) {
      subscribeOnTopic(topic);
      return engine.readTopic(topic, fromOffset, limit);
    },
    async offsetAtTime(topic, timeMs) {
      subscribeOnTopic(topic);
      return engine.offsetAtTime(topic, timeMs);
    },
    async topicStats(topic) {
      anyOnTopic(topic);
      return engine.topicStats(topic);
    },
    watchTopic(topic, listener) {
      subscribeOnTopic(topic);
      return engine.watchTopic(topic, listener);
    },
    async createSubscription(init) {
      adminOnSubscription(init.name);
      // Reading a topic through a new subscription needs the right to read that topic.
      subscribeOnTopic(init.topic);
      if (init.deadLetterPolicy) {
        guard.require(publish, "topic", init.deadLetterPolicy.deadLetterTopic, "dead_letter_topic");
      }
      return engine.createSubscription(init);
    },
    async getSubscription(name) {
      anyOnSubscription(name);
      return engine.getSubscription(name);
    },
    async updateSubscription(name, update) {
      adminOnSubscription(name);
      const deadLetterTopic = update.patch.deadLetterPolicy?.deadLetterTopic;
      if (deadLetterTopic) guard.require(publish, "topic", deadLetterTopic, "dead_letter_topic");
      return engine.updateSubscription(name, update);
    },
    async listSubscriptions(project, page) {
      guard.caller();
      return guard.filter(await engine.listSubscriptions(project, page), named);
    },
    async listProjects() {
      guard.globalAdmin("listing projects");
      return engine.listProjects();
    },
    async listTopicSubscriptions(topic, page) {
      anyOnTopic(topic);
      return guard.filter(await engine.listTopicSubscriptions(topic, page), self);
    },
    async deleteSubscription(name) {
      adminOnSubscription(name);
      return engine.deleteSubscription(name);
    },
    async detachSubscription(name) {
      adminOnSubscription(name);
      return engine.detachSubscription(name);
    },
    async pull(name, options) {
      subscribeOnSubscription(name);
      return engine.pull(name, options);
    },
    openStream(name, options) {
      subscribeOnSubscription(name);
      return engine.openStream(name, options);
    },
    acknowledge(name, ackIds) {
      try {
        subscribeOnSubscription(name);
        return engine.acknowledge(name, ackIds);
      } catch (error) {
        return Promise.reject(error);
      }
    },
    async modifyAckDeadline(name, ackIds, seconds) {
      subscribeOnSubscription(name);
      return engine.modifyAckDeadline(name, ackIds, seconds);
    },
    async seek(name, target) {
      seekOnSubscription(name);
      return engine.seek(name, target);
    },
    async subscriptionStats(name) {
      anyOnSubscription(name);
      return engine.subscriptionStats(name);
    },
    async createSnapshot(name, subscription, labels) {
      adminOnSnapshot(name);
      subscribeOnSubscription(subscription);
      return engine.createSnapshot(name, subscription, labels);
    },
    async getSnapshot(name) {
      anyOnSnapshot(name);
      return engine.getSnapshot(name);
    },
    async updateSnapshot(name, update) {
      adminOnSnapshot(name);
      return engine.updateSnapshot(name, update);
    },
    async listSnapshots(project, page) {
      guard.caller();
      return guard.filter(await engine.listSnapshots(project, page), named);
    },
    async listTopicSnapshots(topic, page) {
      anyOnTopic(topic);
      return guard.filter(await engine.listTopicSnapshots(topic, page), self);
    },
    async deleteSnapshot(name) {
      adminOnSnapshot(name);
      return engine.deleteSnapshot(name);
    },
    async getIamPolicy(resource) {
      guard.requireIam(parseIamResource(resource).kind, resource, "getIamPolicy");
      return engine.getIamPolicy(resource);
    },
    async setIamPolicy(resource, write) {
      guard.requireIam(parseIamResource(resource).kind, resource, "setIamPolicy");
      return engine.setIamPolicy(resource, write);
    },
    // Needs no permission (as in Pub/Sub): it answers with the caller's own.
    async testIamPermissions(resource, permissions) {
      const { kind } = parseIamResource(resource);
      return engine.testIamPermissions(resource, guard.effective(kind, resource, permissions));
    },
  };
}

/**
 * Schema calls behind grants on `schemas/{s}`: `admin` to create, commit, roll back and delete (a revision
 * or the schema), any grant to get it or list its revisions; List shows only granted schemas.
 * (The lookup by name, `get`, is where IAM policies on schemas can hook in.)
 */
function authorizeSchemas(schemas: Schemas, guard: Guard): Schemas {
  const admin = (name: string) => guard.require(Permission.admin, "schema", name);
  const any = (name: string) => guard.requireAny("schema", name);
  return {
    async create(name, definition) {
      admin(name);
      return schemas.create(name, definition);
    },
    async get(name) {
      any(name);
      return schemas.get(name);
    },
    async list(project, page) {
      guard.caller();
      return guard.filter(await schemas.list(project, page), named);
    },
    async listRevisions(name, page) {
      any(name);
      return schemas.listRevisions(name, page);
    },
    async commit(name, definition) {
      admin(name);
      return schemas.commit(name, definition);
    },
    async rollback(name, revisionId) {
      admin(name);
      return schemas.rollback(name, revisionId);
    },
    async deleteRevision(name, revisionId) {
      admin(name);
      return schemas.deleteRevision(name, revisionId);
    },
    async delete(name) {
      admin(name);
      return schemas.delete(name);
    },
  };
}

/**
 * Returns a hub whose `subscribe` needs `subscribe` on the topic (SSE, long poll, WebSocket, gRPC Events, chat),
 * from the token or, with `policies`, from the topic's IAM policy (`pubsub.topics.attachSubscription`).
 */
export function authorizeHub(
  hub: StreamHub,
  onDenied: DeniedListener,
  policies: Pick<Engine, "storedIamPolicy"> | null = null,
): StreamHub {
  const guard = createGuard(onDenied, policies, principalContext);
  return {
    async subscribe(options) {
      guard.require(Permission.subscribe, "topic", options.topic, "topic");
      return hub.subscribe(options);
    },
    stats: () => hub.stats(),
    close: () => hub.close(),
  };
}
