// Topic defaults, validation and field-mask updates (Pub/Sub rules, engine-neutral).
import type { TopicInit, Update } from "../engines/engine.js";
import { errors } from "../errors/index.js";
import { parseSchemaName, parseTopicName } from "./names.js";
import {
  DAY_MS,
  MINUTE_MS,
  normalizeUpdatePaths,
  notUpdatable,
  unknownPath,
  validateLabels,
  validateRange,
} from "./resource-settings.js";
import { DELETED_SCHEMA, SchemaEncoding, type SchemaSettings, type Topic } from "./types.js";

/** Pub/Sub's bounds on a topic's message_retention_duration: 10 minutes to 31 days. */
export const TOPIC_RETENTION_LIMITS_MS = { min: 10 * MINUTE_MS, max: 31 * DAY_MS } as const;

/**
 * Fills a topic's defaults and validates it.
 * @throws StreamgateError INVALID_ARGUMENT naming the offending field.
 */
export function resolveTopic(init: TopicInit, nowMs: number): Topic {
  parseTopicName(init.name);
  const topic: Topic = {
    name: init.name,
    labels: init.labels ?? {},
    // 0 means "unset" on the wire, as in Pub/Sub.
    messageRetentionDurationMs: init.messageRetentionDurationMs || null,
    retentionBytes: init.retentionBytes || null,
    kmsKeyName: init.kmsKeyName ?? "",
    schemaSettings: init.schemaSettings ?? null,
    messageStoragePolicy: init.messageStoragePolicy ?? null,
    tags: init.tags ?? {},
    createTimeMs: nowMs,
  };
  return validateTopic(topic);
}

/**
 * Applies `update.patch` for each field in `update.paths`; a named field absent from the patch is
 * reset to its default, as Pub/Sub does.
 * @throws StreamgateError INVALID_ARGUMENT for an unknown or immutable path or an invalid value.
 */
export function applyTopicUpdate(current: Topic, update: Update<Topic>): Topic {
  const next: Topic = { ...current };
  const patch = update.patch ?? {};
  for (const { field, path } of normalizeUpdatePaths(update.paths)) {
    switch (field) {
      case "labels":
        next.labels = patch.labels ?? {};
        break;
      case "message_retention_duration":
        next.messageRetentionDurationMs = patch.messageRetentionDurationMs || null;
        break;
      case "retention_bytes":
        next.retentionBytes = patch.retentionBytes || null;
        break;
      case "kms_key_name":
        next.kmsKeyName = patch.kmsKeyName ?? "";
        break;
      case "schema_settings":
        next.schemaSettings = patch.schemaSettings ?? null;
        break;
      case "message_storage_policy":
        next.messageStoragePolicy = patch.messageStoragePolicy ?? null;
        break;
      case "name":
      case "tags":
        throw notUpdatable(path, "topic");
      default:
        throw unknownPath(path, "topic");
    }
  }
  return validateTopic(next);
}

function validateTopic(topic: Topic): Topic {
  topic.labels = validateLabels(topic.labels);
  if (topic.messageRetentionDurationMs !== null) {
    const { min, max } = TOPIC_RETENTION_LIMITS_MS;
    validateRange(topic.messageRetentionDurationMs, min, max, "message_retention_duration", " ms");
  }
  if (topic.retentionBytes !== null) {
    validateRange(topic.retentionBytes, 1, Number.MAX_SAFE_INTEGER, "retention_bytes");
  }
  if (typeof topic.kmsKeyName !== "string") throw errors.invalidArgument("kms_key_name", "must be a string");
  if (topic.schemaSettings) validateSchemaSettings(topic.schemaSettings);
  else topic.schemaSettings = null;
  topic.tags = validateTags(topic.tags ?? {});
  return topic;
}

/** The shape of schema settings; whether the schema and its revisions exist is the engine's check. */
function validateSchemaSettings(settings: SchemaSettings): void {
  if (settings.schema !== DELETED_SCHEMA) parseSchemaName(settings.schema, "schema_settings.schema");
  if (settings.encoding !== SchemaEncoding.json && settings.encoding !== SchemaEncoding.binary) {
    throw errors.invalidArgument("schema_settings.encoding", "must be JSON or BINARY");
  }
  for (const field of ["firstRevisionId", "lastRevisionId"] as const) {
    if (typeof settings[field] !== "string") {
      throw errors.invalidArgument(
        `schema_settings.${field === "firstRevisionId" ? "first" : "last"}_revision_id`,
        "must be a string",
      );
    }
  }
}

/** Pub/Sub tags map `tagKeys/…` (or `{org}/{key}`) to `tagValues/…` (or a short name); kept as given, bounded. */
export function validateTags(tags: Record<string, string>): Record<string, string> {
  const entries = Object.entries(tags);
  if (entries.length > 50) throw errors.invalidArgument("tags", "at most 50 tags");
  for (const [key, value] of entries) {
    if (key === "" || key.length > 256) throw errors.invalidArgument("tags", "a tag key must be 1..256 characters");
    if (typeof value !== "string" || value === "" || value.length > 256) {
      throw errors.invalidArgument(`tags[${JSON.stringify(key)}]`, "a tag value must be 1..256 characters");
    }
  }
  return { ...tags };
}
