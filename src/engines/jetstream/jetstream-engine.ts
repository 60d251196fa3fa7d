// The JetStream engine: topics as streams, subscriptions as durable pull consumers, metadata in a KV bucket.
import { randomBytes } from "node:crypto";
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
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
import { parseSubscriptionName, parseTopicName, validateProjectId } from "../../broker/names.js";
import { validateRange } from "../../broker/resource-settings.js";
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
import { AckRecords } from "./ack-records.js";
import { Catalog, type SubscriptionRecord, type TopicRecord } from "./catalog.js";
import { addConsumer, consumerAckState, consumerStats, deleteConsumer } from "./consumer-admin.js";
import { DeliveryBook } from "./delivery-book.js";
import { IamPolicyStore } from "./iam-policy-store.js";
import { gatherWorkerStates, stateSubject } from "./instance-state.js";
import {
  type JetStreamEngineOptions,
  type ResolvedJetStreamEngineOptions,
  resolveJetStreamEngineOptions,
} from "./jetstream-engine-options.js";
import { OrderingLeases } from "./ordering-lease.js";
import { JetStreamSchemaStorage } from "./schema-storage.js";
import { checkAccount, checkMaxPayload, noJetStream, storageExhausted } from "./server-check.js";
import { SnapshotCatalog } from "./snapshot-catalog.js";
import { StreamPublisher } from "./stream-publisher.js";
import { SubscriptionExpiry } from "./subscription-expiry.js";
import { SubscriptionWorker, type WorkerHost } from "./subscription-worker.js";
import { Naming, readStream, sequenceAtTime, streamConfig, streamStats } from "./topic-log.js";
import { TopicWatchers } from "./topic-watchers.js";

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
    checkMaxPayload(connection, resolved.natsUrl, resolved.maxMessageBytes);
  } catch (error) {
    await connection.close();
    throw error;
  }
  let jsm: JetStreamManager;
  try {
    jsm = await jetstreamManager(connection);
    await checkAccount(jsm, resolved.natsUrl);
  } catch (error) {
    await connection.close();
    throw error instanceof StreamgateError ? error : noJetStream(resolved.natsUrl, error);
  }
  try {
    const catalog = await Catalog.open(connection, resolved.namespace, resolved.replicas);
    const book = await DeliveryBook.open(
      connection,
      resolved.namespace,
      resolved.replicas,
      resolved.deliveryRecordTtlMs,
    );
    const leases = await OrderingLeases.open(
      connection,
      resolved.namespace,
      resolved.replicas,
      resolved.orderingLeaseMs,
      randomId(),
    );
    const iamPolicies = await IamPolicyStore.open(connection, resolved.namespace, resolved.replicas);
    const records = await AckRecords.open(connection, jsm, resolved.namespace, resolved.replicas);
    return new NatsJetStreamEngine(
      connection,
      jsm,
      new StreamPublisher(connection),
      catalog,
      iamPolicies,
      book,
      records,
      leases,
      resolved,
    );
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
  private readonly watchers: TopicWatchers;
  private closed = false;
  /** False while the client is reconnecting to NATS (for /readyz). */
  private connected = true;
  private readonly sweepTimer: NodeJS.Timeout;
  readonly maxTracked: number;
  private readonly snapshots: SnapshotCatalog;
  private readonly expiry: SubscriptionExpiry;

  constructor(
    readonly connection: NatsConnection,
    readonly jsm: JetStreamManager,
    private readonly publisher: StreamPublisher,
    readonly catalog: Catalog,
    private readonly iamPolicies: IamPolicyStore,
    readonly book: DeliveryBook,
    readonly records: AckRecords,
    readonly leases: OrderingLeases,
    private readonly options: ResolvedJetStreamEngineOptions,
  ) {
    this.naming = new Naming(options.namespace, options.replicas > 1);
    this.maxTracked = options.maxTrackedMessages;
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
    this.watchers = new TopicWatchers(connection, jsm, this.naming);
    this.snapshots = new SnapshotCatalog(this);
    this.expiry = new SubscriptionExpiry({
      catalog,
      activityWriteIntervalMs: options.activityWriteIntervalMs,
      now: () => this.now(),
      isClosed: () => this.closed,
      isConnected: () => this.connected,
      inUse: (name) => this.workers.get(name)?.hasConsumers === true,
      deleteConsumer: (record) => deleteConsumer(this.jsm, this.naming, record),
    });
    this.sweepTimer = setInterval(() => void this.expiry.sweep(), options.expirationSweepIntervalMs);
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
      refs = await this.publisher.publish(this.naming.subject(record.tag), record.tag, stored);
    } catch (error) {
      if (this.catalog.get("topic", topic)?.tag !== record.tag) throw errors.notFound("topic", topic);
      throw storageExhausted(topic, error) ?? unavailable(`publish to ${topic} failed`, error);
    }
    this.watchers.notify(record.tag, Math.max(...refs.map((ref) => ref.offset)) + 1);
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
    return this.watchers.watch(this.requireTopic(topic).tag, listener);
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
    await this.book.forget(record.id);
    await this.records.forget(record.id).catch(() => undefined);
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
    await this.records.forget(record.id).catch(() => undefined);
  }

  async pull(
    name: SubscriptionName,
    options: { maxMessages: number; waitMs: number; signal: AbortSignal },
  ): Promise<ReceivedMessage[]> {
    this.assertOpen();
    const worker = this.attachedWorker(name);
    validateRange(options.maxMessages, 1, Number.MAX_SAFE_INTEGER, "max_messages");
    validateRange(options.waitMs, 0, Number.MAX_SAFE_INTEGER, "wait_ms");
    this.expiry.touch(name);
    return worker.pull(options);
  }

  openStream(name: SubscriptionName, options: DeliveryOptions): DeliveryStream {
    this.assertOpen();
    const stream = this.attachedWorker(name).openStream(options);
    this.expiry.touch(name);
    return stream;
  }

  async acknowledge(name: SubscriptionName, ackIds: string[]): Promise<AckResult> {
    this.assertOpen();
    const result = await this.worker(name).acknowledge(ackIds);
    this.expiry.touch(name);
    return result;
  }

  async modifyAckDeadline(name: SubscriptionName, ackIds: string[], seconds: number): Promise<AckResult> {
    this.assertOpen();
    const worker = this.worker(name);
    validateRange(seconds, 0, SUBSCRIPTION_LIMITS.ackDeadlineSeconds.max, "ack_deadline_seconds", " s");
    const result = await worker.modifyAckDeadline(ackIds, seconds);
    this.expiry.touch(name);
    return result;
  }

  /**
   * Seeks by recreating the consumer (a new generation) at the first sequence to deliver, with the
   * sequences after it that stay acked in the record's skip list.
   */
  async seek(name: SubscriptionName, target: SeekTarget): Promise<void> {
    this.assertOpen();
    this.attachedWorker(name); // refuses a detached subscription; this instance answers for its own acks too
    const record = this.requireSubscription(name);
    if (record.topicTag === null) {
      throw errors.failedPrecondition("TOPIC_DELETED", `cannot seek subscription ${name}: its topic was deleted`);
    }
    let start: number;
    let skip: number[];
    if ("snapshot" in target) {
      const snapshot = this.snapshots.require(target.snapshot);
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
        const state = await consumerAckState(this.jsm, this.naming, record, await this.ackedEverywhere(name, record));
        start = Math.max(start, state.start);
        skip = state.skip.filter((sequence) => sequence >= start);
      }
    }
    const next: SubscriptionRecord = { ...record, generation: record.generation + 1, skip };
    await addConsumer(this.jsm, this.naming, next, start);
    await this.catalog.put("subscription", name, next);
    await deleteConsumer(this.jsm, this.naming, record);
    // The new generation's skip list holds what stays acked: the old generation's records are done.
    await this.records.forget(record.id, record.generation).catch(() => undefined);
  }

  async subscriptionStats(name: SubscriptionName): Promise<SubscriptionStats> {
    this.assertOpen();
    const record = this.requireSubscription(name);
    const worker = this.worker(name);
    await worker.settle();
    const [states, deadLettered] = await Promise.all([
      gatherWorkerStates(this.connection, stateSubject(this.naming.namespace, record.id), record.generation, false),
      this.book.deadLettered(record.id).catch(() => 0),
    ]);
    const unleased = states.reduce((sum, state) => sum + state.unleased, 0);
    return consumerStats(this.jsm, this.naming, record, { unleased, deadLettered });
  }

  /**
   * Every sequence of the current generation acked through any instance, live or not: the ack
   * records (every ack call's, stored before it was answered), plus what live instances still hold
   * unrecorded (each settles its acks first) and acks claimed in the lease book (SnapshotHost).
   * @throws StreamgateError UNAVAILABLE when the ack records cannot be read (a seek would replay acked messages).
   */
  async ackedEverywhere(name: SubscriptionName, record: SubscriptionRecord): Promise<number[]> {
    this.worker(name); // this instance answers for its own acks too
    const subject = stateSubject(this.naming.namespace, record.id);
    const consumer = this.naming.consumer(record.id, record.generation);
    const [states, inBook, recorded] = await Promise.all([
      gatherWorkerStates(this.connection, subject, record.generation, true),
      this.book.ackedSequences(consumer).catch(() => [] as number[]),
      this.records.read(record.id, record.generation).catch((error: unknown) => {
        throw unavailable(`cannot read the ack records of subscription ${name}`, error);
      }),
    ]);
    return [...states.flatMap((state) => state.acked), ...inBook, ...recorded];
  }

  // ---- snapshots (snapshot-catalog.ts)

  async createSnapshot(
    name: SnapshotName,
    subscription: SubscriptionName,
    labels: Record<string, string>,
  ): Promise<Snapshot> {
    this.assertOpen();
    return this.snapshots.create(name, subscription, labels);
  }

  async getSnapshot(name: SnapshotName): Promise<Snapshot> {
    this.assertOpen();
    return this.snapshots.get(name);
  }

  async updateSnapshot(name: SnapshotName, update: Update<Snapshot>): Promise<Snapshot> {
    this.assertOpen();
    return this.snapshots.update(name, update);
  }

  async listSnapshots(project: string, page: PageRequest): Promise<Page<Snapshot>> {
    this.assertOpen();
    return this.snapshots.list(project, page);
  }

  async listTopicSnapshots(topic: TopicName, page: PageRequest): Promise<Page<SnapshotName>> {
    this.assertOpen();
    return this.snapshots.listOfTopic(this.requireTopic(topic).tag, page);
  }

  async deleteSnapshot(name: SnapshotName): Promise<void> {
    this.assertOpen();
    await this.snapshots.delete(name);
    await this.iamPolicies.remove(name);
  }

  // ---- IAM policies

  /** The current instance of each kind of IAM resource (NOT_FOUND when it does not exist). */
  private readonly iamInstances: Record<IamResourceKind, (name: string, field: string) => string> = {
    topics: (name, field) => this.requireTopic(name, field).tag,
    subscriptions: (name, field) => this.requireSubscription(name, field).id,
    snapshots: (name, field) => {
      // Snapshots have no id; a recreated one may match this, so deleteSnapshot also removes its policy.
      const record = this.snapshots.require(name, field);
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
    const released = Promise.all([...this.workers.values()].map((worker) => worker.released));
    this.workers.clear();
    this.watchers.stopAll();
    this.catalog.close();
    this.iamPolicies.close();
    this.records.close();
    // Hand ordered subscriptions over at once rather than after the lease (bounded: NATS may be gone).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([released, new Promise((resolve) => (timer = setTimeout(resolve, 1_000)))]);
    clearTimeout(timer);
    await this.connection.close();
  }

  async runMaintenance(): Promise<void> {
    this.assertOpen();
    await this.expiry.sweep();
  }

  async destroy(): Promise<void> {
    this.assertOpen();
    const prefix = `${this.options.namespace}-t-`;
    for await (const name of this.jsm.streams.names()) {
      if (name.startsWith(prefix)) await this.jsm.streams.delete(name).catch(() => false);
    }
    await this.jsm.streams.delete(`KV_${this.options.namespace}-catalog`).catch(() => false);
    await this.jsm.streams.delete(`KV_${this.options.namespace}-iam`).catch(() => false);
    await this.jsm.streams.delete(AckRecords.stream(this.options.namespace)).catch(() => false);
    for (const bucket of [
      ...DeliveryBook.buckets(this.options.namespace),
      OrderingLeases.bucket(this.options.namespace),
    ]) {
      await this.jsm.streams.delete(bucket).catch(() => false);
    }
  }

  /** Publishes a dead-lettered copy (WorkerHost). */
  async deadLetter(topic: TopicName, message: MessageInput): Promise<void> {
    const record = this.requireTopic(topic, "dead_letter_policy.dead_letter_topic");
    const refs = await this.publisher.publish(this.naming.subject(record.tag), record.tag, [message]);
    this.watchers.notify(record.tag, refs[0]!.offset + 1);
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

  /** SnapshotHost. */
  requireSubscription(name: SubscriptionName, field = "subscription"): SubscriptionRecord {
    const record = this.catalog.get("subscription", name);
    if (record !== undefined) return record;
    parseSubscriptionName(name, field);
    throw errors.notFound("subscription", name);
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
