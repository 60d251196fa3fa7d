// Subscription defaults, validation and field-mask updates (Pub/Sub rules, engine-neutral).
import type { SubscriptionInit, Update } from "../engines/engine.js";
import { errors } from "../errors/index.js";
import { compileFilter } from "./filter.js";
import { parseSubscriptionName, parseTopicName } from "./names.js";
import {
  DAY_MS,
  MINUTE_MS,
  normalizeUpdatePaths,
  notUpdatable,
  unknownPath,
  validateLabels,
  validateRange,
  validateStringMap,
} from "./resource-settings.js";
import { validateTags } from "./topic-settings.js";
import type { DeadLetterPolicy, PushConfig, RetryPolicy, Subscription } from "./types.js";

/** Defaults Pub/Sub applies when a subscription leaves a field unset. */
export const SUBSCRIPTION_DEFAULTS = {
  /** Lease of a pulled message: 10 s, Pub/Sub's default (0 on the wire means "default"). */
  ackDeadlineSeconds: 10,
  /** Unacked messages are kept 7 days, Pub/Sub's default and maximum. */
  messageRetentionDurationMs: 7 * DAY_MS,
  /** An idle subscription is deleted after 31 days, Pub/Sub's default expiration policy. */
  expirationTtlMs: 31 * DAY_MS,
  /** Dead-letter policy with max_delivery_attempts 0 means 5, as in Pub/Sub. */
  maxDeliveryAttempts: 5,
} as const;

/** Pub/Sub's bounds on subscription fields. */
export const SUBSCRIPTION_LIMITS = {
  ackDeadlineSeconds: { min: 10, max: 600 },
  messageRetentionDurationMs: { min: 10 * MINUTE_MS, max: 7 * DAY_MS },
  maxDeliveryAttempts: { min: 5, max: 100 },
  backoffMs: { min: 0, max: 600_000 },
  /** An expiration policy's ttl is at least one day. */
  expirationTtlMs: { min: DAY_MS, max: Number.MAX_SAFE_INTEGER },
} as const;

/**
 * Fills a subscription's defaults and validates every field (the topic's existence is the
 * engine's to check).
 * @throws StreamgateError INVALID_ARGUMENT naming the offending field.
 */
export function resolveSubscription(init: SubscriptionInit, nowMs: number): Subscription {
  parseSubscriptionName(init.name);
  parseTopicName(init.topic, "topic");
  const subscription: Subscription = {
    name: init.name,
    topic: init.topic,
    ackDeadlineSeconds: init.ackDeadlineSeconds ?? 0,
    retainAckedMessages: init.retainAckedMessages ?? false,
    messageRetentionDurationMs: init.messageRetentionDurationMs ?? 0,
    labels: init.labels ?? {},
    enableMessageOrdering: init.enableMessageOrdering ?? false,
    filter: init.filter ?? "",
    deadLetterPolicy: init.deadLetterPolicy ?? null,
    retryPolicy: init.retryPolicy ?? null,
    expirationTtlMs: init.expirationTtlMs === undefined ? SUBSCRIPTION_DEFAULTS.expirationTtlMs : init.expirationTtlMs,
    pushConfig: init.pushConfig ?? null,
    detached: false,
    enableExactlyOnceDelivery: init.enableExactlyOnceDelivery ?? false,
    tags: validateTags(init.tags ?? {}),
    createTimeMs: nowMs,
  };
  if (typeof subscription.filter !== "string") throw errors.invalidArgument("filter", "must be a string");
  compileFilter(subscription.filter);
  return validateSubscription(subscription);
}

/**
 * Applies `update.patch` for each field in `update.paths`; a named field absent from the patch is
 * reset to its default, as Pub/Sub does. `filter`, `topic` and `enable_message_ordering` are
 * immutable.
 * @throws StreamgateError INVALID_ARGUMENT for an unknown or immutable path or an invalid value.
 */
export function applySubscriptionUpdate(current: Subscription, update: Update<Subscription>): Subscription {
  const next: Subscription = { ...current };
  const patch = update.patch ?? {};
  for (const { field, path } of normalizeUpdatePaths(update.paths)) {
    switch (field) {
      case "ack_deadline_seconds":
        next.ackDeadlineSeconds = patch.ackDeadlineSeconds ?? 0;
        break;
      case "labels":
        next.labels = patch.labels ?? {};
        break;
      case "push_config":
        next.pushConfig = patch.pushConfig ?? null;
        break;
      case "retain_acked_messages":
        next.retainAckedMessages = patch.retainAckedMessages ?? false;
        break;
      case "message_retention_duration":
        next.messageRetentionDurationMs = patch.messageRetentionDurationMs ?? 0;
        break;
      case "expiration_policy":
        next.expirationTtlMs =
          patch.expirationTtlMs === undefined ? SUBSCRIPTION_DEFAULTS.expirationTtlMs : patch.expirationTtlMs;
        break;
      case "dead_letter_policy":
        next.deadLetterPolicy = patch.deadLetterPolicy ?? null;
        break;
      case "retry_policy":
        next.retryPolicy = patch.retryPolicy ?? null;
        break;
      case "enable_exactly_once_delivery":
        next.enableExactlyOnceDelivery = patch.enableExactlyOnceDelivery ?? false;
        break;
      case "name":
      case "topic":
      case "filter":
      case "enable_message_ordering":
      case "detached":
      case "tags":
        throw notUpdatable(path, "subscription");
      default:
        throw unknownPath(path, "subscription");
    }
  }
  return validateSubscription(next);
}

/** Validates every field and replaces "unset" zeros with defaults; returns the same object. */
function validateSubscription(subscription: Subscription): Subscription {
  const limits = SUBSCRIPTION_LIMITS;
  if (subscription.ackDeadlineSeconds === 0) subscription.ackDeadlineSeconds = SUBSCRIPTION_DEFAULTS.ackDeadlineSeconds;
  validateRange(
    subscription.ackDeadlineSeconds,
    limits.ackDeadlineSeconds.min,
    limits.ackDeadlineSeconds.max,
    "ack_deadline_seconds",
    " s",
  );
  if (subscription.messageRetentionDurationMs === 0) {
    subscription.messageRetentionDurationMs = SUBSCRIPTION_DEFAULTS.messageRetentionDurationMs;
  }
  const retention = limits.messageRetentionDurationMs;
  validateRange(
    subscription.messageRetentionDurationMs,
    retention.min,
    retention.max,
    "message_retention_duration",
    " ms",
  );
  if (subscription.expirationTtlMs !== null) {
    const { min, max } = limits.expirationTtlMs;
    validateRange(subscription.expirationTtlMs, min, max, "expiration_policy.ttl", " ms");
  }
  subscription.labels = validateLabels(subscription.labels);
  subscription.retainAckedMessages = booleanField(subscription.retainAckedMessages, "retain_acked_messages");
  subscription.enableMessageOrdering = booleanField(subscription.enableMessageOrdering, "enable_message_ordering");
  subscription.enableExactlyOnceDelivery = booleanField(
    subscription.enableExactlyOnceDelivery,
    "enable_exactly_once_delivery",
  );
  subscription.deadLetterPolicy = validateDeadLetterPolicy(subscription.deadLetterPolicy);
  subscription.retryPolicy = validateRetryPolicy(subscription.retryPolicy);
  subscription.pushConfig = validatePushConfig(subscription.pushConfig);
  return subscription;
}

function validateDeadLetterPolicy(policy: DeadLetterPolicy | null): DeadLetterPolicy | null {
  if (policy === null) return null;
  parseTopicName(policy.deadLetterTopic, "dead_letter_policy.dead_letter_topic");
  const attempts = policy.maxDeliveryAttempts || SUBSCRIPTION_DEFAULTS.maxDeliveryAttempts;
  const { min, max } = SUBSCRIPTION_LIMITS.maxDeliveryAttempts;
  validateRange(attempts, min, max, "dead_letter_policy.max_delivery_attempts");
  return { deadLetterTopic: policy.deadLetterTopic, maxDeliveryAttempts: attempts };
}

function validateRetryPolicy(policy: RetryPolicy | null): RetryPolicy | null {
  if (policy === null) return null;
  const { min, max } = SUBSCRIPTION_LIMITS.backoffMs;
  validateRange(policy.minimumBackoffMs, min, max, "retry_policy.minimum_backoff", " ms");
  validateRange(policy.maximumBackoffMs, min, max, "retry_policy.maximum_backoff", " ms");
  if (policy.maximumBackoffMs < policy.minimumBackoffMs) {
    throw errors.invalidArgument("retry_policy.maximum_backoff", "must not be less than minimum_backoff");
  }
  return { minimumBackoffMs: policy.minimumBackoffMs, maximumBackoffMs: policy.maximumBackoffMs };
}

function validatePushConfig(config: PushConfig | null): PushConfig | null {
  // An empty endpoint turns a push subscription back into a pull one, as in Pub/Sub.
  if (config === null || config.pushEndpoint === "") return null;
  let url: URL;
  try {
    url = new URL(config.pushEndpoint);
  } catch {
    throw errors.invalidArgument("push_config.push_endpoint", `invalid URL ${JSON.stringify(config.pushEndpoint)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw errors.invalidArgument("push_config.push_endpoint", "must be an http or https URL");
  }
  return {
    pushEndpoint: config.pushEndpoint,
    attributes: validateStringMap(config.attributes ?? {}, "push_config.attributes"),
    oidcToken: config.oidcToken ?? null,
    noWrapper: config.noWrapper ?? false,
    writeMetadata: (config.noWrapper ?? false) && (config.writeMetadata ?? false),
  };
}

function booleanField(value: unknown, field: string): boolean {
  if (typeof value !== "boolean") throw errors.invalidArgument(field, "must be a boolean");
  return value;
}
