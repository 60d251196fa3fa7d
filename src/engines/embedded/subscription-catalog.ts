// Subscriptions of the embedded engine: CRUD, their dispatchers, acks, seeks and stats.
import type { AckResult } from "../../broker/ack-result.js";
import type { DispatchLog, SubscriptionAckState } from "../../broker/dispatch-log.js";
import { parseSubscriptionName, parseTopicName, validateProjectId } from "../../broker/names.js";
import { decodePageToken, prefixUpperBound, resolvePageSize } from "../../broker/page-token.js";
import { validateRange } from "../../broker/resource-settings.js";
import { SubscriptionDispatcher } from "../../broker/subscription-dispatcher.js";
import {
  applySubscriptionUpdate,
  resolveSubscription,
  SUBSCRIPTION_LIMITS,
} from "../../broker/subscription-settings.js";
import {
  DELETED_TOPIC,
  type Page,
  type PageRequest,
  type ReceivedMessage,
  type SeekTarget,
  type Subscription,
  type SubscriptionName,
  type TopicName,
} from "../../broker/types.js";
import { errors } from "../../errors/index.js";
import type { DeliveryOptions, DeliveryStream, SubscriptionInit, SubscriptionStats, Update } from "../engine.js";
import type { SnapshotRow } from "./catalog-store.js";
import type { EmbeddedContext } from "./embedded-context.js";
import { pageOf, type TopicCatalog, type TopicState } from "./topic-catalog.js";

/** A subscription in memory: config, topic (null once deleted) and dispatcher. */
export interface SubscriptionState {
  readonly id: number;
  config: Subscription;
  topic: TopicState | null;
  readonly dispatcher: SubscriptionDispatcher;
  /** lastActiveMs as last written to the database (activity is persisted by the sweeper, not per pull). */
  persistedActiveMs: number;
}

/** Owns every subscription of the engine and its dispatcher. */
export class SubscriptionCatalog {
  private readonly byName = new Map<string, SubscriptionState>();

  constructor(
    private readonly context: EmbeddedContext,
    private readonly topics: TopicCatalog,
  ) {
    const { catalog } = context;
    for (const row of catalog.loadSubscriptions()) {
      const topic = row.topicId === null ? null : (topics.byGeneration(row.topicId) ?? null);
      const state = this.add(row.id, row.config, topic, { floor: row.ackFloor, acked: catalog.loadAcks(row.id) });
      state.dispatcher.lastActiveMs = row.lastActiveMs;
      state.persistedActiveMs = row.lastActiveMs;
    }
  }

  all(): SubscriptionState[] {
    return [...this.byName.values()];
  }

  /**
   * The subscription named `name`.
   * @throws StreamgateError INVALID_ARGUMENT (malformed, naming `field`) or NOT_FOUND.
   */
  require(name: SubscriptionName, field = "subscription"): SubscriptionState {
    const state = this.byName.get(name);
    if (state !== undefined) return state;
    parseSubscriptionName(name, field);
    throw errors.notFound("subscription", name);
  }

  create(init: SubscriptionInit): Subscription {
    const subscription = resolveSubscription(init, this.context.now());
    if (this.byName.has(subscription.name)) throw errors.alreadyExists("subscription", subscription.name);
    const topic = this.topics.require(subscription.topic, "topic");
    this.requireDeadLetterTopic(subscription);
    // Pub/Sub: a new subscription receives only messages published after its creation.
    const floor = topic.nextOffset;
    const id = this.context.catalog.insertSubscription(subscription, topic.id, floor, this.context.now());
    const state = this.add(id, subscription, topic, { floor, acked: [] });
    state.persistedActiveMs = state.dispatcher.lastActiveMs;
    return structuredClone(subscription);
  }

  get(name: SubscriptionName): Subscription {
    return structuredClone(this.require(name, "name").config);
  }

  update(name: SubscriptionName, update: Update<Subscription>): Subscription {
    const state = this.require(name, "name");
    const next = applySubscriptionUpdate(state.config, update);
    this.requireDeadLetterTopic(next);
    this.context.catalog.updateSubscription(state.id, next);
    state.config = next;
    state.dispatcher.configure(next);
    return structuredClone(next);
  }

  list(project: string, page: PageRequest): Page<Subscription> {
    validateProjectId(project);
    const prefix = `projects/${project}/subscriptions/`;
    const limit = resolvePageSize(page.pageSize);
    const after = decodePageToken(page.pageToken, prefix);
    const range = { after, low: prefix, high: prefixUpperBound(prefix), limit: limit + 1 };
    return pageOf(this.context.catalog.pageSubscriptions(range), limit, (subscription) => subscription.name);
  }

  listForTopic(topicName: TopicName, page: PageRequest): Page<SubscriptionName> {
    const topic = this.topics.require(topicName);
    const limit = resolvePageSize(page.pageSize);
    const after = decodePageToken(page.pageToken, "projects/");
    const names = this.context.catalog.pageTopicSubscriptions(topic.id, after, limit + 1);
    return pageOf(names, limit, (name) => name);
  }

  delete(name: SubscriptionName): void {
    const state = this.require(name, "name");
    this.context.catalog.deleteSubscription(state.id);
    this.byName.delete(name);
    state.topic?.dispatchers.delete(state.dispatcher);
    state.dispatcher.disconnect(errors.notFound("subscription", name));
    state.dispatcher.close();
  }

  /** Detaches: the subscription stays but gets no more messages, and its pending ones are dropped. */
  detach(name: SubscriptionName): void {
    const state = this.require(name, "name");
    if (state.config.detached) return;
    const next = { ...state.config, detached: true };
    this.context.catalog.updateSubscription(state.id, next);
    state.config = next;
    state.topic?.dispatchers.delete(state.dispatcher);
    state.dispatcher.disconnect(detachedError(name));
  }

  /** The topic is being deleted: its subscriptions stay, on {@link DELETED_TOPIC}. Call inside the transaction. */
  orphan(topic: TopicState): SubscriptionState[] {
    const orphans = this.all().filter((state) => state.topic === topic);
    for (const state of orphans) {
      this.context.catalog.orphanSubscription(state.id, { ...state.config, topic: DELETED_TOPIC });
    }
    return orphans;
  }

  /** After the topic deletion committed: the orphans stop receiving. */
  disconnectOrphans(orphans: SubscriptionState[]): void {
    for (const state of orphans) {
      state.config = { ...state.config, topic: DELETED_TOPIC };
      state.topic = null;
      state.dispatcher.disconnect();
    }
  }

  pull(
    name: SubscriptionName,
    options: { maxMessages: number; waitMs: number; signal: AbortSignal },
  ): Promise<ReceivedMessage[]> {
    const state = this.requireAttached(name);
    validateRange(options.maxMessages, 1, Number.MAX_SAFE_INTEGER, "max_messages");
    validateRange(options.waitMs, 0, Number.MAX_SAFE_INTEGER, "wait_ms");
    return state.dispatcher.pull(options);
  }

  openStream(name: SubscriptionName, options: DeliveryOptions): DeliveryStream {
    return this.requireAttached(name).dispatcher.openStream(options);
  }

  acknowledge(name: SubscriptionName, ackIds: string[]): AckResult {
    return this.require(name).dispatcher.acknowledge(ackIds);
  }

  modifyAckDeadline(name: SubscriptionName, ackIds: string[], seconds: number): AckResult {
    const state = this.require(name);
    validateRange(seconds, 0, SUBSCRIPTION_LIMITS.ackDeadlineSeconds.max, "ack_deadline_seconds", " s");
    return state.dispatcher.modifyAckDeadline(ackIds, seconds);
  }

  /**
   * Seeks to a time (acks what came before, unacks what came after, replaying acked messages only
   * with retain_acked_messages or topic retention) or to a snapshot (restores its ack state).
   */
  seek(name: SubscriptionName, target: SeekTarget, snapshot: (name: string) => SnapshotRow): void {
    const state = this.requireAttached(name);
    const topic = state.topic;
    if (topic === null) {
      throw errors.failedPrecondition("TOPIC_DELETED", `cannot seek subscription ${name}: its topic was deleted`);
    }
    const { catalog, messages } = this.context;
    const ackState = this.context.messages.transaction((): SubscriptionAckState => {
      if ("snapshot" in target) {
        const row = snapshot(target.snapshot);
        if (row.topicId !== topic.id) {
          throw errors.failedPrecondition(
            "SNAPSHOT_TOPIC_MISMATCH",
            `snapshot ${target.snapshot} is of topic ${row.config.topic}, but subscription ${name} is of topic ${topic.config.name}`,
          );
        }
        catalog.replaceAcks(state.id, row.ackFloor, row.id);
        return { floor: row.ackFloor, acked: catalog.loadAcks(state.id) };
      }
      if (typeof target.timeMs !== "number" || Number.isNaN(target.timeMs)) {
        throw errors.invalidArgument("time", "must be a timestamp");
      }
      const offset = messages.offsetAtTime(topic, target.timeMs);
      const replayAcked = state.config.retainAckedMessages || topic.config.messageRetentionDurationMs !== null;
      if (replayAcked) {
        catalog.replaceAcks(state.id, offset, null);
        return { floor: offset, acked: [] };
      }
      const floor = state.dispatcher.ackFloor;
      if (offset > floor) catalog.saveAcks(state.id, { floor: offset, previousFloor: floor, acked: [] });
      return { floor: Math.max(offset, floor), acked: catalog.loadAcks(state.id) };
    });
    state.dispatcher.reset(ackState);
  }

  stats(name: SubscriptionName): SubscriptionStats {
    const stats = this.require(name).dispatcher.stats();
    const oldest = stats.oldestUnackedPublishTimeMs;
    return {
      backlog: stats.backlog,
      oldestUnackedAgeMs: oldest === null ? 0 : Math.max(0, this.context.now() - oldest),
      deadLettered: stats.deadLettered,
      outstanding: stats.outstanding,
    };
  }

  /** Writes activity times that changed since the last call (one row each). */
  persistActivity(): void {
    for (const state of this.byName.values()) {
      if (state.dispatcher.hasConsumers) state.dispatcher.touch();
      const { lastActiveMs } = state.dispatcher;
      if (lastActiveMs === state.persistedActiveMs) continue;
      this.context.catalog.touchSubscription(state.id, lastActiveMs);
      state.persistedActiveMs = lastActiveMs;
    }
  }

  /** Stops every dispatcher (engine close). */
  closeAll(): void {
    for (const state of this.byName.values()) state.dispatcher.close();
  }

  private add(
    id: number,
    config: Subscription,
    topic: TopicState | null,
    ackState: SubscriptionAckState,
  ): SubscriptionState {
    const attached = topic !== null && !config.detached;
    const dispatcher = new SubscriptionDispatcher({
      subscriptionId: id,
      subscription: config,
      ackState,
      topicEnd: topic?.nextOffset ?? ackState.floor,
      log: attached ? this.dispatchLog(id, topic) : null,
      now: this.context.now,
    });
    const state: SubscriptionState = { id, config, topic, dispatcher, persistedActiveMs: 0 };
    this.byName.set(config.name, state);
    if (attached) topic.dispatchers.add(dispatcher);
    return state;
  }

  private dispatchLog(subscriptionId: number, topic: TopicState): DispatchLog {
    const { catalog, messages } = this.context;
    return {
      read: (fromOffset, maxMessages, maxBytes) =>
        topic.recent.read(fromOffset, maxMessages, maxBytes) ??
        messages.read(topic.id, fromOffset, maxMessages, maxBytes),
      count: (fromOffset, accept) => messages.count(topic, fromOffset, accept),
      saveAcks: (change) => messages.transaction(() => catalog.saveAcks(subscriptionId, change)),
      deadLetter: (topicName, copies, change) => {
        const target = this.topics.require(topicName, "dead_letter_policy.dead_letter_topic");
        this.topics.appendNow([{ topic: target, messages: copies }], () => catalog.saveAcks(subscriptionId, change));
      },
    };
  }

  /** A subscription that is not detached (one whose topic was deleted is attached to nothing and stays idle). */
  private requireAttached(name: SubscriptionName): SubscriptionState {
    const state = this.require(name);
    if (state.config.detached) throw detachedError(name);
    return state;
  }

  private requireDeadLetterTopic(subscription: Subscription): void {
    const policy = subscription.deadLetterPolicy;
    if (policy === null) return;
    parseTopicName(policy.deadLetterTopic, "dead_letter_policy.dead_letter_topic");
    this.topics.require(policy.deadLetterTopic, "dead_letter_policy.dead_letter_topic");
  }
}

function detachedError(name: SubscriptionName) {
  return errors.failedPrecondition("SUBSCRIPTION_DETACHED", `subscription ${name} is detached`);
}
