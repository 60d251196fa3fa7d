// The JetStream engine: topics as streams, subscriptions as durable pull consumers, metadata in a KV bucket.
import { randomBytes } from "node:crypto";
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import type { AckResult } from "../../broker/ack-result.js";
import {
  emptyIamPolicy,
  type IamPolicy,
  type IamPolicyWrite,
  type IamResourceKind,
  parseIamResource,
} from "../../broker/iam-policy.js";
import { validateMessages } from "../../broker/message-limits.js";
import { parseSnapshotName, parseSubscriptionName, parseTopicName, validateProjectId } from "../../broker/names.js";
import { validateLabels, validateRange } from "../../broker/resource-settings.js";
import { applySnapshotUpdate, snapshotExpireTimeMs } from "../../broker/snapshot-settings.js";
import {
  applySubscriptionUpdate,
  resolveSubscription,
  SUBSCRIPTION_LIMITS,
} from "../../broker/subscription-settings.js";
import { applyTopicUpdate, resolveTopic } from "../../broker/topic-settings.js";
import {
  DELETED_TOPIC,
  type MessageInput,
  type Page,
  type PageRequest,
  type PublishedRef,
  type ReceivedMessage,
  type SeekTarget,
  type Snapshot,
  type SnapshotName,
  type StoredMessage,
  type Subscription,
  type SubscriptionName,
  type Topic,
  type TopicName,
} from "../../broker/types.js";
import { Code, errors, StreamgateError } from "../../errors/index.js";
import { SchemaRegistry } from "../../schemas/index.js";
import type {
  DeliveryOptions,
  DeliveryStream,
  Engine,
  SubscriptionInit,
  SubscriptionStats,
  TopicInit,
  TopicStats,
  Update,
} from "../engine.js";
import { Catalog, type SnapshotRecord, type SubscriptionRecord, type TopicRecord } from "./catalog.js";
import { addConsumer, consumerAckState, consumerStats, deleteConsumer } from "./consumer-admin.js";
import { IamPolicyStore } from "./iam-policy-store.js";
import {
  type JetStreamEngineOptions,
  type ResolvedJetStreamEngineOptions,
  resolveJetStreamEngineOptions,
} from "./jetstream-engine-options.js";
import { JetStreamSchemaStorage } from "./schema-storage.js";
import { SubscriptionWorker, type WorkerHost } from "./subscription-worker.js";
import {
  messageAtOrAfter,
  Naming,
  publishToStream,
  readStream,
  sequenceAtTime,
  streamConfig,
  streamStats,
  watchStream,
} from "./topic-log.js";

/** The JetStream engine, with what it offers beyond {@link Engine}. */
export interface JetStreamEngine extends Engine {
  readonly kind: "jetstream";
  /** Deletes every stream, consumer and the catalog bucket of this engine's namespace (tests, teardown). */
  destroy(): Promise<void>;
  /**
   * The embedded engine's "enforce retention now", for callers that run it on either engine: runs
   * the subscription expiration sweep now (JetStream trims a stream past `max_bytes` on publish
   * and expires by age itself).
   */
  runMaintenance(): Promise<void>;
}

/** Pub/Sub refuses a snapshot that would expire within the hour. */
const MIN_SNAPSHOT_LIFETIME_MS = 3_600_000;

/**
 * Connects to NATS and opens the engine. Several streamgate instances with the same `natsUrl` and
 * namespace share every topic, subscription and snapshot; see docs/jetstream.md.
 * @throws StreamgateError INVALID_ARGUMENT for bad options, UNAVAILABLE (ENGINE_UNAVAILABLE) when
 *   NATS cannot be reached or has no JetStream.
 */
export async function createJetStreamEngine(options: JetStreamEngineOptions): Promise<JetStreamEngine> {
  const resolved = resolveJetStreamEngineOptions(options);
  let connection: NatsConnection;
  try {
    connection = await connect({
      servers: resolved.natsUrl.split(",").map((url) => url.trim()),
      timeout: resolved.connectTimeoutMs,
      maxReconnectAttempts: -1,
      // Fail over to another cluster member quickly; publishes in flight wait for the reconnect.
      reconnectTimeWait: 250,
      name: "streamgate",
      // Every ack and publish is a request; capturing a stack for each costs more than the round trip.
      noAsyncTraces: true,
    });
  } catch (error) {
    throw unavailable(`cannot connect to NATS at ${resolved.natsUrl}`, error);
  }
  try {
    const jsm = await jetstreamManager(connection);
    const catalog = await Catalog.open(connection, resolved.namespace, resolved.replicas);
    const iamPolicies = await IamPolicyStore.open(connection, resolved.namespace, resolved.replicas);
    return new NatsJetStreamEngine(connection, jsm, jetstream(connection), catalog, iamPolicies, resolved);
  } catch (error) {
    await connection.close();
    throw unavailable(`NATS at ${resolved.natsUrl} has no usable JetStream`, error);
  }
}

function unavailable(message: string, cause: unknown): StreamgateError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new StreamgateError(Code.UNAVAILABLE, `${message}: ${detail}`, { reason: "ENGINE_UNAVAILABLE", cause });
}

function randomId(): string {
  return randomBytes(8).readBigUInt64BE().toString(36).padStart(13, "0").slice(0, 13);
}

class NatsJetStreamEngine implements JetStreamEngine, WorkerHost {
  readonly kind = "jetstream" as const;
  readonly naming: Naming;
  readonly schemas: SchemaRegistry;
  private readonly workers = new Map<SubscriptionName, SubscriptionWorker>();
  private readonly watchers = new Map<string, { listeners: Set<(next: number) => void>; stop: () => void }>();
  private readonly lastNotified = new Map<string, number>();
  private closed = false;
  /** False while the client is reconnecting to NATS (for /readyz). */
  private connected = true;
  /** Subscriptions whose last-activity write is in flight. */
  private readonly activityWrites = new Set<SubscriptionName>();
  private readonly sweepTimer: NodeJS.Timeout;
  private sweeping = false;

  constructor(
    readonly connection: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly js: JetStreamClient,
    private readonly catalog: Catalog,
    private readonly iamPolicies: IamPolicyStore,
    private readonly options: ResolvedJetStreamEngineOptions,
  ) {
    this.naming = new Naming(options.namespace, options.replicas > 1);
    const maxPayloadBytes = () => connection.info?.max_payload ?? 1024 * 1024;
    this.schemas = new SchemaRegistry(new JetStreamSchemaStorage(catalog, maxPayloadBytes), options.now, (name) =>
      this.iamPolicies.remove(name),
    );
    void (async () => {
      for await (const status of connection.status()) {
        if (status.type === "disconnect") this.connected = false;
        else if (status.type === "reconnect") this.connected = true;
      }
    })();
    catalog.listener = (kind, name, record) => {
      if (kind !== "subscription") return;
      const worker = this.workers.get(name);
      if (worker === undefined) return;
      const next = record as SubscriptionRecord | null;
      if (next === null || next.id !== worker.subscriptionId) {
        this.workers.delete(name);
        worker.close(errors.notFound("subscription", name));
      } else {
        worker.configure(next, next.config.detached ? detachedError(name) : undefined);
      }
    };
    this.sweepTimer = setInterval(() => void this.expireSubscriptions(), options.expirationSweepIntervalMs);
    this.sweepTimer.unref();
  }

  /** The engine's clock (WorkerHost). */
  now(): number {
    return this.options.now();
  }

  // ---- topics

  async createTopic(init: TopicInit): Promise<Topic> {
    this.assertOpen();
    const topic = resolveTopic(init, Date.now());
    if (this.catalog.get("topic", topic.name) !== undefined) throw errors.alreadyExists("topic", topic.name);
    this.schemas.checkTopicSettings(topic.schemaSettings);
    const tag = randomId();
    await this.jsm.streams.add(
      streamConfig(this.naming, tag, topic, this.options.defaultRetentionMs, this.options.replicas),
    );
    try {
      await this.catalog.create("topic", topic.name, { config: topic, tag });
    } catch (error) {
      await this.jsm.streams.delete(this.naming.stream(tag)).catch(() => false);
      throw error;
    }
    return structuredClone(topic);
  }

  async getTopic(name: TopicName): Promise<Topic> {
    this.assertOpen();
    return structuredClone(this.requireTopic(name, "name").config);
  }

  async updateTopic(name: TopicName, update: Update<Topic>): Promise<Topic> {
    this.assertOpen();
    const record = this.requireTopic(name, "name");
    const next = applyTopicUpdate(record.config, update);
    if (next.schemaSettings !== null && next.schemaSettings !== record.config.schemaSettings) {
      this.schemas.checkTopicSettings(next.schemaSettings);
    }
    const config = streamConfig(this.naming, record.tag, next, this.options.defaultRetentionMs, this.options.replicas);
    await this.jsm.streams.update(config.name, { max_age: config.max_age, max_bytes: config.max_bytes });
    await this.catalog.put("topic", name, { ...record, config: next });
    return structuredClone(next);
  }

  async listTopics(project: string, page: PageRequest): Promise<Page<Topic>> {
    this.assertOpen();
    validateProjectId(project);
    return this.catalog.page(
      "topic",
      `projects/${project}/topics/`,
      page,
      () => true,
      (record) => structuredClone(record.config),
    );
  }

  async deleteTopic(name: TopicName): Promise<void> {
    this.assertOpen();
    const record = this.requireTopic(name, "name");
    await this.catalog.remove("topic", name);
    for (const subscription of this.catalog.all("subscription")) {
      if (subscription.topicTag !== record.tag && subscription.config.topic !== name) continue;
      const config = { ...subscription.config, topic: DELETED_TOPIC };
      await this.catalog.put("subscription", config.name, { ...subscription, config, topicTag: null });
    }
    for (const snapshot of this.catalog.all("snapshot")) {
      if (snapshot.topicTag === record.tag) await this.catalog.remove("snapshot", snapshot.config.name);
    }
    await this.jsm.streams.delete(this.naming.stream(record.tag)).catch(() => false);
  }

  async publish(topic: TopicName, messages: MessageInput[]): Promise<PublishedRef[]> {
    this.assertOpen();
    const record = this.requireTopic(topic);
    validateMessages(messages);
    const stored = this.schemas.prepareMessages(record.config.schemaSettings, messages);
    let refs: PublishedRef[];
    try {
      refs = await publishToStream(this.js, this.naming.subject(record.tag), record.tag, stored);
    } catch (error) {
      if (this.catalog.get("topic", topic)?.tag !== record.tag) throw errors.notFound("topic", topic);
      throw unavailable(`publish to ${topic} failed`, error);
    }
    this.notify(record.tag, Math.max(...refs.map((ref) => ref.offset)) + 1);
    return refs;
  }

  async readTopic(
    topic: TopicName,
    fromOffset: number,
    limit: { maxMessages: number; maxBytes: number },
  ): Promise<StoredMessage[]> {
    this.assertOpen();
    const record = this.requireTopic(topic);
    validateRange(fromOffset, 0, Number.MAX_SAFE_INTEGER, "from_offset");
    validateRange(limit.maxMessages, 1, Number.MAX_SAFE_INTEGER, "max_messages");
    validateRange(limit.maxBytes, 1, Number.MAX_SAFE_INTEGER, "max_bytes");
    const stats = await streamStats(this.jsm, this.naming, record.tag);
    if (fromOffset >= stats.nextOffset) return [];
    return readStream(
      this.jsm,
      this.naming,
      record.tag,
      Math.max(fromOffset, stats.firstOffset),
      limit,
      stats.nextOffset,
    );
  }

  async offsetAtTime(topic: TopicName, timeMs: number): Promise<number> {
    this.assertOpen();
    const record = this.requireTopic(topic);
    if (typeof timeMs !== "number" || Number.isNaN(timeMs))
      throw errors.invalidArgument("time", "must be a number of ms");
    return sequenceAtTime(this.jsm, this.naming, record.tag, timeMs);
  }

  async topicStats(topic: TopicName): Promise<TopicStats> {
    this.assertOpen();
    return streamStats(this.jsm, this.naming, this.requireTopic(topic).tag);
  }

  watchTopic(topic: TopicName, listener: (nextOffset: number) => void): () => void {
    this.assertOpen();
    const { tag } = this.requireTopic(topic);
    let watcher = this.watchers.get(tag);
    if (watcher === undefined) {
      const stop = watchStream(this.connection, this.jsm, this.naming, tag, (next) => this.notify(tag, next));
      watcher = { listeners: new Set(), stop };
      this.watchers.set(tag, watcher);
    }
    const entry = watcher;
    entry.listeners.add(listener);
    return () => {
      entry.listeners.delete(listener);
      if (entry.listeners.size === 0 && this.watchers.get(tag) === entry) {
        entry.stop();
        this.watchers.delete(tag);
      }
    };
  }

  private notify(tag: string, nextOffset: number): void {
    if ((this.lastNotified.get(tag) ?? 0) >= nextOffset) return;
    this.lastNotified.set(tag, nextOffset);
    for (const listener of [...(this.watchers.get(tag)?.listeners ?? [])]) {
      try {
        listener(nextOffset);
      } catch (error) {
        process.emitWarning(`streamgate: a watchTopic listener threw: ${String(error)}`);
      }
    }
  }

  // ---- subscriptions

  async createSubscription(init: SubscriptionInit): Promise<Subscription> {
    this.assertOpen();
    const subscription = resolveSubscription(init, this.now());
    if (this.catalog.get("subscription", subscription.name) !== undefined) {
      throw errors.alreadyExists("subscription", subscription.name);
    }
    const topic = this.requireTopic(subscription.topic, "topic");
    this.requireDeadLetterTopic(subscription);
    const id = randomId();
    // Pub/Sub: a new subscription receives only messages published after its creation.
    const { nextOffset } = await streamStats(this.jsm, this.naming, topic.tag);
    const record: SubscriptionRecord = { config: subscription, id, topicTag: topic.tag, generation: 1, skip: [] };
    await addConsumer(this.jsm, this.naming, record, nextOffset);
    try {
      await this.catalog.create("subscription", subscription.name, record);
    } catch (error) {
      await deleteConsumer(this.jsm, this.naming, record);
      throw error;
    }
    return structuredClone(subscription);
  }

  async getSubscription(name: SubscriptionName): Promise<Subscription> {
    this.assertOpen();
    return structuredClone(this.requireSubscription(name, "name").config);
  }

  async updateSubscription(name: SubscriptionName, update: Update<Subscription>): Promise<Subscription> {
    this.assertOpen();
    const record = this.requireSubscription(name, "name");
    const next = applySubscriptionUpdate(record.config, update);
    this.requireDeadLetterTopic(next);
    if (next.ackDeadlineSeconds !== record.config.ackDeadlineSeconds && record.topicTag !== null) {
      await this.jsm.consumers
        .update(this.naming.stream(record.topicTag), this.naming.consumer(record.id, record.generation), {
          ack_wait: next.ackDeadlineSeconds * 1_000_000_000,
        })
        .catch(() => undefined);
    }
    await this.catalog.put("subscription", name, { ...record, config: next });
    return structuredClone(next);
  }

  async listSubscriptions(project: string, page: PageRequest): Promise<Page<Subscription>> {
    this.assertOpen();
    validateProjectId(project);
    return this.catalog.page(
      "subscription",
      `projects/${project}/subscriptions/`,
      page,
      () => true,
      (record) => structuredClone(record.config),
    );
  }

  async listProjects(): Promise<string[]> {
    this.assertOpen();
    const names = [...this.catalog.all("topic"), ...this.catalog.all("subscription")].map(
      (record) => record.config.name.split("/")[1] ?? "",
    );
    return [...new Set(names)].filter((project) => project !== "").sort();
  }

  async listTopicSubscriptions(topic: TopicName, page: PageRequest): Promise<Page<SubscriptionName>> {
    this.assertOpen();
    const { tag } = this.requireTopic(topic);
    return this.catalog.page(
      "subscription",
      "projects/",
      page,
      (record) => record.topicTag === tag || (record.config.topic === topic && !record.config.detached),
      (record) => record.config.name,
    );
  }

  async deleteSubscription(name: SubscriptionName): Promise<void> {
    this.assertOpen();
    const record = this.requireSubscription(name, "name");
    await this.catalog.remove("subscription", name);
    await deleteConsumer(this.jsm, this.naming, record);
  }

  async detachSubscription(name: SubscriptionName): Promise<void> {
    this.assertOpen();
    const record = this.requireSubscription(name, "name");
    if (record.config.detached) return;
    await this.catalog.put("subscription", name, {
      ...record,
      config: { ...record.config, detached: true },
      topicTag: null,
    });
    await deleteConsumer(this.jsm, this.naming, record);
  }

  async pull(
    name: SubscriptionName,
    options: { maxMessages: number; waitMs: number; signal: AbortSignal },
  ): Promise<ReceivedMessage[]> {
    this.assertOpen();
    const worker = this.attachedWorker(name);
    validateRange(options.maxMessages, 1, Number.MAX_SAFE_INTEGER, "max_messages");
    validateRange(options.waitMs, 0, Number.MAX_SAFE_INTEGER, "wait_ms");
    this.touch(name);
    return worker.pull(options);
  }

  openStream(name: SubscriptionName, options: DeliveryOptions): DeliveryStream {
    this.assertOpen();
    const stream = this.attachedWorker(name).openStream(options);
    this.touch(name);
    return stream;
  }

  async acknowledge(name: SubscriptionName, ackIds: string[]): Promise<AckResult> {
    this.assertOpen();
    const result = await this.worker(name).acknowledge(ackIds);
    this.touch(name);
    return result;
  }

  async modifyAckDeadline(name: SubscriptionName, ackIds: string[], seconds: number): Promise<AckResult> {
    this.assertOpen();
    const worker = this.worker(name);
    validateRange(seconds, 0, SUBSCRIPTION_LIMITS.ackDeadlineSeconds.max, "ack_deadline_seconds", " s");
    const result = await worker.modifyAckDeadline(ackIds, seconds);
    this.touch(name);
    return result;
  }

  /**
   * Seeks by recreating the consumer (a new generation) at the first sequence to deliver, with the
   * sequences after it that stay acked in the record's skip list.
   */
  async seek(name: SubscriptionName, target: SeekTarget): Promise<void> {
    this.assertOpen();
    const worker = this.attachedWorker(name);
    const record = this.requireSubscription(name);
    if (record.topicTag === null) {
      throw errors.failedPrecondition("TOPIC_DELETED", `cannot seek subscription ${name}: its topic was deleted`);
    }
    let start: number;
    let skip: number[];
    if ("snapshot" in target) {
      const snapshot = this.requireSnapshot(target.snapshot);
      if (snapshot.topicTag !== record.topicTag) {
        throw errors.failedPrecondition(
          "SNAPSHOT_TOPIC_MISMATCH",
          `snapshot ${target.snapshot} is of topic ${snapshot.config.topic}, but subscription ${name} is of topic ${record.config.topic}`,
        );
      }
      start = snapshot.start;
      skip = snapshot.skip;
    } else {
      if (typeof target.timeMs !== "number" || Number.isNaN(target.timeMs)) {
        throw errors.invalidArgument("time", "must be a timestamp");
      }
      start = await sequenceAtTime(this.jsm, this.naming, record.topicTag, target.timeMs);
      const topic = this.catalog.get("topic", record.config.topic);
      const replayAcked = record.config.retainAckedMessages || topic?.config.messageRetentionDurationMs != null;
      if (replayAcked) {
        skip = [];
      } else {
        const state = await consumerAckState(this.jsm, this.naming, record, worker);
        start = Math.max(start, state.start);
        skip = state.skip.filter((sequence) => sequence >= start);
      }
    }
    const next: SubscriptionRecord = { ...record, generation: record.generation + 1, skip };
    await addConsumer(this.jsm, this.naming, next, start);
    await this.catalog.put("subscription", name, next);
    await deleteConsumer(this.jsm, this.naming, record);
  }

  async subscriptionStats(name: SubscriptionName): Promise<SubscriptionStats> {
    this.assertOpen();
    const record = this.requireSubscription(name);
    return consumerStats(this.jsm, this.naming, record, this.worker(name));
  }

  // ---- snapshots

  async createSnapshot(
    name: SnapshotName,
    subscription: SubscriptionName,
    labels: Record<string, string>,
  ): Promise<Snapshot> {
    this.assertOpen();
    parseSnapshotName(name);
    const checkedLabels = validateLabels(labels ?? {});
    const record = this.requireSubscription(subscription, "subscription");
    if (record.topicTag === null) {
      throw errors.failedPrecondition("TOPIC_DELETED", `the topic of subscription ${subscription} was deleted`);
    }
    if (this.findSnapshot(name) !== undefined) throw errors.alreadyExists("snapshot", name);
    const { start, skip } = await consumerAckState(this.jsm, this.naming, record, this.worker(subscription));
    const oldest = await messageAtOrAfter(this.jsm, this.naming, record.topicTag, start);
    const now = Date.now();
    const expireTimeMs = snapshotExpireTimeMs(oldest?.publishTimeMs ?? null, now);
    if (expireTimeMs - now < MIN_SNAPSHOT_LIFETIME_MS) {
      throw errors.failedPrecondition(
        "SNAPSHOT_TOO_OLD",
        `subscription ${subscription}'s oldest unacked message is too old: the snapshot would expire within an hour`,
      );
    }
    const snapshot: Snapshot = { name, topic: record.config.topic, expireTimeMs, labels: checkedLabels };
    await this.catalog.create("snapshot", name, { config: snapshot, topicTag: record.topicTag, start, skip });
    return structuredClone(snapshot);
  }

  async getSnapshot(name: SnapshotName): Promise<Snapshot> {
    this.assertOpen();
    return structuredClone(this.requireSnapshot(name, "name").config);
  }

  async updateSnapshot(name: SnapshotName, update: Update<Snapshot>): Promise<Snapshot> {
    this.assertOpen();
    const record = this.requireSnapshot(name, "name");
    const next = applySnapshotUpdate(record.config, update, Date.now());
    await this.catalog.put("snapshot", name, { ...record, config: next });
    return structuredClone(next);
  }

  async listSnapshots(project: string, page: PageRequest): Promise<Page<Snapshot>> {
    this.assertOpen();
    validateProjectId(project);
    const now = Date.now();
    return this.catalog.page(
      "snapshot",
      `projects/${project}/snapshots/`,
      page,
      (record) => record.config.expireTimeMs > now,
      (record) => structuredClone(record.config),
    );
  }

  async listTopicSnapshots(topic: TopicName, page: PageRequest): Promise<Page<SnapshotName>> {
    this.assertOpen();
    const { tag } = this.requireTopic(topic);
    const now = Date.now();
    return this.catalog.page(
      "snapshot",
      "projects/",
      page,
      (record) => record.topicTag === tag && record.config.expireTimeMs > now,
      (record) => record.config.name,
    );
  }

  async deleteSnapshot(name: SnapshotName): Promise<void> {
    this.assertOpen();
    this.requireSnapshot(name, "name");
    await this.catalog.remove("snapshot", name);
    await this.iamPolicies.remove(name);
  }

  // ---- IAM policies

  /** The current instance of each kind of IAM resource (NOT_FOUND when it does not exist). */
  private readonly iamInstances: Record<IamResourceKind, (name: string, field: string) => string> = {
    topics: (name, field) => this.requireTopic(name, field).tag,
    subscriptions: (name, field) => this.requireSubscription(name, field).id,
    snapshots: (name, field) => {
      // Snapshots have no id; a recreated one may match this, so deleteSnapshot also removes its policy.
      const record = this.requireSnapshot(name, field);
      return `${record.topicTag}:${record.start}`;
    },
    // Schemas have no id either: deleting a schema removes its policy (the registry's onDeleted).
    schemas: (name) => {
      this.schemas.requireRevisions(name);
      return "schema";
    },
  };

  async getIamPolicy(resource: string): Promise<IamPolicy> {
    const instance = this.iamInstance(resource);
    return this.iamPolicies.get(resource, instance) ?? emptyIamPolicy();
  }

  async setIamPolicy(resource: string, write: IamPolicyWrite): Promise<IamPolicy> {
    return this.iamPolicies.set(resource, this.iamInstance(resource), write);
  }

  async testIamPermissions(resource: string, permissions: string[]): Promise<string[]> {
    this.iamInstance(resource);
    return permissions;
  }

  storedIamPolicy(resource: string): IamPolicy | null {
    try {
      return this.iamPolicies.get(resource, this.iamInstance(resource));
    } catch {
      return null;
    }
  }

  private iamInstance(resource: string): string {
    this.assertOpen();
    const { kind } = parseIamResource(resource);
    return this.iamInstances[kind](resource, "resource");
  }

  // ---- lifecycle

  async ready(): Promise<boolean> {
    return !this.closed && this.connected && !this.connection.isClosed();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweepTimer);
    for (const worker of this.workers.values()) worker.close();
    this.workers.clear();
    for (const watcher of this.watchers.values()) watcher.stop();
    this.watchers.clear();
    this.catalog.close();
    this.iamPolicies.close();
    await this.connection.close();
  }

  async runMaintenance(): Promise<void> {
    this.assertOpen();
    await this.expireSubscriptions();
  }

  async destroy(): Promise<void> {
    this.assertOpen();
    const prefix = `${this.options.namespace}-t-`;
    for await (const name of this.jsm.streams.names()) {
      if (name.startsWith(prefix)) await this.jsm.streams.delete(name).catch(() => false);
    }
    await this.jsm.streams.delete(`KV_${this.options.namespace}-catalog`).catch(() => false);
    await this.jsm.streams.delete(`KV_${this.options.namespace}-iam`).catch(() => false);
  }

  /** Publishes a dead-lettered copy (WorkerHost). */
  async deadLetter(topic: TopicName, message: MessageInput): Promise<void> {
    const record = this.requireTopic(topic, "dead_letter_policy.dead_letter_topic");
    const refs = await publishToStream(this.js, this.naming.subject(record.tag), record.tag, [message]);
    this.notify(record.tag, refs[0]!.offset + 1);
  }

  // ---- expiration

  /**
   * Records activity on a subscription: writes `lastActiveMs` to its catalog record (compare and
   * set, so a concurrent update or seek wins) when the stored value is older than the activity
   * interval. The stored value is shared, so busy instances together write about once per interval.
   */
  private touch(name: SubscriptionName): void {
    const record = this.catalog.get("subscription", name);
    if (record === undefined || this.activityWrites.has(name) || this.closed) return;
    const now = this.now();
    if (now - (record.lastActiveMs ?? record.config.createTimeMs) < this.options.activityWriteIntervalMs) return;
    this.activityWrites.add(name);
    void this.catalog
      .putIfUnchanged("subscription", name, { ...record, lastActiveMs: now })
      .catch(() => false)
      .finally(() => this.activityWrites.delete(name));
  }

  /**
   * Deletes subscriptions idle past their expiration ttl (the sweep every instance runs). A
   * subscription with a stream or waiting pull on this instance counts as active. The delete is
   * compare-and-set on the record this instance saw, so a touch or an update on another instance
   * in between keeps the subscription, and concurrent sweeps delete it once.
   */
  private async expireSubscriptions(): Promise<void> {
    if (this.sweeping || this.closed || !this.connected) return;
    this.sweeping = true;
    try {
      const now = this.now();
      for (const record of this.catalog.all("subscription")) {
        if (this.closed) return;
        const name = record.config.name;
        if (this.workers.get(name)?.hasConsumers) {
          this.touch(name);
          continue;
        }
        const ttl = record.config.expirationTtlMs;
        if (ttl === null || now - (record.lastActiveMs ?? record.config.createTimeMs) < ttl) continue;
        if (await this.catalog.removeIfUnchanged("subscription", name).catch(() => false)) {
          await deleteConsumer(this.jsm, this.naming, record);
        }
      }
    } finally {
      this.sweeping = false;
    }
  }

  // ---- helpers

  private worker(name: SubscriptionName): SubscriptionWorker {
    const record = this.requireSubscription(name);
    let worker = this.workers.get(name);
    if (worker === undefined || worker.subscriptionId !== record.id) {
      worker?.close();
      worker = new SubscriptionWorker(this, record);
      this.workers.set(name, worker);
    }
    return worker;
  }

  private attachedWorker(name: SubscriptionName): SubscriptionWorker {
    const record = this.requireSubscription(name);
    if (record.config.detached) throw detachedError(name);
    return this.worker(name);
  }

  private requireTopic(name: TopicName, field = "topic"): TopicRecord {
    const record = this.catalog.get("topic", name);
    if (record !== undefined) return record;
    parseTopicName(name, field);
    throw errors.notFound("topic", name);
  }

  private requireSubscription(name: SubscriptionName, field = "subscription"): SubscriptionRecord {
    const record = this.catalog.get("subscription", name);
    if (record !== undefined) return record;
    parseSubscriptionName(name, field);
    throw errors.notFound("subscription", name);
  }

  private findSnapshot(name: SnapshotName): SnapshotRecord | undefined {
    const record = this.catalog.get("snapshot", name);
    if (record === undefined || record.config.expireTimeMs > Date.now()) return record;
    void this.catalog.remove("snapshot", name).catch(() => undefined);
    return undefined;
  }

  private requireSnapshot(name: SnapshotName, field = "snapshot"): SnapshotRecord {
    parseSnapshotName(name, field);
    const record = this.findSnapshot(name);
    if (record === undefined) throw errors.notFound("snapshot", name);
    return record;
  }

  private requireDeadLetterTopic(subscription: Subscription): void {
    const policy = subscription.deadLetterPolicy;
    if (policy === null) return;
    parseTopicName(policy.deadLetterTopic, "dead_letter_policy.dead_letter_topic");
    this.requireTopic(policy.deadLetterTopic, "dead_letter_policy.dead_letter_topic");
  }

  private assertOpen(): void {
    if (this.closed) throw errors.unavailable("ENGINE_CLOSED", "the jetstream engine is closed");
  }
}

function detachedError(name: SubscriptionName) {
  return errors.failedPrecondition("SUBSCRIPTION_DETACHED", `subscription ${name} is detached`);
}
