// Converts between Pub/Sub v1 proto messages and the broker's domain types, validating as Pub/Sub does.
import { create } from "@bufbuild/protobuf";
import { type Duration, DurationSchema, type Timestamp, TimestampSchema } from "@bufbuild/protobuf/wkt";
import type {
  DeadLetterPolicy,
  ReceivedMessage as DomainReceived,
  PushConfig,
  RetryPolicy,
  Snapshot,
  StoredMessage,
  Subscription,
  Topic,
} from "../../broker/types.js";
import { errors } from "../../errors/index.js";
import {
  type PubsubMessage,
  PubsubMessageSchema,
  type PushConfig as PushConfigProto,
  PushConfigSchema,
  type ReceivedMessage,
  ReceivedMessageSchema,
  type Snapshot as SnapshotProto,
  SnapshotSchema,
  type Subscription as SubscriptionProto,
  SubscriptionSchema,
  type Topic as TopicProto,
  TopicSchema,
} from "../../gen/google/pubsub/v1/pubsub_pb.js";

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

export function topicToProto(topic: Topic): TopicProto {
  return create(TopicSchema, {
    name: topic.name,
    labels: topic.labels,
    kmsKeyName: topic.kmsKeyName,
    messageRetentionDuration:
      topic.messageRetentionDurationMs === null ? undefined : msToDuration(topic.messageRetentionDurationMs),
  });
}

/** Rejects Pub/Sub features streamgate does not implement, instead of silently ignoring them. */
function rejectUnsupported(present: boolean, field: string): void {
  if (present) throw errors.invalidArgument(field, "is not supported by streamgate");
}

/** Topic fields from a proto (create or update). */
export function topicFromProto(proto: TopicProto): Omit<Topic, "createTimeMs" | "retentionBytes"> {
  rejectUnsupported(proto.schemaSettings !== undefined, "schema_settings");
  rejectUnsupported(proto.ingestionDataSourceSettings !== undefined, "ingestion_data_source_settings");
  rejectUnsupported(proto.messageTransforms.length > 0, "message_transforms");
  const retention =
    proto.messageRetentionDuration === undefined
      ? null
      : durationToMs(proto.messageRetentionDuration, "message_retention_duration");
  if (retention !== null && (retention < 10 * 60_000 || retention > 31 * 86_400_000)) {
    throw errors.invalidArgument("message_retention_duration", "must be between 10 minutes and 31 days");
  }
  return {
    name: proto.name,
    labels: { ...proto.labels },
    kmsKeyName: proto.kmsKeyName,
    messageRetentionDurationMs: retention,
  };
}

export function subscriptionToProto(subscription: Subscription): SubscriptionProto {
  return create(SubscriptionSchema, {
    name: subscription.name,
    topic: subscription.topic,
    pushConfig: subscription.pushConfig === null ? undefined : pushConfigToProto(subscription.pushConfig),
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
  });
}

function pushConfigToProto(push: PushConfig): PushConfigProto {
  return create(PushConfigSchema, {
    pushEndpoint: push.pushEndpoint,
    attributes: push.attributes,
    authenticationMethod: push.oidcToken === null ? { case: undefined } : { case: "oidcToken", value: push.oidcToken },
    wrapper: push.noWrapper ? { case: "noWrapper", value: {} } : { case: undefined },
  });
}

/** Push config from a proto; an empty endpoint means pull delivery (null). */
export function pushConfigFromProto(proto: SubscriptionProto["pushConfig"]): PushConfig | null {
  if (proto === undefined || proto.pushEndpoint === "") return null;
  let url: URL;
  try {
    url = new URL(proto.pushEndpoint);
  } catch {
    throw errors.invalidArgument("push_config.push_endpoint", `"${proto.pushEndpoint}" is not a valid URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw errors.invalidArgument("push_config.push_endpoint", "must be an http or https URL");
  }
  const oidc = proto.authenticationMethod.case === "oidcToken" ? proto.authenticationMethod.value : null;
  return {
    pushEndpoint: proto.pushEndpoint,
    attributes: { ...proto.attributes },
    oidcToken: oidc === null ? null : { serviceAccountEmail: oidc.serviceAccountEmail, audience: oidc.audience },
    noWrapper: proto.wrapper.case === "noWrapper",
  };
}

/** Subscription fields present in a proto, converted and range-checked with Pub/Sub's rules. */
export function subscriptionFromProto(proto: SubscriptionProto): Omit<Subscription, "createTimeMs" | "detached"> {
  rejectUnsupported(proto.bigqueryConfig !== undefined, "bigquery_config");
  rejectUnsupported(proto.cloudStorageConfig !== undefined, "cloud_storage_config");
  rejectUnsupported(proto.bigtableConfig !== undefined, "bigtable_config");
  rejectUnsupported(proto.messageTransforms.length > 0, "message_transforms");
  const ackDeadline = proto.ackDeadlineSeconds === 0 ? 10 : proto.ackDeadlineSeconds;
  if (ackDeadline < 10 || ackDeadline > 600) {
    throw errors.invalidArgument("ack_deadline_seconds", `must be between 10 and 600 seconds, got ${ackDeadline}`);
  }
  const retentionMs =
    proto.messageRetentionDuration === undefined
      ? 7 * 86_400_000
      : durationToMs(proto.messageRetentionDuration, "message_retention_duration");
  if (retentionMs < 10 * 60_000 || retentionMs > 7 * 86_400_000) {
    throw errors.invalidArgument("message_retention_duration", "must be between 10 minutes and 7 days");
  }
  return {
    name: proto.name,
    topic: proto.topic,
    ackDeadlineSeconds: ackDeadline,
    retainAckedMessages: proto.retainAckedMessages,
    messageRetentionDurationMs: retentionMs,
    labels: { ...proto.labels },
    enableMessageOrdering: proto.enableMessageOrdering,
    filter: proto.filter,
    deadLetterPolicy: deadLetterFromProto(proto.deadLetterPolicy),
    retryPolicy: retryFromProto(proto.retryPolicy),
    expirationTtlMs: expirationFromProto(proto.expirationPolicy, retentionMs),
    pushConfig: pushConfigFromProto(proto.pushConfig),
    enableExactlyOnceDelivery: proto.enableExactlyOnceDelivery,
  };
}

export function deadLetterFromProto(proto: SubscriptionProto["deadLetterPolicy"]): DeadLetterPolicy | null {
  if (proto === undefined || proto.deadLetterTopic === "") return null;
  const attempts = proto.maxDeliveryAttempts === 0 ? 5 : proto.maxDeliveryAttempts;
  if (attempts < 5 || attempts > 100) {
    throw errors.invalidArgument(
      "dead_letter_policy.max_delivery_attempts",
      `must be between 5 and 100, got ${attempts}`,
    );
  }
  return { deadLetterTopic: proto.deadLetterTopic, maxDeliveryAttempts: attempts };
}

export function retryFromProto(proto: SubscriptionProto["retryPolicy"]): RetryPolicy | null {
  if (proto === undefined) return null;
  const min =
    proto.minimumBackoff === undefined ? 10_000 : durationToMs(proto.minimumBackoff, "retry_policy.minimum_backoff");
  const max =
    proto.maximumBackoff === undefined ? 600_000 : durationToMs(proto.maximumBackoff, "retry_policy.maximum_backoff");
  if (min > 600_000) throw errors.invalidArgument("retry_policy.minimum_backoff", "must be at most 600s");
  if (max > 600_000) throw errors.invalidArgument("retry_policy.maximum_backoff", "must be at most 600s");
  if (min > max) throw errors.invalidArgument("retry_policy", "minimum_backoff must not exceed maximum_backoff");
  return { minimumBackoffMs: min, maximumBackoffMs: max };
}

/** Pub/Sub: no policy = 31 days; a policy with no ttl = never expires; ttl ≥ 1 day and ≥ retention. */
export function expirationFromProto(proto: SubscriptionProto["expirationPolicy"], retentionMs: number): number | null {
  if (proto === undefined) return 31 * 86_400_000;
  if (proto.ttl === undefined) return null;
  const ttl = durationToMs(proto.ttl, "expiration_policy.ttl");
  if (ttl === 0) return null;
  if (ttl < 86_400_000) throw errors.invalidArgument("expiration_policy.ttl", "must be at least 1 day");
  if (ttl < retentionMs) {
    throw errors.invalidArgument("expiration_policy.ttl", "must not be shorter than message_retention_duration");
  }
  return ttl;
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
