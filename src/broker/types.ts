// Domain types of the broker: topics, messages, subscriptions, snapshots (transport-neutral).

/** Full resource names, as Pub/Sub spells them. */
export type TopicName = string; // projects/{project}/topics/{topic}
export type SubscriptionName = string; // projects/{project}/subscriptions/{subscription}
export type SnapshotName = string; // projects/{project}/snapshots/{snapshot}

/** The topic name Pub/Sub gives a subscription whose topic was deleted. */
export const DELETED_TOPIC = "_deleted-topic_";

/** The schema name Pub/Sub gives a topic's schema settings once the schema was deleted. */
export const DELETED_SCHEMA = "_deleted-schema_";

/** How messages published to a topic with a schema are encoded (Pub/Sub's `Encoding`). */
export const SchemaEncoding = {
  /** The data is JSON text (Avro's JSON encoding, or the Protocol Buffers JSON mapping). */
  json: "JSON",
  /** The data is the schema type's binary encoding. */
  binary: "BINARY",
} as const;
export type SchemaEncoding = (typeof SchemaEncoding)[keyof typeof SchemaEncoding];

/** A topic's schema: every published message must validate against one of its revisions in range. */
export interface SchemaSettings {
  /** `projects/{p}/schemas/{s}`, or {@link DELETED_SCHEMA} once the schema was deleted. */
  schema: string;
  encoding: SchemaEncoding;
  /** Oldest revision allowed (inclusive); "" = from the first revision. */
  firstRevisionId: string;
  /** Newest revision allowed (inclusive); "" = up to the latest revision. */
  lastRevisionId: string;
}

/** What a publisher sends. */
export interface MessageInput {
  data: Uint8Array;
  attributes: Record<string, string>;
  /** Empty string when the message has no ordering key. */
  orderingKey: string;
}

/** A message as stored in a topic's log. */
export interface StoredMessage extends MessageInput {
  /** Per-topic position, starting at 1 and increasing by 1 per message. */
  offset: number;
  /** Unique within the topic; the decimal offset prefixed by a topic-instance tag. */
  messageId: string;
  /** Milliseconds since the Unix epoch, set by the server at publish. */
  publishTimeMs: number;
}

/** The result of one published message. */
export interface PublishedRef {
  offset: number;
  messageId: string;
}

export interface Topic {
  name: TopicName;
  labels: Record<string, string>;
  /** How long the log keeps messages, acked or not; null = the engine default (7 days). */
  messageRetentionDurationMs: number | null;
  /** Optional cap on the log size in bytes; oldest messages go first; null = no cap. */
  retentionBytes: number | null;
  /** Pub/Sub fields we store and echo but do not act on. */
  kmsKeyName: string;
  /** Validation of every published message against a schema; null = no schema. */
  schemaSettings: SchemaSettings | null;
  /**
   * Pub/Sub's message_storage_policy, stored and returned without effect: messages stay where the engine
   * keeps them (one data dir or one NATS cluster). null or absent = not set.
   */
  messageStoragePolicy?: MessageStoragePolicy | null;
  /** Pub/Sub's tags: input only and immutable (stored, never returned, no effect: there is no resource manager). */
  tags?: Record<string, string>;
  createTimeMs: number;
}

/** Where Pub/Sub may store a topic's messages (kept for clients; streamgate has one location). */
export interface MessageStoragePolicy {
  allowedPersistenceRegions: string[];
  enforceInTransit: boolean;
}

export interface DeadLetterPolicy {
  deadLetterTopic: TopicName;
  /** 5..100, as in Pub/Sub. */
  maxDeliveryAttempts: number;
}

export interface RetryPolicy {
  minimumBackoffMs: number;
  maximumBackoffMs: number;
}

export interface PushConfig {
  pushEndpoint: string;
  attributes: Record<string, string>;
  /** When set, a signed OIDC-style JWT is sent as a bearer token. */
  oidcToken: { serviceAccountEmail: string; audience: string } | null;
  /** True when the push body is the raw data (Pub/Sub's no_wrapper). */
  noWrapper: boolean;
  /**
   * With {@link noWrapper}: also send the message's metadata as `x-goog-pubsub-*` headers and its
   * attributes as headers named by their keys (Pub/Sub's no_wrapper.write_metadata). Absent = false.
   */
  writeMetadata?: boolean;
}

export interface Subscription {
  name: SubscriptionName;
  /** The topic's name, or {@link DELETED_TOPIC}. */
  topic: TopicName;
  /** 10..600 seconds; default 10. */
  ackDeadlineSeconds: number;
  retainAckedMessages: boolean;
  /** How long unacked (and retained acked) messages are kept; default 7 days. */
  messageRetentionDurationMs: number;
  labels: Record<string, string>;
  enableMessageOrdering: boolean;
  /** Pub/Sub filter expression on attributes; empty = every message. */
  filter: string;
  deadLetterPolicy: DeadLetterPolicy | null;
  retryPolicy: RetryPolicy | null;
  /** Inactivity period after which the subscription is deleted; null = never expires. Default 31 days. */
  expirationTtlMs: number | null;
  pushConfig: PushConfig | null;
  detached: boolean;
  enableExactlyOnceDelivery: boolean;
  /** Pub/Sub's tags: input only and immutable (stored, never returned, no effect). */
  tags?: Record<string, string>;
  createTimeMs: number;
}

export interface Snapshot {
  name: SnapshotName;
  topic: TopicName;
  expireTimeMs: number;
  labels: Record<string, string>;
}

/** A message leased to a consumer. */
export interface ReceivedMessage {
  /** Opaque; names the subscription's lease of this delivery. */
  ackId: string;
  message: StoredMessage;
  /** 1-based delivery count; reported to clients only when a dead-letter policy is set. */
  deliveryAttempt: number;
}

/** A page of a listing. */
export interface Page<T> {
  items: T[];
  /** Empty when there is no further page. */
  nextPageToken: string;
}

export interface PageRequest {
  /** Default 100, at most 1000. */
  pageSize: number;
  pageToken: string;
}

/** Where a seek moves a subscription. */
export type SeekTarget = { timeMs: number } | { snapshot: SnapshotName };

/** A live-stream position on a topic's log. */
export type StreamPosition =
  | { kind: "earliest" }
  | { kind: "latest" }
  /** Resume after this offset: the first delivered message is offset + 1. */
  | { kind: "after"; offset: number }
  | { kind: "time"; timeMs: number };
