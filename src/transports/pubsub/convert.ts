// Converts between Pub/Sub v1 proto messages and the broker's domain types, validating as Pub/Sub does.
import { create } from "@bufbuild/protobuf";
import { type Duration, DurationSchema, type Timestamp, TimestampSchema } from "@bufbuild/protobuf/wkt";
import { SUBSCRIPTION_DEFAULTS } from "../../broker/subscription-settings.js";
import {
  type DeadLetterPolicy,
  type ReceivedMessage as DomainReceived,
  type PushConfig,
  type RetryPolicy,
  SchemaEncoding,
  type SchemaSettings,
  type Snapshot,
  type StoredMessage,
  type Subscription,
  type Topic,
} from "../../broker/types.js";
import { errors } from "../../errors/index.js";
import {
  type PubsubMessage,
  PubsubMessageSchema,
  type PushConfig as PushConfigProto,
  PushConfigSchema,
  type ReceivedMessage,
  ReceivedMessageSchema,
  type SchemaSettings as SchemaSettingsProto,
  type Snapshot as SnapshotProto,
  SnapshotSchema,
  Subscription_State,
  type Subscription as SubscriptionProto,
  SubscriptionSchema,
  Topic_State,
  type Topic as TopicProto,
  TopicSchema,
} from "../../gen/google/pubsub/v1/pubsub_pb.js";
import { Encoding } from "../../gen/google/pubsub/v1/schema_pb.js";

/** Milliseconds of a proto Duration; INVALID_ARGUMENT naming `field` when negative or malformed. */
export function durationToMs(duration: Duration, field: string): number {
  const ms = Number(duration.seconds) * 1000 + Math.floor(duration.nanos / 1e6);
  if (!Number.isFinite(ms) || ms < 0) throw errors.invalidArgument(field, "must be a non-negative duration");
  return ms;
}

export function msToDuration(ms: number): Duration {
  return create(DurationSchema, { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 });
}

export function msToTimestamp(ms: number): Timestamp {
  return create(TimestampSchema, { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 });
}

export function timestampToMs(timestamp: Timestamp): number {
  return Number(timestamp.seconds) * 1000 + Math.floor(timestamp.nanos / 1e6);
}

/** A topic as Pub/Sub answers it: `state` ACTIVE; `tags` are input only, so never returned. */
export function topicToProto(topic: Topic): TopicProto {
  return create(TopicSchema, {
    name: topic.name,
    labels: topic.labels,
    kmsKeyName: topic.kmsKeyName,
    messageStoragePolicy: topic.messageStoragePolicy ?? undefined,
    messageRetentionDuration:
      topic.messageRetentionDurationMs === null ? undefined : msToDuration(topic.messageRetentionDurationMs),
    schemaSettings: topic.schemaSettings
      ? {
          schema: topic.schemaSettings.schema,
          encoding: topic.schemaSettings.encoding === SchemaEncoding.binary ? Encoding.BINARY : Encoding.JSON,
          firstRevisionId: topic.schemaSettings.firstRevisionId,
          lastRevisionId: topic.schemaSettings.lastRevisionId,
        }
      : undefined,
    state: Topic_State.ACTIVE,
  });
}

/** A topic's schema settings; an unset encoding is left for the broker to refuse (Pub/Sub needs JSON or BINARY). */
function schemaSettingsFromProto(proto: SchemaSettingsProto | undefined): SchemaSettings | null {
  if (proto === undefined) return null;
  const encoding =
    proto.encoding === Encoding.JSON
      ? SchemaEncoding.json
      : proto.encoding === Encoding.BINARY
        ? SchemaEncoding.binary
        : null;
  return {
    schema: proto.schema,
    encoding: encoding as SchemaEncoding,
    firstRevisionId: proto.firstRevisionId,
    lastRevisionId: proto.lastRevisionId,
  };
}

/** Rejects Pub/Sub features streamgate does not implement, instead of silently ignoring them. */
function rejectUnsupported(present: boolean, field: string): void {
  if (present) throw errors.invalidArgument(field, "is not supported by streamgate");
}

/** Topic fields from a proto (create or update). */
export function topicFromProto(proto: TopicProto): Omit<Topic, "createTimeMs" | "retentionBytes"> {
  rejectUnsupported(proto.ingestionDataSourceSettings !== undefined, "ingestion_data_source_settings");
  rejectUnsupported(proto.messageTransforms.length > 0, "message_transforms");
  const retention =
    proto.messageRetentionDuration === undefined
      ? null
      : durationToMs(proto.messageRetentionDuration, "message_retention_duration");
  const storage = proto.messageStoragePolicy;
  return {
    name: proto.name,
    labels: { ...proto.labels },
    kmsKeyName: proto.kmsKeyName,
    messageRetentionDurationMs: retention,
    schemaSettings: schemaSettingsFromProto(proto.schemaSettings),
    messageStoragePolicy:
      storage === undefined
        ? null
        : {
            allowedPersistenceRegions: [...storage.allowedPersistenceRegions],
            enforceInTransit: storage.enforceInTransit,
          },
    tags: { ...proto.tags },
  };
}

export function subscriptionToProto(subscription: Subscription): SubscriptionProto {
  return create(SubscriptionSchema, {
    name: subscription.name,
    topic: subscription.topic,
    // A pull subscription has an empty push config (`pushConfig: {}` in JSON), as Pub/Sub answers.
    pushConfig:
      subscription.pushConfig === null ? create(PushConfigSchema) : pushConfigToProto(subscription.pushConfig),
    ackDeadlineSeconds: subscription.ackDeadlineSeconds,
    retainAckedMessages: subscription.retainAckedMessages,
    messageRetentionDuration: msToDuration(subscription.messageRetentionDurationMs),
    labels: subscription.labels,
    enableMessageOrdering: subscription.enableMessageOrdering,
    expirationPolicy: {
      ttl: subscription.expirationTtlMs === null ? undefined : msToDuration(subscription.expirationTtlMs),
    },
    filter: subscription.filter,
    deadLetterPolicy: subscription.deadLetterPolicy ?? undefined,
    retryPolicy:
      subscription.retryPolicy === null
        ? undefined
        : {
            minimumBackoff: msToDuration(subscription.retryPolicy.minimumBackoffMs),
            maximumBackoff: msToDuration(subscription.retryPolicy.maximumBackoffMs),
          },
    detached: subscription.detached,
    enableExactlyOnceDelivery: subscription.enableExactlyOnceDelivery,
    state: Subscription_State.ACTIVE,
  });
}

function pushConfigToProto(push: PushConfig): PushConfigProto {
  return create(PushConfigSchema, {
    pushEndpoint: push.pushEndpoint,
    attributes: push.attributes,
    authenticationMethod: push.oidcToken === null ? { case: undefined } : { case: "oidcToken", value: push.oidcToken },
    wrapper: push.noWrapper
      ? { case: "noWrapper", value: { writeMetadata: push.writeMetadata ?? false } }
      : { case: undefined },
  });
}

/** Push config from a proto; an empty endpoint means pull delivery (null). The URL is validated by the broker. */
export function pushConfigFromProto(proto: SubscriptionProto["pushConfig"]): PushConfig | null {
  if (proto === undefined || proto.pushEndpoint === "") return null;
  const oidc = proto.authenticationMethod.case === "oidcToken" ? proto.authenticationMethod.value : null;
  return {
    pushEndpoint: proto.pushEndpoint,
    attributes: { ...proto.attributes },
    oidcToken: oidc === null ? null : { serviceAccountEmail: oidc.serviceAccountEmail, audience: oidc.audience },
    noWrapper: proto.wrapper.case === "noWrapper",
    writeMetadata: proto.wrapper.case === "noWrapper" && proto.wrapper.value.writeMetadata,
  };
}

/**
 * Subscription fields present in a proto, converted to domain units. Unset numbers stay 0 and ranges
 * are left to the broker's settings (resolveSubscription / applySubscriptionUpdate), which every engine
 * applies; only the proto-specific meanings (expiration policy presence, default backoffs) are decided here.
 */
export function subscriptionFromProto(
  proto: SubscriptionProto,
): Omit<Subscription, "createTimeMs" | "detached" | "expirationTtlMs"> & { expirationTtlMs?: number | null } {
  rejectUnsupported(proto.bigqueryConfig !== undefined, "bigquery_config");
  rejectUnsupported(proto.cloudStorageConfig !== undefined, "cloud_storage_config");
  rejectUnsupported(proto.bigtableConfig !== undefined, "bigtable_config");
  rejectUnsupported(proto.messageTransforms.length > 0, "message_transforms");
  const retentionMs =
    proto.messageRetentionDuration === undefined
      ? 0
      : durationToMs(proto.messageRetentionDuration, "message_retention_duration");
  const expirationTtlMs = expirationFromProto(proto.expirationPolicy);
  // Pub/Sub's API rule across two fields (engines accept any ttl within its own range).
  const effectiveRetentionMs = retentionMs === 0 ? SUBSCRIPTION_DEFAULTS.messageRetentionDurationMs : retentionMs;
  if (typeof expirationTtlMs === "number" && expirationTtlMs < effectiveRetentionMs) {
    throw errors.invalidArgument("expiration_policy.ttl", "must not be shorter than message_retention_duration");
  }
  return {
    name: proto.name,
    topic: proto.topic,
    ackDeadlineSeconds: proto.ackDeadlineSeconds,
    retainAckedMessages: proto.retainAckedMessages,
    messageRetentionDurationMs: retentionMs,
    labels: { ...proto.labels },
    enableMessageOrdering: proto.enableMessageOrdering,
    filter: proto.filter,
    deadLetterPolicy: deadLetterFromProto(proto.deadLetterPolicy),
    retryPolicy: retryFromProto(proto.retryPolicy),
    expirationTtlMs,
    pushConfig: pushConfigFromProto(proto.pushConfig),
    enableExactlyOnceDelivery: proto.enableExactlyOnceDelivery,
    tags: { ...proto.tags },
  };
}

export function deadLetterFromProto(proto: SubscriptionProto["deadLetterPolicy"]): DeadLetterPolicy | null {
  if (proto === undefined || proto.deadLetterTopic === "") return null;
  return { deadLetterTopic: proto.deadLetterTopic, maxDeliveryAttempts: proto.maxDeliveryAttempts };
}

export function retryFromProto(proto: SubscriptionProto["retryPolicy"]): RetryPolicy | null {
  if (proto === undefined) return null;
  const min =
    proto.minimumBackoff === undefined ? 10_000 : durationToMs(proto.minimumBackoff, "retry_policy.minimum_backoff");
  const max =
    proto.maximumBackoff === undefined ? 600_000 : durationToMs(proto.maximumBackoff, "retry_policy.maximum_backoff");
  return { minimumBackoffMs: min, maximumBackoffMs: max };
}

/** Pub/Sub: no policy = the default (undefined here); a policy with no or zero ttl = never expires (null). */
export function expirationFromProto(proto: SubscriptionProto["expirationPolicy"]): number | null | undefined {
  if (proto === undefined) return undefined;
  const ttl = proto.ttl === undefined ? 0 : durationToMs(proto.ttl, "expiration_policy.ttl");
  return ttl === 0 ? null : ttl;
}

export function snapshotToProto(snapshot: Snapshot): SnapshotProto {
  return create(SnapshotSchema, {
    name: snapshot.name,
    topic: snapshot.topic,
    expireTime: msToTimestamp(snapshot.expireTimeMs),
    labels: snapshot.labels,
  });
}

export function messageToProto(message: StoredMessage): PubsubMessage {
  return create(PubsubMessageSchema, {
    data: message.data,
    attributes: message.attributes,
    messageId: message.messageId,
    publishTime: msToTimestamp(message.publishTimeMs),
    orderingKey: message.orderingKey,
  });
}

/** A received message; `deliveryAttempt` is reported only when the subscription has a dead-letter policy. */
export function receivedToProto(received: DomainReceived, reportAttempts: boolean): ReceivedMessage {
  return create(ReceivedMessageSchema, {
    ackId: received.ackId,
    message: messageToProto(received.message),
    deliveryAttempt: reportAttempts ? received.deliveryAttempt : 0,
  });
}
