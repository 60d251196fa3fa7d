// Topics, subscriptions, snapshots and ack state in SQLite: prepared statements and row mapping.
import type Database from "better-sqlite3";
import type { AckChange } from "../../broker/dispatch-log.js";
import type { Snapshot, Subscription, Topic } from "../../broker/types.js";

/** A stored topic with its log counters. */
export interface TopicRow {
  id: number;
  config: Topic;
  firstOffset: number;
  nextOffset: number;
  bytes: number;
  lastPublishTimeMs: number;
}

/** A stored subscription; `topicId` is null once its topic was deleted. */
export interface SubscriptionRow {
  id: number;
  topicId: number | null;
  config: Subscription;
  ackFloor: number;
  lastActiveMs: number;
}

/** A stored snapshot: the ack state of a subscription at one moment, on one topic generation. */
export interface SnapshotRow {
  id: number;
  topicId: number;
  config: Snapshot;
  ackFloor: number;
}

/** One page of names after `after` in [`low`, `high`). */
export interface NameRange {
  after: string;
  low: string;
  high: string;
  limit: number;
}

/** Prepared statements over the resource and ack tables. */
export class CatalogStore {
  private readonly statements;

  constructor(db: Database.Database) {
    const prepare = (sql: string) => db.prepare(sql);
    this.statements = {
      allTopics: prepare("SELECT * FROM topics"),
      insertTopic: prepare(
        "INSERT INTO topics (name, config, first_offset, next_offset, bytes, last_publish_time) VALUES (?, ?, 1, 1, 0, 0)",
      ),
      updateTopicConfig: prepare("UPDATE topics SET config = ? WHERE id = ?"),
      deleteTopic: prepare("DELETE FROM topics WHERE id = ?"),
      markPurge: prepare("INSERT OR IGNORE INTO purged_topics (topic_id) VALUES (?)"),
      purgeList: prepare("SELECT topic_id FROM purged_topics").pluck(),
      unmarkPurge: prepare("DELETE FROM purged_topics WHERE topic_id = ?"),
      pageTopics: prepare(
        "SELECT config FROM topics WHERE name > ? AND name >= ? AND name < ? ORDER BY name LIMIT ?",
      ).pluck(),

      allSubscriptions: prepare("SELECT * FROM subscriptions"),
      insertSubscription: prepare(
        "INSERT INTO subscriptions (name, topic_id, config, ack_floor, last_active) VALUES (?, ?, ?, ?, ?)",
      ),
      updateSubscriptionConfig: prepare("UPDATE subscriptions SET config = ? WHERE id = ?"),
      orphanSubscription: prepare("UPDATE subscriptions SET topic_id = NULL, config = ? WHERE id = ?"),
      deleteSubscription: prepare("DELETE FROM subscriptions WHERE id = ?"),
      touchSubscription: prepare("UPDATE subscriptions SET last_active = ? WHERE id = ?"),
      pageSubscriptions: prepare(
        "SELECT config FROM subscriptions WHERE name > ? AND name >= ? AND name < ? ORDER BY name LIMIT ?",
      ).pluck(),
      projects: prepare(
        `SELECT DISTINCT substr(name, 10, instr(substr(name, 10), '/') - 1) FROM
           (SELECT name FROM topics UNION ALL SELECT name FROM subscriptions) ORDER BY 1`,
      ).pluck(),
      pageTopicSubscriptions: prepare(
        "SELECT name FROM subscriptions WHERE topic_id = ? AND name > ? ORDER BY name LIMIT ?",
      ).pluck(),

      setFloor: prepare("UPDATE subscriptions SET ack_floor = ? WHERE id = ?"),
      insertAck: prepare("INSERT OR IGNORE INTO acks (subscription_id, message_offset) VALUES (?, ?)"),
      deleteAcksBelow: prepare("DELETE FROM acks WHERE subscription_id = ? AND message_offset < ?"),
      deleteAcks: prepare("DELETE FROM acks WHERE subscription_id = ?"),
      selectAcks: prepare("SELECT message_offset FROM acks WHERE subscription_id = ? ORDER BY message_offset").pluck(),

      insertSnapshot: prepare("INSERT INTO snapshots (name, topic_id, config, ack_floor) VALUES (?, ?, ?, ?)"),
      copyAcksToSnapshot: prepare(
        "INSERT INTO snapshot_acks (snapshot_id, message_offset) SELECT ?, message_offset FROM acks WHERE subscription_id = ?",
      ),
      copyAcksFromSnapshot: prepare(
        "INSERT INTO acks (subscription_id, message_offset) SELECT ?, message_offset FROM snapshot_acks WHERE snapshot_id = ?",
      ),
      selectSnapshot: prepare("SELECT * FROM snapshots WHERE name = ?"),
      updateSnapshotConfig: prepare("UPDATE snapshots SET config = ? WHERE id = ?"),
      deleteSnapshot: prepare("DELETE FROM snapshots WHERE id = ?"),
      deleteSnapshotAcks: prepare("DELETE FROM snapshot_acks WHERE snapshot_id = ?"),
      snapshotsOfTopic: prepare("SELECT id FROM snapshots WHERE topic_id = ?").pluck(),
      expiredSnapshots: prepare("SELECT name FROM snapshots WHERE json_extract(config, '$.expireTimeMs') <= ?").pluck(),
      pageSnapshots: prepare(
        "SELECT config FROM snapshots WHERE name > ? AND name >= ? AND name < ? ORDER BY name LIMIT ?",
      ).pluck(),
      pageTopicSnapshots: prepare(
        "SELECT name FROM snapshots WHERE topic_id = ? AND name > ? ORDER BY name LIMIT ?",
      ).pluck(),
    };
  }

  loadTopics(): TopicRow[] {
    return (this.statements.allTopics.all() as Record<string, number | string>[]).map((row) => ({
      id: row.id as number,
      config: JSON.parse(row.config as string) as Topic,
      firstOffset: row.first_offset as number,
      nextOffset: row.next_offset as number,
      bytes: row.bytes as number,
      lastPublishTimeMs: row.last_publish_time as number,
    }));
  }

  /** Inserts a topic with an empty log at offset 1; returns its generation id. */
  insertTopic(topic: Topic): number {
    return Number(this.statements.insertTopic.run(topic.name, JSON.stringify(topic)).lastInsertRowid);
  }

  updateTopic(id: number, topic: Topic): void {
    this.statements.updateTopicConfig.run(JSON.stringify(topic), id);
  }

  /** Deletes a topic row and queues its messages for background purging. */
  deleteTopic(id: number): void {
    this.statements.deleteTopic.run(id);
    this.statements.markPurge.run(id);
  }

  /** Topic generations whose messages still await purging. */
  purgeList(): number[] {
    return this.statements.purgeList.all() as number[];
  }

  purgeDone(topicId: number): void {
    this.statements.unmarkPurge.run(topicId);
  }

  pageTopics(range: NameRange): Topic[] {
    return this.page<Topic>(this.statements.pageTopics, range);
  }

  loadSubscriptions(): SubscriptionRow[] {
    return (this.statements.allSubscriptions.all() as Record<string, number | string | null>[]).map((row) => ({
      id: row.id as number,
      topicId: row.topic_id as number | null,
      config: JSON.parse(row.config as string) as Subscription,
      ackFloor: row.ack_floor as number,
      lastActiveMs: row.last_active as number,
    }));
  }

  /** Inserts a subscription whose floor is `ackFloor`; returns its generation id. */
  insertSubscription(subscription: Subscription, topicId: number, ackFloor: number, nowMs: number): number {
    const result = this.statements.insertSubscription.run(
      subscription.name,
      topicId,
      JSON.stringify(subscription),
      ackFloor,
      nowMs,
    );
    return Number(result.lastInsertRowid);
  }

  updateSubscription(id: number, subscription: Subscription): void {
    this.statements.updateSubscriptionConfig.run(JSON.stringify(subscription), id);
  }

  /** The subscription's topic was deleted: it keeps its config with the deleted-topic marker. */
  orphanSubscription(id: number, subscription: Subscription): void {
    this.statements.orphanSubscription.run(JSON.stringify(subscription), id);
    this.statements.deleteAcks.run(id);
  }

  deleteSubscription(id: number): void {
    this.statements.deleteSubscription.run(id);
    this.statements.deleteAcks.run(id);
  }

  touchSubscription(id: number, lastActiveMs: number): void {
    this.statements.touchSubscription.run(lastActiveMs, id);
  }

  pageSubscriptions(range: NameRange): Subscription[] {
    return this.page<Subscription>(this.statements.pageSubscriptions, range);
  }

  /** Project ids that own at least one topic or subscription. */
  projects(): string[] {
    return this.statements.projects.all() as string[];
  }

  pageTopicSubscriptions(topicId: number, after: string, limit: number): string[] {
    return this.statements.pageTopicSubscriptions.all(topicId, after, limit) as string[];
  }

  /** Applies one ack change (floor move, new acks) of a subscription. */
  saveAcks(subscriptionId: number, change: AckChange): void {
    const { statements } = this;
    if (change.floor !== change.previousFloor) {
      statements.setFloor.run(change.floor, subscriptionId);
      statements.deleteAcksBelow.run(subscriptionId, change.floor);
    }
    for (const offset of change.acked) statements.insertAck.run(subscriptionId, offset);
  }

  /** Acked offsets above the floor of a subscription. */
  loadAcks(subscriptionId: number): number[] {
    return this.statements.selectAcks.all(subscriptionId) as number[];
  }

  /** Replaces a subscription's ack state: floor, and optionally every ack above it from a snapshot. */
  replaceAcks(subscriptionId: number, floor: number, fromSnapshotId: number | null): void {
    const { statements } = this;
    statements.setFloor.run(floor, subscriptionId);
    statements.deleteAcks.run(subscriptionId);
    if (fromSnapshotId !== null) statements.copyAcksFromSnapshot.run(subscriptionId, fromSnapshotId);
  }

  /** Stores a snapshot holding the subscription's current persisted ack state. */
  insertSnapshot(snapshot: Snapshot, topicId: number, subscriptionId: number, ackFloor: number): void {
    const id = Number(
      this.statements.insertSnapshot.run(snapshot.name, topicId, JSON.stringify(snapshot), ackFloor).lastInsertRowid,
    );
    this.statements.copyAcksToSnapshot.run(id, subscriptionId);
  }

  getSnapshot(name: string): SnapshotRow | undefined {
    const row = this.statements.selectSnapshot.get(name) as Record<string, number | string> | undefined;
    if (row === undefined) return undefined;
    return {
      id: row.id as number,
      topicId: row.topic_id as number,
      config: JSON.parse(row.config as string) as Snapshot,
      ackFloor: row.ack_floor as number,
    };
  }

  updateSnapshot(id: number, snapshot: Snapshot): void {
    this.statements.updateSnapshotConfig.run(JSON.stringify(snapshot), id);
  }

  deleteSnapshot(id: number): void {
    this.statements.deleteSnapshot.run(id);
    this.statements.deleteSnapshotAcks.run(id);
  }

  deleteSnapshotsOfTopic(topicId: number): void {
    for (const id of this.statements.snapshotsOfTopic.all(topicId) as number[]) this.deleteSnapshot(id);
  }

  /** Names of snapshots whose expire time is at or before `nowMs`. */
  expiredSnapshots(nowMs: number): string[] {
    return this.statements.expiredSnapshots.all(nowMs) as string[];
  }

  pageSnapshots(range: NameRange): Snapshot[] {
    return this.page<Snapshot>(this.statements.pageSnapshots, range);
  }

  pageTopicSnapshots(topicId: number, after: string, limit: number): string[] {
    return this.statements.pageTopicSnapshots.all(topicId, after, limit) as string[];
  }

  private page<T>(statement: Database.Statement, range: NameRange): T[] {
    const rows = statement.all(range.after, range.low, range.high, range.limit) as string[];
    return rows.map((config) => JSON.parse(config) as T);
  }
}
