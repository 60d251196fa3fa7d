// The Engine interface: one storage/broker contract that every engine (embedded, jetstream) implements.
import type { AckResult } from "../broker/ack-result.js";
import type { IamPolicy, IamPolicyWrite } from "../broker/iam-policy.js";
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
} from "../broker/types.js";
import type { Schemas } from "../schemas/types.js";

/** Fields a caller may set when creating a topic (the rest get defaults). */
export type TopicInit = Pick<Topic, "name"> & Partial<Omit<Topic, "name" | "createTimeMs">>;

/** Fields a caller may set when creating a subscription (the rest get defaults). */
export type SubscriptionInit = Pick<Subscription, "name" | "topic"> &
  Partial<Omit<Subscription, "name" | "topic" | "createTimeMs" | "detached">>;

/** Updatable fields and the mask naming which of them to apply (Pub/Sub field names, snake_case). */
export interface Update<T> {
  patch: Partial<T>;
  /** e.g. ["ack_deadline_seconds", "labels"]; an unknown path is INVALID_ARGUMENT. */
  paths: string[];
}

/** Flow control and lease settings of one streaming consumer. */
export interface DeliveryOptions {
  /** Lease given to each message delivered on this stream, 10..600 s. */
  ackDeadlineSeconds: number;
  /** Never more than this many unacked messages outstanding on the stream; 0 = no limit. */
  maxOutstandingMessages: number;
  /** Never more than this many unacked bytes outstanding on the stream; 0 = no limit. */
  maxOutstandingBytes: number;
  /** Identifies the client across reconnects (StreamingPull client_id). */
  clientId: string;
  /** Ends the stream; outstanding leases run until their deadline. */
  signal: AbortSignal;
}

/**
 * A live consumer of a subscription: yields batches as they become deliverable within flow
 * control. Acks and modacks go through {@link Engine.acknowledge} / {@link Engine.modifyAckDeadline};
 * they free flow-control room on the stream that received the message.
 */
export interface DeliveryStream extends AsyncIterable<ReceivedMessage[]> {
  setFlowControl(maxOutstandingMessages: number, maxOutstandingBytes: number): void;
  setAckDeadline(ackDeadlineSeconds: number): void;
}

/** Counters for dashboards and metrics. */
export interface SubscriptionStats {
  /** Messages not yet acknowledged (Pub/Sub's num_undelivered_messages). */
  backlog: number;
  /** Age of the oldest unacknowledged message in ms; 0 when the backlog is empty. */
  oldestUnackedAgeMs: number;
  /** Messages forwarded to the dead-letter topic since the process started. */
  deadLettered: number;
  /** Leased (delivered, not yet acked) messages. */
  outstanding: number;
}

export interface TopicStats {
  /** First retained offset (next offset when empty). */
  firstOffset: number;
  /** Offset the next published message will get. */
  nextOffset: number;
  messages: number;
  bytes: number;
}

/** The storage/broker contract; every method throws StreamgateError with a precise Code. */
export interface Engine {
  readonly kind: "embedded" | "jetstream";
  /** Pub/Sub schemas and their revisions, stored as durably as topics (topics validate publishes against them). */
  readonly schemas: Schemas;

  createTopic(init: TopicInit): Promise<Topic>;
  getTopic(name: TopicName): Promise<Topic>;
  updateTopic(name: TopicName, update: Update<Topic>): Promise<Topic>;
  listTopics(project: string, page: PageRequest): Promise<Page<Topic>>;
  /** Subscriptions of a deleted topic stay and report {@link DELETED_TOPIC}. */
  deleteTopic(name: TopicName): Promise<void>;

  /** Appends atomically and durably; resolves once every message is stored. */
  publish(topic: TopicName, messages: MessageInput[]): Promise<PublishedRef[]>;
  /** Reads the log from `fromOffset` inclusive (live streams; no acks). */
  readTopic(
    topic: TopicName,
    fromOffset: number,
    limit: { maxMessages: number; maxBytes: number },
  ): Promise<StoredMessage[]>;
  /** First offset whose publish time is at or after `timeMs` (next offset if none). */
  offsetAtTime(topic: TopicName, timeMs: number): Promise<number>;
  topicStats(topic: TopicName): Promise<TopicStats>;
  /** Calls `listener(nextOffset)` after each publish to the topic; returns the unsubscribe function. */
  watchTopic(topic: TopicName, listener: (nextOffset: number) => void): () => void;

  createSubscription(init: SubscriptionInit): Promise<Subscription>;
  getSubscription(name: SubscriptionName): Promise<Subscription>;
  updateSubscription(name: SubscriptionName, update: Update<Subscription>): Promise<Subscription>;
  listSubscriptions(project: string, page: PageRequest): Promise<Page<Subscription>>;
  /** Project ids owning at least one topic or subscription (background workers such as push scan them). */
  listProjects(): Promise<string[]>;
  listTopicSubscriptions(topic: TopicName, page: PageRequest): Promise<Page<SubscriptionName>>;
  deleteSubscription(name: SubscriptionName): Promise<void>;
  /** Detaches from its topic: no more messages, pending ones dropped. */
  detachSubscription(name: SubscriptionName): Promise<void>;

  /** Unary pull: waits up to `waitMs` for at least one message (0 = return at once). */
  pull(
    name: SubscriptionName,
    options: { maxMessages: number; waitMs: number; signal: AbortSignal },
  ): Promise<ReceivedMessage[]>;
  openStream(name: SubscriptionName, options: DeliveryOptions): DeliveryStream;
  /**
   * Acks durably before resolving. Ack ids of another subscription or malformed ones are
   * INVALID_ARGUMENT (and nothing is applied); stale ones are not applied and are reported in the
   * result, for exactly-once delivery's per-id answers.
   */
  acknowledge(name: SubscriptionName, ackIds: string[]): Promise<AckResult>;
  /**
   * 0 = nack (redeliver per retry policy); otherwise extend to `seconds` from now (max 600). Ids
   * naming no current lease are reported in the result, as for {@link acknowledge}.
   */
  modifyAckDeadline(name: SubscriptionName, ackIds: string[], seconds: number): Promise<AckResult>;
  seek(name: SubscriptionName, target: SeekTarget): Promise<void>;
  subscriptionStats(name: SubscriptionName): Promise<SubscriptionStats>;

  createSnapshot(name: SnapshotName, subscription: SubscriptionName, labels: Record<string, string>): Promise<Snapshot>;
  getSnapshot(name: SnapshotName): Promise<Snapshot>;
  updateSnapshot(name: SnapshotName, update: Update<Snapshot>): Promise<Snapshot>;
  listSnapshots(project: string, page: PageRequest): Promise<Page<Snapshot>>;
  listTopicSnapshots(topic: TopicName, page: PageRequest): Promise<Page<SnapshotName>>;
  deleteSnapshot(name: SnapshotName): Promise<void>;

  /**
   * The IAM policy of `resource` (a name of a kind in IAM_RESOURCE_KINDS); an empty policy when none
   * was set. A policy goes away with its resource.
   * @throws StreamgateError INVALID_ARGUMENT for another name, NOT_FOUND when the resource does not exist.
   */
  getIamPolicy(resource: string): Promise<IamPolicy>;
  /**
   * Replaces the policy of `resource` (validated by the caller) and gives it a new etag.
   * @throws StreamgateError ABORTED when `write.expectedEtag` is set and the stored etag differs; NOT_FOUND.
   */
  setIamPolicy(resource: string, write: IamPolicyWrite): Promise<IamPolicy>;
  /**
   * Of `permissions`, those the caller holds on `resource`. The engines hold no callers and return
   * them all (auth off: everything is allowed); the authorizing wrapper filters them.
   * @throws StreamgateError NOT_FOUND when the resource does not exist.
   */
  testIamPermissions(resource: string, permissions: string[]): Promise<string[]>;
  /**
   * The stored policy of `resource`, read from memory without checking the resource (authorization
   * reads it synchronously on every call its token's own grants do not cover); null when none.
   */
  storedIamPolicy(resource: string): IamPolicy | null;

  /** True when the engine can serve requests (for /readyz). */
  ready(): Promise<boolean>;
  /** Stops background work, ends open streams, closes storage. */
  close(): Promise<void>;
}
