// Resource-level authorization, once for every transport: an Engine and a StreamHub that check currentPrincipal().
import { parseSnapshotName, parseSubscriptionName, parseTopicName } from "../broker/names.js";
import type { Page } from "../broker/types.js";
import type { Engine } from "../engines/engine.js";
import { Code, StreamgateError } from "../errors/index.js";
import type { StreamHub } from "../streams/index.js";
import { allows, allowsAny, Permission } from "./permissions.js";
import { currentPrincipal } from "./principal-context.js";
import { isTokenPrincipal, type TokenPrincipal } from "./token-principal.js";

type Kind = "topic" | "subscription" | "snapshot";

const parsers = { topic: parseTopicName, subscription: parseSubscriptionName, snapshot: parseSnapshotName };

/** Called on every denial (the auth-failures metric). */
export type DeniedListener = (transport: string) => void;

/** The checks the wrappers share; `onDenied` counts refusals. */
function createGuard(onDenied: DeniedListener) {
  const caller = (): TokenPrincipal => {
    const principal = currentPrincipal();
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
  return {
    caller,
    /** Throws INVALID_ARGUMENT for a malformed name, PERMISSION_DENIED when `permission` is not granted. */
    require(permission: Permission, kind: Kind, name: string, field = "name"): TokenPrincipal {
      const principal = caller();
      parsers[kind](name, field);
      if (!allows(principal.grants, permission, name)) throw deny(principal, permission, kind, name);
      return principal;
    },
    /** Get*: any grant on the resource is enough to see it. */
    requireAny(kind: Kind, name: string): TokenPrincipal {
      const principal = caller();
      parsers[kind](name, "name");
      if (!allowsAny(principal.grants, name)) throw deny(principal, "any", kind, name);
      return principal;
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

const self = (name: string) => name;
const named = (item: { name: string }) => item.name;

/**
 * Returns an Engine that checks the current principal's grants before each call: `publish` for Publish,
 * `subscribe` for pull/stream/ack/modack and topic reads, `admin` for everything that changes resources;
 * Get* needs any grant and List* shows only granted resources. Hand it to the transports only: background
 * work (push worker, hub readers) keeps the unwrapped engine and runs without a principal.
 */
export function authorizeEngine(engine: Engine, onDenied: DeniedListener): Engine {
  const guard = createGuard(onDenied);
  const { publish, subscribe, admin } = Permission;
  return {
    kind: engine.kind,
    async createTopic(init) {
      guard.require(admin, "topic", init.name);
      return engine.createTopic(init);
    },
    async getTopic(name) {
      guard.requireAny("topic", name);
      return engine.getTopic(name);
    },
    async updateTopic(name, update) {
      guard.require(admin, "topic", name);
      return engine.updateTopic(name, update);
    },
    async listTopics(project, page) {
      guard.caller();
      return guard.filter(await engine.listTopics(project, page), named);
    },
    async deleteTopic(name) {
      guard.require(admin, "topic", name);
      return engine.deleteTopic(name);
    },
    async publish(topic, messages) {
      guard.require(publish, "topic", topic, "topic");
      return engine.publish(topic, messages);
    },
    async readTopic(topic, fromOffset, limit) {
      guard.require(subscribe, "topic", topic, "topic");
      return engine.readTopic(topic, fromOffset, limit);
    },
    async offsetAtTime(topic, timeMs) {
      guard.require(subscribe, "topic", topic, "topic");
      return engine.offsetAtTime(topic, timeMs);
    },
    async topicStats(topic) {
      guard.requireAny("topic", topic);
      return engine.topicStats(topic);
    },
    watchTopic(topic, listener) {
      guard.require(subscribe, "topic", topic, "topic");
      return engine.watchTopic(topic, listener);
    },
    async createSubscription(init) {
      guard.require(admin, "subscription", init.name);
      // Reading a topic through a new subscription needs the right to read that topic.
      guard.require(subscribe, "topic", init.topic, "topic");
      if (init.deadLetterPolicy) {
        guard.require(publish, "topic", init.deadLetterPolicy.deadLetterTopic, "dead_letter_topic");
      }
      return engine.createSubscription(init);
    },
    async getSubscription(name) {
      guard.requireAny("subscription", name);
      return engine.getSubscription(name);
    },
    async updateSubscription(name, update) {
      guard.require(admin, "subscription", name);
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
      guard.requireAny("topic", topic);
      return guard.filter(await engine.listTopicSubscriptions(topic, page), self);
    },
    async deleteSubscription(name) {
      guard.require(admin, "subscription", name);
      return engine.deleteSubscription(name);
    },
    async detachSubscription(name) {
      guard.require(admin, "subscription", name);
      return engine.detachSubscription(name);
    },
    async pull(name, options) {
      guard.require(subscribe, "subscription", name, "subscription");
      return engine.pull(name, options);
    },
    openStream(name, options) {
      guard.require(subscribe, "subscription", name, "subscription");
      return engine.openStream(name, options);
    },
    async acknowledge(name, ackIds) {
      guard.require(subscribe, "subscription", name, "subscription");
      return engine.acknowledge(name, ackIds);
    },
    async modifyAckDeadline(name, ackIds, seconds) {
      guard.require(subscribe, "subscription", name, "subscription");
      return engine.modifyAckDeadline(name, ackIds, seconds);
    },
    async seek(name, target) {
      guard.require(admin, "subscription", name, "subscription");
      return engine.seek(name, target);
    },
    async subscriptionStats(name) {
      guard.requireAny("subscription", name);
      return engine.subscriptionStats(name);
    },
    async createSnapshot(name, subscription, labels) {
      guard.require(admin, "snapshot", name);
      guard.require(subscribe, "subscription", subscription, "subscription");
      return engine.createSnapshot(name, subscription, labels);
    },
    async getSnapshot(name) {
      guard.requireAny("snapshot", name);
      return engine.getSnapshot(name);
    },
    async updateSnapshot(name, update) {
      guard.require(admin, "snapshot", name);
      return engine.updateSnapshot(name, update);
    },
    async listSnapshots(project, page) {
      guard.caller();
      return guard.filter(await engine.listSnapshots(project, page), named);
    },
    async listTopicSnapshots(topic, page) {
      guard.requireAny("topic", topic);
      return guard.filter(await engine.listTopicSnapshots(topic, page), self);
    },
    async deleteSnapshot(name) {
      guard.require(admin, "snapshot", name);
      return engine.deleteSnapshot(name);
    },
    ready: () => engine.ready(),
    close: () => engine.close(),
  };
}

/** Returns a hub whose `subscribe` needs `subscribe` on the topic (SSE, long poll, WebSocket, gRPC Events, chat). */
export function authorizeHub(hub: StreamHub, onDenied: DeniedListener): StreamHub {
  const guard = createGuard(onDenied);
  return {
    async subscribe(options) {
      guard.require(Permission.subscribe, "topic", options.topic, "topic");
      return hub.subscribe(options);
    },
    stats: () => hub.stats(),
    close: () => hub.close(),
  };
}
