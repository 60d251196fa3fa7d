// The embedded engine: SQLite (WAL) storage plus in-process dispatchers, behind the Engine interface.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type Database from "better-sqlite3";
import type { AckResult } from "../../broker/ack-result.js";
import { clonePlain } from "../../broker/clone-plain.js";
import {
  emptyIamPolicy,
  type IamPolicy,
  type IamPolicyWrite,
  type IamResourceKind,
  parseIamResource,
} from "../../broker/iam-policy.js";
import type {
  MessageInput,
  Page,
  PageRequest,
  PublishedRef,
  ReceivedMessage,
  SeekTarget,
  Snapshot,
  SnapshotName,
  StoredMessage,
  Subscription,
  SubscriptionName,
  Topic,
  TopicName,
} from "../../broker/types.js";
import { errors } from "../../errors/index.js";
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
import { CatalogStore } from "./catalog-store.js";
import { type DataDirLock, lockDataDir } from "./data-dir-lock.js";
import type { EmbeddedContext } from "./embedded-context.js";
import { type EmbeddedEngineOptions, resolveEmbeddedEngineOptions } from "./embedded-engine-options.js";
import { IamPolicyTable } from "./iam-policy-table.js";
import { checkDatabaseIntegrity } from "./integrity-check.js";
import { MaintenanceSweeper } from "./maintenance-sweeper.js";
import { MessageStore } from "./message-store.js";
import { SchemaCatalog } from "./schema-catalog.js";
import { SnapshotCatalog } from "./snapshot-catalog.js";
import { DATABASE_FILE_NAME, openDatabase } from "./sqlite-schema.js";
import { SubscriptionCatalog } from "./subscription-catalog.js";
import { TopicCatalog } from "./topic-catalog.js";
import { WalCheckpointer } from "./wal-checkpointer.js";

/** The embedded engine, with what it offers beyond {@link Engine}. */
export interface EmbeddedEngine extends Engine {
  readonly kind: "embedded";
  /** `PRAGMA integrity_check` plus the engine's invariants (contiguous logs, exact counters, acks above floors); [] when sound. */
  checkIntegrity(): Promise<string[]>;
  /** Runs the background sweep (retention, purging deleted topics, expirations) now. */
  runMaintenance(): Promise<void>;
}

/**
 * Opens (or creates) the embedded engine in `options.dataDir`: SQLite in WAL mode, one process
 * per directory. Every acknowledged publish survives a process crash; see
 * {@link EmbeddedEngineOptions.syncEveryCommit} for OS crashes.
 * @throws StreamgateError INVALID_ARGUMENT for bad options, FAILED_PRECONDITION when the directory
 *   is locked by another process or holds an incompatible database.
 */
export async function createEmbeddedEngine(options: EmbeddedEngineOptions): Promise<EmbeddedEngine> {
  const resolved = resolveEmbeddedEngineOptions(options);
  mkdirSync(resolved.dataDir, { recursive: true });
  const lock = lockDataDir(resolved.dataDir);
  let db: Database.Database | undefined;
  let checkpointer: WalCheckpointer | undefined;
  try {
    db = openDatabase(resolved.dataDir, resolved.syncEveryCommit);
    const synchronous = resolved.syncEveryCommit ? "FULL" : "NORMAL";
    checkpointer = new WalCheckpointer(db, join(resolved.dataDir, DATABASE_FILE_NAME), synchronous);
    return new SqliteEngine(db, checkpointer, lock, {
      catalog: new CatalogStore(db),
      messages: new MessageStore(db),
      options: resolved,
      now: resolved.now,
    });
  } catch (error) {
    await checkpointer?.stop();
    db?.close();
    lock.release();
    throw error;
  }
}

class SqliteEngine implements EmbeddedEngine {
  readonly kind = "embedded" as const;
  readonly schemas: SchemaRegistry;
  private readonly topics: TopicCatalog;
  private readonly subscriptions: SubscriptionCatalog;
  private readonly snapshots: SnapshotCatalog;
  private readonly sweeper: MaintenanceSweeper;
  private readonly iamPolicies: IamPolicyTable;
  /** How each kind of IAM resource is found (NOT_FOUND when it does not exist). */
  private readonly iamResources: Record<IamResourceKind, (name: string) => unknown>;
  private closed = false;

  constructor(
    private readonly db: Database.Database,
    private readonly checkpointer: WalCheckpointer,
    private readonly lock: DataDirLock,
    private readonly context: EmbeddedContext,
  ) {
    this.topics = new TopicCatalog(context);
    this.schemas = new SchemaRegistry(new SchemaCatalog(db, context, this.topics), context.now);
    this.subscriptions = new SubscriptionCatalog(context, this.topics);
    this.snapshots = new SnapshotCatalog(context, this.topics, this.subscriptions);
    this.sweeper = new MaintenanceSweeper(context, this.topics, this.subscriptions, this.snapshots);
    this.sweeper.start();
    this.iamPolicies = new IamPolicyTable(db);
    this.iamResources = {
      topics: (name) => this.topics.require(name, "resource"),
      subscriptions: (name) => this.subscriptions.require(name, "resource"),
      snapshots: (name) => this.snapshots.require(name, "resource"),
      schemas: (name) => this.schemas.requireRevisions(name),
    };
  }

  async createTopic(init: TopicInit): Promise<Topic> {
    this.assertOpen();
    this.schemas.checkTopicSettings(init.schemaSettings ?? null);
    return this.topics.create(init);
  }

  async getTopic(name: TopicName): Promise<Topic> {
    this.assertOpen();
    return clonePlain(this.topics.require(name, "name").config);
  }

  async updateTopic(name: TopicName, update: Update<Topic>): Promise<Topic> {
    this.assertOpen();
    return this.topics.update(name, update, (next, current) => {
      if (next.schemaSettings !== current.schemaSettings) this.schemas.checkTopicSettings(next.schemaSettings);
    });
  }

  async listTopics(project: string, page: PageRequest): Promise<Page<Topic>> {
    this.assertOpen();
    return this.topics.list(project, page);
  }

  async deleteTopic(name: TopicName): Promise<void> {
    this.assertOpen();
    const topic = this.topics.require(name, "name");
    const orphans = this.context.messages.transaction(() => {
      this.topics.remove(topic);
      this.snapshots.deleteOfTopic(topic);
      return this.subscriptions.orphan(topic);
    });
    this.topics.forget(topic);
    this.subscriptions.disconnectOrphans(orphans);
  }

  publish(topic: TopicName, messages: MessageInput[]): Promise<PublishedRef[]> {
    try {
      this.assertOpen();
      return this.topics.publish(topic, messages, (config, input) =>
        this.schemas.prepareMessages(config.schemaSettings, input),
      );
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async readTopic(
    topic: TopicName,
    fromOffset: number,
    limit: { maxMessages: number; maxBytes: number },
  ): Promise<StoredMessage[]> {
    this.assertOpen();
    return this.topics.read(topic, fromOffset, limit);
  }

  async offsetAtTime(topic: TopicName, timeMs: number): Promise<number> {
    this.assertOpen();
    return this.topics.offsetAtTime(topic, timeMs);
  }

  async topicStats(topic: TopicName): Promise<TopicStats> {
    this.assertOpen();
    return this.topics.stats(topic);
  }

  watchTopic(topic: TopicName, listener: (nextOffset: number) => void): () => void {
    this.assertOpen();
    return this.topics.watch(topic, listener);
  }

  async createSubscription(init: SubscriptionInit): Promise<Subscription> {
    this.assertOpen();
    return this.subscriptions.create(init);
  }

  async getSubscription(name: SubscriptionName): Promise<Subscription> {
    this.assertOpen();
    return this.subscriptions.get(name);
  }

  async updateSubscription(name: SubscriptionName, update: Update<Subscription>): Promise<Subscription> {
    this.assertOpen();
    return this.subscriptions.update(name, update);
  }

  async listProjects(): Promise<string[]> {
    this.assertOpen();
    return this.context.catalog.projects();
  }

  async listSubscriptions(project: string, page: PageRequest): Promise<Page<Subscription>> {
    this.assertOpen();
    return this.subscriptions.list(project, page);
  }

  async listTopicSubscriptions(topic: TopicName, page: PageRequest): Promise<Page<SubscriptionName>> {
    this.assertOpen();
    return this.subscriptions.listForTopic(topic, page);
  }

  async deleteSubscription(name: SubscriptionName): Promise<void> {
    this.assertOpen();
    this.subscriptions.delete(name);
  }

  async detachSubscription(name: SubscriptionName): Promise<void> {
    this.assertOpen();
    this.subscriptions.detach(name);
  }

  async pull(
    name: SubscriptionName,
    options: { maxMessages: number; waitMs: number; signal: AbortSignal },
  ): Promise<ReceivedMessage[]> {
    this.assertOpen();
    return this.subscriptions.pull(name, options);
  }

  openStream(name: SubscriptionName, options: DeliveryOptions): DeliveryStream {
    this.assertOpen();
    return this.subscriptions.openStream(name, options);
  }

  async acknowledge(name: SubscriptionName, ackIds: string[]): Promise<AckResult> {
    this.assertOpen();
    return this.subscriptions.acknowledge(name, ackIds);
  }

  async modifyAckDeadline(name: SubscriptionName, ackIds: string[], seconds: number): Promise<AckResult> {
    this.assertOpen();
    return this.subscriptions.modifyAckDeadline(name, ackIds, seconds);
  }

  async seek(name: SubscriptionName, target: SeekTarget): Promise<void> {
    this.assertOpen();
    this.subscriptions.seek(name, target, (snapshot) => this.snapshots.require(snapshot));
  }

  async subscriptionStats(name: SubscriptionName): Promise<SubscriptionStats> {
    this.assertOpen();
    return this.subscriptions.stats(name);
  }

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
    return this.snapshots.listForTopic(topic, page);
  }

  async deleteSnapshot(name: SnapshotName): Promise<void> {
    this.assertOpen();
    this.snapshots.delete(name);
  }

  async getIamPolicy(resource: string): Promise<IamPolicy> {
    this.requireIamResource(resource);
    return this.iamPolicies.get(resource) ?? emptyIamPolicy();
  }

  async setIamPolicy(resource: string, write: IamPolicyWrite): Promise<IamPolicy> {
    this.requireIamResource(resource);
    return this.iamPolicies.set(resource, write);
  }

  async testIamPermissions(resource: string, permissions: string[]): Promise<string[]> {
    this.requireIamResource(resource);
    return permissions;
  }

  storedIamPolicy(resource: string): IamPolicy | null {
    return this.closed ? null : this.iamPolicies.get(resource);
  }

  private requireIamResource(resource: string): void {
    this.assertOpen();
    const { kind } = parseIamResource(resource);
    this.iamResources[kind](resource);
  }

  async ready(): Promise<boolean> {
    return !this.closed && this.db.open;
  }

  async checkIntegrity(): Promise<string[]> {
    this.assertOpen();
    return checkDatabaseIntegrity(this.db);
  }

  async runMaintenance(): Promise<void> {
    this.assertOpen();
    await this.sweeper.run();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.sweeper.stop();
    this.topics.flush();
    this.subscriptions.persistActivity();
    this.subscriptions.closeAll();
    await this.checkpointer.stop();
    this.db.close();
    this.lock.release();
  }

  private assertOpen(): void {
    if (this.closed) throw errors.unavailable("ENGINE_CLOSED", "the embedded engine is closed");
  }
}
