// Field rules shared by topics, subscriptions and snapshots: labels, durations, update masks.
import { errors } from "../errors/index.js";
import { validateLabels as checkLabels } from "./labels.js";

/** Milliseconds in a minute and a day, for the limits below. */
export const MINUTE_MS = 60_000;
export const DAY_MS = 86_400_000;

/**
 * Checks a label map with GCP's rules ({@link checkLabels}) and returns a copy.
 * @throws StreamgateError INVALID_ARGUMENT naming `field`.
 */
export function validateLabels(labels: unknown, field = "labels"): Record<string, string> {
  if (labels === null || typeof labels !== "object" || Array.isArray(labels)) {
    throw errors.invalidArgument(field, "must be a map of strings");
  }
  checkLabels(labels as Record<string, string>, field);
  return { ...(labels as Record<string, string>) };
}

/** Checks a map of string values (push attributes, whose keys follow no label rules) and returns a copy. */
export function validateStringMap(map: unknown, field: string): Record<string, string> {
  if (map === null || typeof map !== "object" || Array.isArray(map)) {
    throw errors.invalidArgument(field, "must be a map of strings");
  }
  for (const [key, value] of Object.entries(map)) {
    if (typeof value !== "string") throw errors.invalidArgument(`${field}.${key}`, "must be a string");
  }
  return { ...(map as Record<string, string>) };
}

/** Checks that `value` is an integer in `[min, max]` (milliseconds, seconds or counts). */
export function validateRange(value: unknown, min: number, max: number, field: string, unit = ""): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw errors.invalidArgument(field, `must be an integer from ${min}${unit} to ${max}${unit}, got ${String(value)}`);
  }
  return value;
}

/**
 * Normalizes an update mask: rejects an empty one, accepts camelCase (REST clients send it) and
 * nested paths (`retry_policy.minimum_backoff` updates the whole `retry_policy`).
 * @returns the top-level snake_case field names with the path each came from.
 */
export function normalizeUpdatePaths(paths: string[]): { field: string; path: string }[] {
  if (!Array.isArray(paths) || paths.length === 0) {
    throw errors.invalidArgument("update_mask", "must name at least one field to update");
  }
  return paths.map((path) => {
    if (typeof path !== "string" || path === "") throw errors.invalidArgument("update_mask", "paths must not be empty");
    const top = path.split(".")[0]!;
    return { field: top.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`), path };
  });
}

/** The error for a mask path naming a field that exists but cannot change. */
export function notUpdatable(path: string, kind: string) {
  return errors.invalidArgument("update_mask", `field ${JSON.stringify(path)} of a ${kind} cannot be updated`);
}

/** The error for a mask path naming no known field. */
export function unknownPath(path: string, kind: string) {
  return errors.invalidArgument("update_mask", `unknown or unsupported ${kind} field ${JSON.stringify(path)}`);
}
