// Validation of resource labels (GCP rules) and of message attributes and ordering keys (Pub/Sub limits).
import { errors } from "../errors/index.js";

/** GCP's limits on resource labels. */
export const LabelLimits = {
  /** At most 64 labels per resource. */
  maxLabels: 64,
  /** Keys are 1 to 63 characters. */
  maxKeyLength: 63,
  /** Values are 0 to 63 characters. */
  maxValueLength: 63,
} as const;

/** Pub/Sub's limits on message attributes and ordering keys. */
export const MessageLimits = {
  /** At most 100 attributes per message. */
  maxAttributes: 100,
  /** An attribute key is at most 256 bytes (UTF-8). */
  maxAttributeKeyBytes: 256,
  /** An attribute value is at most 1024 bytes (UTF-8). */
  maxAttributeValueBytes: 1024,
  /** An ordering key is at most 1024 bytes (UTF-8). */
  maxOrderingKeyBytes: 1024,
} as const;

// GCP allows international lowercase letters: \p{Ll} lower case, \p{Lo} letters without case (e.g. CJK).
const LABEL_KEY = /^[\p{Ll}\p{Lo}][\p{Ll}\p{Lo}\p{N}_-]*$/u;
const LABEL_VALUE = /^[\p{Ll}\p{Lo}\p{N}_-]*$/u;

/**
 * Checks a labels map against GCP's rules: at most 64 labels; keys 1–63 characters of lowercase
 * letters, digits, "_" and "-", starting with a lowercase letter; values 0–63 such characters.
 * "Lowercase letter" includes international letters (`ñ`, and caseless ones such as `日`), as GCP allows.
 * @param field - the request field named in errors; default `labels`.
 * @throws StreamgateError INVALID_ARGUMENT naming `field` and the label.
 */
export function validateLabels(labels: Record<string, string>, field = "labels"): void {
  const entries = Object.entries(labels);
  if (entries.length > LabelLimits.maxLabels) {
    throw errors.invalidArgument(field, `at most ${LabelLimits.maxLabels} labels are allowed, got ${entries.length}`);
  }
  for (const [key, value] of entries) {
    const quoted = JSON.stringify(key);
    const keyLength = [...key].length;
    if (keyLength === 0 || keyLength > LabelLimits.maxKeyLength) {
      throw errors.invalidArgument(
        field,
        `label key ${quoted} must be 1 to ${LabelLimits.maxKeyLength} characters long`,
      );
    }
    if (!LABEL_KEY.test(key)) {
      throw errors.invalidArgument(
        field,
        `label key ${quoted} must start with a lowercase letter and contain only lowercase letters, digits, _ and -`,
      );
    }
    if (typeof value !== "string") throw errors.invalidArgument(field, `label ${quoted} must have a string value`);
    if ([...value].length > LabelLimits.maxValueLength) {
      throw errors.invalidArgument(
        field,
        `value of label ${quoted} must be at most ${LabelLimits.maxValueLength} characters long`,
      );
    }
    if (!LABEL_VALUE.test(value)) {
      throw errors.invalidArgument(
        field,
        `value of label ${quoted} may contain only lowercase letters, digits, _ and -`,
      );
    }
  }
}

/**
 * Checks message attributes against Pub/Sub's limits: at most 100; keys non-empty, at most 256 bytes
 * and not starting with "goog" (reserved by Google); values at most 1024 bytes. Not for push-config
 * attributes, whose keys (`x-goog-version`) follow other rules.
 * @param field - the request field named in errors, e.g. `messages[3].attributes`; default `attributes`.
 * @throws StreamgateError INVALID_ARGUMENT naming `field` and the attribute.
 */
export function validateAttributes(attributes: Record<string, string>, field = "attributes"): void {
  const entries = Object.entries(attributes);
  if (entries.length > MessageLimits.maxAttributes) {
    throw errors.invalidArgument(
      field,
      `at most ${MessageLimits.maxAttributes} attributes are allowed, got ${entries.length}`,
    );
  }
  for (const [key, value] of entries) {
    const quoted = JSON.stringify(truncate(key));
    if (key === "") throw errors.invalidArgument(field, "attribute keys must not be empty");
    const keyBytes = Buffer.byteLength(key);
    if (keyBytes > MessageLimits.maxAttributeKeyBytes) {
      throw errors.invalidArgument(
        field,
        `attribute key ${quoted} must be at most ${MessageLimits.maxAttributeKeyBytes} bytes, got ${keyBytes}`,
      );
    }
    // The official clients add `googclient_*` attributes themselves (OpenTelemetry context); Pub/Sub accepts them.
    if (key.startsWith("goog") && !key.startsWith("googclient_")) {
      throw errors.invalidArgument(field, `attribute key ${quoted} must not start with "goog" (reserved)`);
    }
    if (typeof value !== "string") throw errors.invalidArgument(field, `attribute ${quoted} must have a string value`);
    const valueBytes = Buffer.byteLength(value);
    if (valueBytes > MessageLimits.maxAttributeValueBytes) {
      throw errors.invalidArgument(
        field,
        `value of attribute ${quoted} must be at most ${MessageLimits.maxAttributeValueBytes} bytes, got ${valueBytes}`,
      );
    }
  }
}

/**
 * Checks a message ordering key: at most 1024 bytes; empty means "no ordering key".
 * @param field - the request field named in errors, e.g. `messages[0].orderingKey`; default `orderingKey`.
 * @throws StreamgateError INVALID_ARGUMENT naming `field`.
 */
export function validateOrderingKey(orderingKey: string, field = "orderingKey"): void {
  // At most 3 UTF-8 bytes per UTF-16 unit: short keys (and the empty one, on every publish) need no counting.
  if (orderingKey.length * 3 <= MessageLimits.maxOrderingKeyBytes) return;
  // UTF-8 length without encoding (a lone surrogate counts 3 bytes, as TextEncoder's U+FFFD does).
  const bytes = Buffer.byteLength(orderingKey);
  if (bytes > MessageLimits.maxOrderingKeyBytes) {
    throw errors.invalidArgument(
      field,
      `ordering key must be at most ${MessageLimits.maxOrderingKeyBytes} bytes, got ${bytes}`,
    );
  }
}

/** Keeps error messages short when a key is itself the problem (a 10 kB key). */
function truncate(text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}…` : text;
}
