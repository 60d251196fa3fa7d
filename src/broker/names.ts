// Pub/Sub resource names, Duration and Timestamp values: parsing, validation and canonical formatting.
import { errors } from "../errors/index.js";

/**
 * The project of short topic names (`orders`) where a transport has no project of its own (WebSocket frames, the
 * dashboard): the same as the CLI's and the client library's default, so one short name means one topic everywhere.
 */
export const DEFAULT_PROJECT = "default";

/** `orders` → `projects/default/topics/orders`; a name with a slash is returned as given (checked later). */
export function expandTopicName(text: string, project: string = DEFAULT_PROJECT): string {
  return text !== "" && !text.includes("/") ? `projects/${project}/topics/${text}` : text;
}

/** A resource name split into its project and resource id. */
export interface ResourceName {
  project: string;
  id: string;
}

/** The proto `google.protobuf.Duration` / `Timestamp` object shape (protobuf-es uses bigint seconds). */
export interface SecondsAndNanos {
  seconds?: bigint | number | string;
  nanos?: number;
}

const ID_PATTERN = /^[A-Za-z][A-Za-z0-9\-._~%+]*$/;
const ID_MIN_LENGTH = 3;
const ID_MAX_LENGTH = 255;

/**
 * Parses `projects/{project}/topics/{topic}`.
 * @param field - the request field named in errors; default `name`.
 * @throws StreamgateError INVALID_ARGUMENT naming `field` and the broken rule.
 */
export function parseTopicName(name: string, field = "name"): ResourceName {
  return parseResourceName(name, "topics", "topic", field);
}

/**
 * Parses `projects/{project}/subscriptions/{subscription}`.
 * @param field - the request field named in errors; default `name`.
 * @throws StreamgateError INVALID_ARGUMENT naming `field` and the broken rule.
 */
export function parseSubscriptionName(name: string, field = "name"): ResourceName {
  return parseResourceName(name, "subscriptions", "subscription", field);
}

/**
 * Parses `projects/{project}/snapshots/{snapshot}`.
 * @param field - the request field named in errors; default `name`.
 * @throws StreamgateError INVALID_ARGUMENT naming `field` and the broken rule.
 */
export function parseSnapshotName(name: string, field = "name"): ResourceName {
  return parseResourceName(name, "snapshots", "snapshot", field);
}

/** A schema name, optionally naming one revision (`projects/{project}/schemas/{schema}@{revision}`). */
export interface SchemaResourceName extends ResourceName {
  /** The schema's name without the revision. */
  schema: string;
  /** The revision after `@`, or null when the name has none. */
  revisionId: string | null;
}

/**
 * Parses `projects/{project}/schemas/{schema}`, with an optional `@{revision}` suffix when `allowRevision`.
 * @param field - the request field named in errors; default `name`.
 * @throws StreamgateError INVALID_ARGUMENT naming `field` and the broken rule.
 */
export function parseSchemaName(name: string, field = "name", allowRevision = false): SchemaResourceName {
  const at = typeof name === "string" ? name.indexOf("@") : -1;
  const schema = at === -1 ? name : name.slice(0, at);
  const revisionId = at === -1 ? null : name.slice(at + 1);
  if (revisionId !== null && !allowRevision) {
    throw errors.invalidArgument(field, `schema name ${JSON.stringify(name)} must not name a revision (no "@")`);
  }
  if (revisionId === "")
    throw errors.invalidArgument(field, `schema name ${JSON.stringify(name)} has an empty revision after "@"`);
  return { ...parseResourceName(schema, "schemas", "schema", field), schema, revisionId };
}

/**
 * Parses `projects/{project}` (the `project` field of List* requests).
 * @returns the project id.
 * @param field - the request field named in errors; default `project`.
 * @throws StreamgateError INVALID_ARGUMENT naming `field`.
 */
export function parseProjectName(name: string, field = "project"): string {
  const parts = typeof name === "string" ? name.split("/") : [];
  if (parts.length !== 2 || parts[0] !== "projects") {
    throw errors.invalidArgument(field, `invalid project name ${JSON.stringify(name)}; expected "projects/{project}"`);
  }
  validateProjectId(parts[1]!, field);
  return parts[1]!;
}

/**
 * Checks a project id. Permissive like the Pub/Sub emulator (any id works locally), it only rejects
 * what would break a resource name: an empty id or one containing "/".
 * @param field - the request field named in errors; default `project`.
 */
export function validateProjectId(project: string, field = "project"): void {
  if (typeof project !== "string" || project === "")
    throw errors.invalidArgument(field, "project id must not be empty");
  if (project.includes("/")) {
    throw errors.invalidArgument(field, `project id ${JSON.stringify(project)} must not contain "/"`);
  }
}

function parseResourceName(name: string, collection: string, kind: string, field: string): ResourceName {
  // Built only for an error: this runs on every call that names a resource.
  const expected = () => `expected "projects/{project}/${collection}/{${kind}}"`;
  if (typeof name !== "string" || name === "")
    throw errors.invalidArgument(field, `${kind} name is required; ${expected()}`);
  const parts = name.split("/");
  if (parts.length !== 4 || parts[0] !== "projects" || parts[2] !== collection) {
    throw errors.invalidArgument(field, `invalid ${kind} name ${JSON.stringify(name)}; ${expected()}`);
  }
  const project = parts[1]!;
  const id = parts[3]!;
  validateProjectId(project, field);
  validateResourceId(id, kind, field);
  return { project, id };
}

/** Pub/Sub's id rule, shared by topics, subscriptions and snapshots. */
function validateResourceId(id: string, kind: string, field: string): void {
  // Quoted only for an error: this runs on every call that names a resource.
  const quoted = () => JSON.stringify(id);
  if (id.length < ID_MIN_LENGTH || id.length > ID_MAX_LENGTH) {
    throw errors.invalidArgument(
      field,
      `${kind} id ${quoted()} must be ${ID_MIN_LENGTH} to ${ID_MAX_LENGTH} characters long, got ${id.length}`,
    );
  }
  if (!/^[A-Za-z]/.test(id)) throw errors.invalidArgument(field, `${kind} id ${quoted()} must start with a letter`);
  if (!ID_PATTERN.test(id)) {
    throw errors.invalidArgument(
      field,
      `${kind} id ${quoted()} may contain only letters, digits and the characters - . _ ~ % +`,
    );
  }
  if (id.startsWith("goog")) throw errors.invalidArgument(field, `${kind} id ${quoted()} must not start with "goog"`);
}

// google.protobuf.Duration allows ±315,576,000,000 s (10,000 years).
const MAX_DURATION_SECONDS = 315_576_000_000;
const DURATION_PATTERN = /^(\d+)(?:\.(\d{1,9}))?s$/;

/**
 * Parses a proto Duration: JSON text (`"600s"`, `"1.5s"`, up to 9 fractional digits) or a
 * `{seconds, nanos}` object. Sub-millisecond parts are truncated. Negative durations are rejected:
 * no Pub/Sub field takes one.
 * @returns milliseconds.
 * @throws StreamgateError INVALID_ARGUMENT naming `field`.
 */
export function parseDurationMs(value: string | SecondsAndNanos, field: string): number {
  if (typeof value === "string") {
    const match = DURATION_PATTERN.exec(value);
    if (match === null) {
      const hint = value.startsWith("-") ? "must not be negative" : 'expected seconds with an "s" suffix, e.g. "600s"';
      throw errors.invalidArgument(field, `invalid duration ${JSON.stringify(value)}; ${hint}`);
    }
    const seconds = Number(match[1]);
    if (seconds > MAX_DURATION_SECONDS) throw errors.invalidArgument(field, `duration ${value} is out of range`);
    const nanos = Number((match[2] ?? "").padEnd(9, "0"));
    return seconds * 1000 + Math.trunc(nanos / 1e6);
  }
  const { seconds, nanos } = secondsAndNanos(value, field, "duration");
  if (seconds < 0 || nanos < 0) throw errors.invalidArgument(field, "duration must not be negative");
  if (seconds > MAX_DURATION_SECONDS) throw errors.invalidArgument(field, `duration of ${seconds}s is out of range`);
  return seconds * 1000 + Math.trunc(nanos / 1e6);
}

/**
 * Formats milliseconds as proto Duration JSON: `"600s"`, `"1.500s"` (0, 3, 6 or 9 fractional digits,
 * as protobuf's canonical JSON). Negative values get a leading `-`.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) throw new RangeError(`formatDuration: ${ms} is not a finite number`);
  const sign = ms < 0 ? "-" : "";
  const totalNanos = Math.round(Math.abs(ms) * 1e6);
  const seconds = Math.floor(totalNanos / 1e9);
  const nanos = totalNanos - seconds * 1e9;
  return `${sign}${seconds}${fraction(nanos)}s`;
}

// RFC 3339 as proto Timestamp JSON accepts it: years 0001..9999, "T"/"Z" in either case, any offset.
const TIMESTAMP_PATTERN =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;
// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z, the proto Timestamp range.
const MIN_TIMESTAMP_MS = -62_135_596_800_000;
const MAX_TIMESTAMP_MS = 253_402_300_799_999;

/**
 * Parses an RFC 3339 timestamp (`"2024-01-01T00:00:00.123456789Z"`, offsets like `+02:00` allowed)
 * or a `{seconds, nanos}` object. Sub-millisecond parts are truncated.
 * @returns milliseconds since the Unix epoch.
 * @throws StreamgateError INVALID_ARGUMENT naming `field`.
 */
export function parseTimestampMs(value: string | SecondsAndNanos, field: string): number {
  if (typeof value !== "string") {
    const { seconds, nanos } = secondsAndNanos(value, field, "timestamp");
    if (nanos < 0) throw errors.invalidArgument(field, "timestamp nanos must not be negative");
    return checkTimestampRange(seconds * 1000 + Math.trunc(nanos / 1e6), field);
  }
  const invalid = () =>
    errors.invalidArgument(
      field,
      `invalid timestamp ${JSON.stringify(value)}; expected RFC 3339, e.g. "2024-01-01T00:00:00.123Z"`,
    );
  const match = TIMESTAMP_PATTERN.exec(value);
  if (match === null) throw invalid();
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const daysInMonth = new Date(Date.UTC(2000, month, 0)).getUTCDate() - (month === 2 && !isLeapYear(year) ? 1 : 0);
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59) {
    throw invalid();
  }
  let offsetMinutes = 0;
  if (match[8] === undefined) {
    const offsetHours = Number(match[10]);
    const offsetMins = Number(match[11]);
    if (offsetHours > 23 || offsetMins > 59) throw invalid();
    offsetMinutes = (match[9] === "-" ? -1 : 1) * (offsetHours * 60 + offsetMins);
  }
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day); // Date.UTC maps years 0..99 to 1900..1999
  date.setUTCHours(hour, minute, second, 0);
  const millis = Math.trunc(Number((match[7] ?? "").padEnd(9, "0")) / 1e6);
  return checkTimestampRange(date.getTime() + millis - offsetMinutes * 60_000, field);
}

/**
 * Formats milliseconds since the epoch as RFC 3339 in UTC, as protobuf's canonical JSON does:
 * `"2024-01-01T00:00:00.123Z"`, or `"2024-01-01T00:00:00Z"` when the milliseconds are zero.
 * Fractional milliseconds are dropped.
 */
export function formatTimestamp(ms: number): string {
  if (!Number.isFinite(ms) || ms < MIN_TIMESTAMP_MS || ms > MAX_TIMESTAMP_MS) {
    throw new RangeError(`formatTimestamp: ${ms} is outside 0001-01-01..9999-12-31`);
  }
  const iso = new Date(Math.floor(ms)).toISOString(); // always "YYYY-MM-DDTHH:MM:SS.mmmZ" in this range
  return iso.endsWith(".000Z") ? `${iso.slice(0, -5)}Z` : iso;
}

function checkTimestampRange(ms: number, field: string): number {
  if (ms < MIN_TIMESTAMP_MS || ms > MAX_TIMESTAMP_MS) {
    throw errors.invalidArgument(field, "timestamp must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z");
  }
  return ms;
}

function secondsAndNanos(value: SecondsAndNanos, field: string, kind: string): { seconds: number; nanos: number } {
  if (value === null || typeof value !== "object") {
    throw errors.invalidArgument(field, `${kind} must be a string or an object with seconds and nanos`);
  }
  const seconds = Number(value.seconds ?? 0);
  const nanos = value.nanos ?? 0;
  if (!Number.isSafeInteger(seconds)) throw errors.invalidArgument(field, `${kind} seconds must be an integer`);
  if (!Number.isInteger(nanos) || Math.abs(nanos) > 999_999_999) {
    throw errors.invalidArgument(field, `${kind} nanos must be an integer between -999999999 and 999999999`);
  }
  return { seconds, nanos };
}

function fraction(nanos: number): string {
  if (nanos === 0) return "";
  const digits = String(nanos).padStart(9, "0");
  if (nanos % 1_000_000 === 0) return `.${digits.slice(0, 3)}`;
  if (nanos % 1000 === 0) return `.${digits.slice(0, 6)}`;
  return `.${digits}`;
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}
