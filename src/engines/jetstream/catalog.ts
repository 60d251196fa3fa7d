// Resource metadata (topics, subscriptions, snapshots) in a JetStream KV bucket, mirrored in memory by a watch.
import type { KV, KvEntry } from "@nats-io/kv";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { decodePageToken, encodePageToken, resolvePageSize } from "../../broker/page-token.js";
import type { Page, PageRequest, Snapshot, Subscription, Topic } from "../../broker/types.js";
import { errors } from "../../errors/index.js";
import type { SchemaRevision } from "../../schemas/index.js";

/** A topic and the JetStream stream holding its log. */
export interface TopicRecord {
  config: Topic;
  /** Unique per topic instance (never reused after deletion): names the stream and prefixes message ids. */
  tag: string;
}

/** A subscription and the consumer generation currently delivering it. */
export interface SubscriptionRecord {
  config: Subscription;
  /** Unique per subscription instance; ack ids carry it. */
  id: string;
  /** The tag of the topic it reads, or null once detached or its topic deleted. */
  topicTag: string | null;
  /** Bumped by every seek: the consumer is recreated and older ack ids become stale. */
  generation: number;
  /** Stream sequences at or after the consumer's start that count as acked (restored by a seek). */
  skip: number[];
  /**
   * Last pull, stream, ack or modack seen by any instance (ms since the epoch), written at most
   * once per activity interval per instance; absent on records of older versions (creation time).
   */
  lastActiveMs?: number;
}

/** A snapshot: where a subscription's consumer restarts and which later sequences were acked. */
export interface SnapshotRecord {
  config: Snapshot;
  topicTag: string;
  /** First stream sequence not acked when the snapshot was taken. */
  start: number;
  skip: number[];
}

/** A schema: all its revisions, oldest first, in one record (so a commit is one compare-and-set). */
export interface SchemaRecord {
  revisions: SchemaRevision[];
}

export type ResourceKind = "topic" | "subscription" | "snapshot" | "schema";
type RecordOf<K extends ResourceKind> = K extends "topic"
  ? TopicRecord
  : K extends "subscription"
    ? SubscriptionRecord
    : K extends "snapshot"
      ? SnapshotRecord
      : SchemaRecord;

const PREFIX: Record<ResourceKind, string> = { topic: "t.", subscription: "s.", snapshot: "n.", schema: "c." };

/** Called when a record changes, locally or on another instance; `record` is null when deleted. */
export type CatalogListener = <K extends ResourceKind>(kind: K, name: string, record: RecordOf<K> | null) => void;

/**
 * The shared catalog. Reads are served from memory; writes go to the KV bucket first and update
 * memory at once, and every instance's watch applies the others' writes within milliseconds.
 */
export class Catalog {
  private readonly maps = {
    topic: new Map<string, TopicRecord>(),
    subscription: new Map<string, SubscriptionRecord>(),
    snapshot: new Map<string, SnapshotRecord>(),
    schema: new Map<string, SchemaRecord>(),
  };
  /** Last applied KV revision per key, so a late watch entry never overwrites a newer local write. */
  private readonly revisions = new Map<string, number>();
  private stopWatch: (() => void) | null = null;
  listener: CatalogListener = () => {};

  private constructor(private readonly kv: KV) {}

  /** Opens (creating if needed) the bucket `<namespace>-catalog`, loads it and starts watching it. */
  static async open(connection: NatsConnection, namespace: string, replicas: number): Promise<Catalog> {
    const kv = await new Kvm(connection).create(`${namespace}-catalog`, { history: 1, replicas });
    const catalog = new Catalog(kv);
    const watch = await kv.watch({ key: ">" });
    let loaded: () => void = () => {};
    const initial = new Promise<void>((resolve) => {
      loaded = resolve;
    });
    // The watch first replays every key, then follows updates; `delta === 0` marks the end of the replay.
    void (async () => {
      for await (const entry of watch) {
        catalog.apply(entry);
        if (entry.delta === 0) loaded();
      }
      loaded();
    })();
    const status = await kv.status();
    if (status.values === 0) loaded();
    // Belt and braces: never hang on a replay marker we did not see.
    const timer = setTimeout(loaded, 2000);
    await initial;
    clearTimeout(timer);
    catalog.stopWatch = () => watch.stop();
    return catalog;
  }

  get<K extends ResourceKind>(kind: K, name: string): RecordOf<K> | undefined {
    return this.maps[kind].get(name) as RecordOf<K> | undefined;
  }

  all<K extends ResourceKind>(kind: K): RecordOf<K>[] {
    return [...this.maps[kind].values()] as RecordOf<K>[];
  }

  /**
   * Stores a new record.
   * @throws StreamgateError ALREADY_EXISTS when another writer created it first.
   */
  async create<K extends ResourceKind>(kind: K, name: string, record: RecordOf<K>): Promise<void> {
    if (this.maps[kind].has(name)) throw errors.alreadyExists(kind, name);
    const key = keyOf(kind, name);
    let revision: number;
    try {
      revision = await this.kv.create(key, JSON.stringify(record));
    } catch (error) {
      if (/wrong last sequence|exists/i.test(String(error))) throw errors.alreadyExists(kind, name);
      throw error;
    }
    this.set(kind, name, record, revision);
  }

  /** Replaces a record (last writer wins). */
  async put<K extends ResourceKind>(kind: K, name: string, record: RecordOf<K>): Promise<void> {
    const revision = await this.kv.put(keyOf(kind, name), JSON.stringify(record));
    this.set(kind, name, record, revision);
  }

  /**
   * Replaces a record only if it is still the revision this instance last saw (compare and set).
   * @returns false when another writer changed or deleted it first.
   */
  async putIfUnchanged<K extends ResourceKind>(kind: K, name: string, record: RecordOf<K>): Promise<boolean> {
    const key = keyOf(kind, name);
    const expected = this.revisions.get(key);
    if (expected === undefined || !this.maps[kind].has(name)) return false;
    let revision: number;
    try {
      revision = await this.kv.update(key, JSON.stringify(record), expected);
    } catch (error) {
      if (/wrong last sequence/i.test(String(error))) return false;
      throw error;
    }
    this.set(kind, name, record, revision);
    return true;
  }

  /**
   * Deletes a record only if it is still the revision this instance last saw.
   * @returns false when another writer changed or deleted it first.
   */
  async removeIfUnchanged(kind: ResourceKind, name: string): Promise<boolean> {
    const key = keyOf(kind, name);
    const expected = this.revisions.get(key);
    if (expected === undefined || !this.maps[kind].has(name)) return false;
    try {
      await this.kv.delete(key, { previousSeq: expected });
    } catch (error) {
      if (/wrong last sequence/i.test(String(error))) return false;
      throw error;
    }
    if (this.maps[kind].delete(name)) this.listener(kind, name, null);
    return true;
  }

  async remove(kind: ResourceKind, name: string): Promise<void> {
    await this.kv.delete(keyOf(kind, name));
    if (this.maps[kind].delete(name)) this.listener(kind, name, null);
  }

  /** A page of `kind` records whose names start with `prefix`, sorted by name. */
  page<K extends ResourceKind, T>(
    kind: K,
    prefix: string,
    request: PageRequest,
    select: (record: RecordOf<K>) => boolean,
    project: (record: RecordOf<K>) => T,
    tokenPrefix = prefix,
  ): Page<T> {
    const limit = resolvePageSize(request.pageSize);
    const after = decodePageToken(request.pageToken, tokenPrefix);
    const names = [...this.maps[kind].keys()]
      .filter((name) => name.startsWith(prefix) && name > after && select(this.maps[kind].get(name) as RecordOf<K>))
      .sort();
    const items = names.slice(0, limit);
    const nextPageToken = names.length > limit ? encodePageToken(items[items.length - 1]!) : "";
    return { items: items.map((name) => project(this.maps[kind].get(name) as RecordOf<K>)), nextPageToken };
  }

  close(): void {
    this.stopWatch?.();
  }

  private set<K extends ResourceKind>(kind: K, name: string, record: RecordOf<K>, revision: number): void {
    const key = keyOf(kind, name);
    if ((this.revisions.get(key) ?? 0) > revision) return;
    this.revisions.set(key, revision);
    this.maps[kind].set(name, record as never);
    this.listener(kind, name, record);
  }

  private apply(entry: KvEntry): void {
    const kind = kindOf(entry.key);
    if (kind === undefined) return;
    if ((this.revisions.get(entry.key) ?? 0) >= entry.revision) return;
    this.revisions.set(entry.key, entry.revision);
    const name = Buffer.from(entry.key.slice(2), "base64url").toString("utf8");
    if (entry.operation !== "PUT") {
      if (this.maps[kind].delete(name)) this.listener(kind, name, null);
      return;
    }
    const record = JSON.parse(entry.string()) as RecordOf<typeof kind>;
    this.maps[kind].set(name, record as never);
    this.listener(kind, name, record as never);
  }
}

function keyOf(kind: ResourceKind, name: string): string {
  return PREFIX[kind] + Buffer.from(name, "utf8").toString("base64url");
}

function kindOf(key: string): ResourceKind | undefined {
  for (const kind of ["topic", "subscription", "snapshot", "schema"] as const)
    if (key.startsWith(PREFIX[kind])) return kind;
  return undefined;
}
