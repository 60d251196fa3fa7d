// Public surface of the broker core: domain types, settings rules and the transport-neutral dispatcher.
export { type AckIdParts, decodeAckId, encodeAckId } from "./ack-id.js";
export { type AckResult, ackApplied } from "./ack-result.js";
export { deadLetterMessage } from "./dead-letter.js";
export { DispatchStream, MAX_DELIVERY_BATCH } from "./delivery-stream.js";
export type { AckChange, BacklogPredicate, DispatchLog, SubscriptionAckState } from "./dispatch-log.js";
export { type AttributeFilter, compileFilter, MAX_FILTER_BYTES } from "./filter.js";
export { LabelLimits, MessageLimits, validateAttributes, validateLabels, validateOrderingKey } from "./labels.js";
export { type BufferLimits, DEFAULT_BUFFER_LIMITS, MessageBuffer } from "./message-buffer.js";
export { MAX_MESSAGE_BYTES, messageSize, validateMessages } from "./message-limits.js";
export * from "./names.js";
export { decodePageToken, encodePageToken, PAGE_SIZE, resolvePageSize } from "./page-token.js";
export { retryDelayMs } from "./retry-backoff.js";
export { applySnapshotUpdate, SNAPSHOT_LIFETIME_MS, snapshotExpireTimeMs } from "./snapshot-settings.js";
export {
  type DispatcherStats,
  SubscriptionDispatcher,
  type SubscriptionDispatcherOptions,
} from "./subscription-dispatcher.js";
export {
  applySubscriptionUpdate,
  resolveSubscription,
  SUBSCRIPTION_DEFAULTS,
  SUBSCRIPTION_LIMITS,
} from "./subscription-settings.js";
export { applyTopicUpdate, resolveTopic, TOPIC_RETENTION_LIMITS_MS } from "./topic-settings.js";
export * from "./types.js";
