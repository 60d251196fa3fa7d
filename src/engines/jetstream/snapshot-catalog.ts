// Snapshots of the JetStream engine: catalog records holding where a subscription's consumer restarts and which later sequences were acked.
import type { JetStreamManager } from "@nats-io/jetstream";
import { parseSnapshotName, validateProjectId } from "../../broker/names.js";
import { validateLabels } from "../../broker/resource-settings.js";
import { applySnapshotUpdate, snapshotExpireTimeMs } from "../../broker/snapshot-settings.js";
import type { Page, PageRequest, Snapshot, SnapshotName, SubscriptionName } from "../../broker/types.js";
import { errors } from "../../errors/index.js";
import type { Update } from "../engine.js";
import type { Catalog, SnapshotRecord, SubscriptionRecord } from "./catalog.js";
import { consumerAckState } from "./consumer-admin.js";
import { messageAtOrAfter, type Naming } from "./topic-log.js";

/** Pub/Sub refuses a snapshot that would expire within the hour. */
const MIN_SNAPSHOT_LIFETIME_MS = 3_600_000;

/** What the snapshot catalog needs of its engine. */
export interface SnapshotHost {
  readonly catalog: Catalog;
  readonly jsm: JetStreamManager;
  readonly naming: Naming;
  requireSubscription(name: SubscriptionName, field?: string): SubscriptionRecord;
  /** Every sequence of the subscription acked through any live instance (this one included). */
  ackedEverywhere(name: SubscriptionName, record: SubscriptionRecord): Promise<number[]>;
}

/** Create, read, update, list and delete snapshots; expired ones read as missing and are removed. */
export class SnapshotCatalog {
  constructor(private readonly host: SnapshotHost) {}

  async create(name: SnapshotName, subscription: SubscriptionName, labels: Record<string, string>): Promise<Snapshot> {
    parseSnapshotName(name);
    const checkedLabels = validateLabels(labels ?? {});
    const record = this.host.requireSubscription(subscription, "subscription");
    if (record.topicTag === null) {
      throw errors.failedPrecondition("TOPIC_DELETED", `the topic of subscription ${subscription} was deleted`);
    }
    if (this.find(name) !== undefined) throw errors.alreadyExists("snapshot", name);
    const acked = await this.host.ackedEverywhere(subscription, record);
    const { start, skip } = await consumerAckState(this.host.jsm, this.host.naming, record, acked);
    const oldest = await messageAtOrAfter(this.host.jsm, this.host.naming, record.topicTag, start);
    const now = Date.now();
    const expireTimeMs = snapshotExpireTimeMs(oldest?.publishTimeMs ?? null, now);
    if (expireTimeMs - now < MIN_SNAPSHOT_LIFETIME_MS) {
      throw errors.failedPrecondition(
        "SNAPSHOT_TOO_OLD",
        `subscription ${subscription}'s oldest unacked message is too old: the snapshot would expire within an hour`,
      );
    }
    const snapshot: Snapshot = { name, topic: record.config.topic, expireTimeMs, labels: checkedLabels };
    await this.host.catalog.create("snapshot", name, { config: snapshot, topicTag: record.topicTag, start, skip });
    return structuredClone(snapshot);
  }

  get(name: SnapshotName): Snapshot {
    return structuredClone(this.require(name, "name").config);
  }

  async update(name: SnapshotName, update: Update<Snapshot>): Promise<Snapshot> {
    const record = this.require(name, "name");
    const next = applySnapshotUpdate(record.config, update, Date.now());
    await this.host.catalog.put("snapshot", name, { ...record, config: next });
    return structuredClone(next);
  }

  list(project: string, page: PageRequest): Page<Snapshot> {
    validateProjectId(project);
    const now = Date.now();
    return this.host.catalog.page(
      "snapshot",
      `projects/${project}/snapshots/`,
      page,
      (record) => record.config.expireTimeMs > now,
      (record) => structuredClone(record.config),
    );
  }

  /** Names of the unexpired snapshots of the topic with stream tag `tag`. */
  listOfTopic(tag: string, page: PageRequest): Page<SnapshotName> {
    const now = Date.now();
    return this.host.catalog.page(
      "snapshot",
      "projects/",
      page,
      (record) => record.topicTag === tag && record.config.expireTimeMs > now,
      (record) => record.config.name,
    );
  }

  async delete(name: SnapshotName): Promise<void> {
    this.require(name, "name");
    await this.host.catalog.remove("snapshot", name);
  }

  /** The snapshot's record, or undefined when missing or expired (an expired one is removed). */
  find(name: SnapshotName): SnapshotRecord | undefined {
    const record = this.host.catalog.get("snapshot", name);
    if (record === undefined || record.config.expireTimeMs > Date.now()) return record;
    void this.host.catalog.remove("snapshot", name).catch(() => undefined);
    return undefined;
  }

  /** @throws StreamgateError INVALID_ARGUMENT for a malformed name, NOT_FOUND when missing or expired. */
  require(name: SnapshotName, field = "snapshot"): SnapshotRecord {
    parseSnapshotName(name, field);
    const record = this.find(name);
    if (record === undefined) throw errors.notFound("snapshot", name);
    return record;
  }
}
