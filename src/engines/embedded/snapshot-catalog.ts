// Snapshots of the embedded engine: a subscription's ack state captured for a later seek.
import { parseSnapshotName, validateProjectId } from "../../broker/names.js";
import { decodePageToken, prefixUpperBound, resolvePageSize } from "../../broker/page-token.js";
import { validateLabels } from "../../broker/resource-settings.js";
import { applySnapshotUpdate, snapshotExpireTimeMs } from "../../broker/snapshot-settings.js";
import type { Page, PageRequest, Snapshot, SnapshotName, SubscriptionName, TopicName } from "../../broker/types.js";
import { errors } from "../../errors/index.js";
import type { Update } from "../engine.js";
import type { SnapshotRow } from "./catalog-store.js";
import type { EmbeddedContext } from "./embedded-context.js";
import type { SubscriptionCatalog } from "./subscription-catalog.js";
import { pageOf, type TopicCatalog, type TopicState } from "./topic-catalog.js";

/** Pub/Sub refuses a snapshot that would expire within the hour. */
const MIN_SNAPSHOT_LIFETIME_MS = 3_600_000;

/** Owns every snapshot; snapshots live only in SQLite (no in-memory state). */
export class SnapshotCatalog {
  constructor(
    private readonly context: EmbeddedContext,
    private readonly topics: TopicCatalog,
    private readonly subscriptions: SubscriptionCatalog,
  ) {}

  create(name: SnapshotName, subscriptionName: SubscriptionName, labels: Record<string, string>): Snapshot {
    parseSnapshotName(name);
    const checkedLabels = validateLabels(labels ?? {});
    const subscription = this.subscriptions.require(subscriptionName, "subscription");
    const topic = subscription.topic;
    if (topic === null) {
      throw errors.failedPrecondition("TOPIC_DELETED", `the topic of subscription ${subscriptionName} was deleted`);
    }
    if (this.find(name) !== undefined) throw errors.alreadyExists("snapshot", name);
    const now = this.context.now();
    const { dispatcher } = subscription;
    const expireTimeMs = snapshotExpireTimeMs(dispatcher.stats().oldestUnackedPublishTimeMs, now);
    if (expireTimeMs - now < MIN_SNAPSHOT_LIFETIME_MS) {
      throw errors.failedPrecondition(
        "SNAPSHOT_TOO_OLD",
        `subscription ${subscriptionName}'s oldest unacked message is too old: the snapshot would expire within an hour`,
      );
    }
    const snapshot: Snapshot = { name, topic: topic.config.name, expireTimeMs, labels: checkedLabels };
    dispatcher.persistCurrentFloor();
    this.context.messages.transaction(() => {
      this.context.catalog.insertSnapshot(snapshot, topic.id, subscription.id, dispatcher.ackFloor);
    });
    return structuredClone(snapshot);
  }

  get(name: SnapshotName): Snapshot {
    return this.require(name, "name").config;
  }

  /**
   * The stored snapshot named `name`; an expired one not yet swept counts as missing.
   * @throws StreamgateError INVALID_ARGUMENT (malformed, naming `field`) or NOT_FOUND.
   */
  require(name: SnapshotName, field = "snapshot"): SnapshotRow {
    parseSnapshotName(name, field);
    const row = this.find(name);
    if (row === undefined) throw errors.notFound("snapshot", name);
    return row;
  }

  update(name: SnapshotName, update: Update<Snapshot>): Snapshot {
    const row = this.require(name, "name");
    const next = applySnapshotUpdate(row.config, update, this.context.now());
    this.context.catalog.updateSnapshot(row.id, next);
    return next;
  }

  list(project: string, page: PageRequest): Page<Snapshot> {
    validateProjectId(project);
    this.expire();
    const prefix = `projects/${project}/snapshots/`;
    const limit = resolvePageSize(page.pageSize);
    const after = decodePageToken(page.pageToken, prefix);
    const range = { after, low: prefix, high: prefixUpperBound(prefix), limit: limit + 1 };
    return pageOf(this.context.catalog.pageSnapshots(range), limit, (snapshot) => snapshot.name);
  }

  listForTopic(topicName: TopicName, page: PageRequest): Page<SnapshotName> {
    const topic = this.topics.require(topicName);
    this.expire();
    const limit = resolvePageSize(page.pageSize);
    const after = decodePageToken(page.pageToken, "projects/");
    return pageOf(this.context.catalog.pageTopicSnapshots(topic.id, after, limit + 1), limit, (name) => name);
  }

  delete(name: SnapshotName): void {
    this.context.messages.transaction(() => this.context.catalog.deleteSnapshot(this.require(name, "name").id));
  }

  /** The topic is being deleted: its snapshots go too. Call inside the deleting transaction. */
  deleteOfTopic(topic: TopicState): void {
    this.context.catalog.deleteSnapshotsOfTopic(topic.id);
  }

  /** Deletes expired snapshots; returns how many. */
  expire(): number {
    const { catalog, messages } = this.context;
    const names = catalog.expiredSnapshots(this.context.now());
    for (const name of names) {
      messages.transaction(() => {
        const row = catalog.getSnapshot(name);
        if (row !== undefined) catalog.deleteSnapshot(row.id);
      });
    }
    return names.length;
  }

  private find(name: SnapshotName): SnapshotRow | undefined {
    const row = this.context.catalog.getSnapshot(name);
    if (row === undefined) return undefined;
    if (row.config.expireTimeMs <= this.context.now()) {
      this.context.messages.transaction(() => this.context.catalog.deleteSnapshot(row.id));
      return undefined;
    }
    return row;
  }
}
