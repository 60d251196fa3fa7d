// Per-resource permissions granted by a token's `streamgate` claim: parsing, pattern matching, checks.
import { Code, StreamgateError } from "../errors/index.js";

/**
 * What a grant allows on the resources its patterns match. On a schema (`schemas/{s}`): any grant lets a
 * caller get it, list its revisions, validate messages against it and attach it to a topic it may create
 * or update; `admin` also creates, commits, rolls back, deletes revisions and deletes it.
 */
export const Permission = {
  /** Publish to a topic (gRPC Publish, REST :publish, Events/PublishStream and Connect publish, WebSocket, chat). */
  publish: "publish",
  /**
   * Receive: Pull, StreamingPull, Acknowledge, ModifyAckDeadline on a subscription; live streams (SSE,
   * long poll, WebSocket, Events/Subscribe and Connect, chat) on a topic.
   */
  subscribe: "subscribe",
  /** Everything on the resource: create, update, delete, seek, snapshots, schema revisions, and publish/subscribe too. */
  admin: "admin",
} as const;
export type Permission = (typeof Permission)[keyof typeof Permission];

/** The name of the JWT claim that carries the grants. */
export const GRANTS_CLAIM = "streamgate";

/** Kinds of resources a pattern can name. */
const KINDS = new Set(["topics", "subscriptions", "snapshots", "schemas", "*"]);

interface CompiledPattern {
  /** The pattern as written in the claim. */
  text: string;
  /** 1 (`orders-*`), 2 (`topics/orders-*`) or 4 (`projects/p/topics/orders-*`) segments. */
  segments: 1 | 2 | 4;
  regex: RegExp;
}

/** Admin patterns that match every resource. */
const EVERYTHING = new Set(["*", "*/*", "projects/*/*/*"]);

/** The grants of one principal, compiled once when its token is verified. */
export interface Grants {
  readonly publish: readonly CompiledPattern[];
  readonly subscribe: readonly CompiledPattern[];
  readonly admin: readonly CompiledPattern[];
  /** True when an admin pattern matches every resource (`*`, `*\/*` or `projects/*\/*\/*`): dashboard and /metrics. */
  readonly globalAdmin: boolean;
}

/** Grants that allow nothing (a valid token without the claim). */
export const noGrants: Grants = { publish: [], subscribe: [], admin: [], globalAdmin: false };

function invalidClaim(message: string): StreamgateError {
  return new StreamgateError(Code.UNAUTHENTICATED, `token claim "${GRANTS_CLAIM}" is invalid: ${message}`, {
    reason: "TOKEN_CLAIMS_INVALID",
    details: { scheme: "Bearer", claim: GRANTS_CLAIM },
  });
}

function compilePattern(pattern: string): CompiledPattern {
  const parts = pattern.split("/");
  const valid =
    pattern.length > 0 &&
    pattern.length <= 512 &&
    parts.every((part) => part.length > 0) &&
    (parts.length === 1 ||
      (parts.length === 2 && KINDS.has(parts[0]!)) ||
      (parts.length === 4 && parts[0] === "projects" && KINDS.has(parts[2]!)));
  if (!valid) {
    throw invalidClaim(
      `pattern ${JSON.stringify(pattern.slice(0, 80))} is not NAME, KIND/NAME or projects/P/KIND/NAME (KIND: topics, subscriptions, snapshots, schemas or *)`,
    );
  }
  // `*` matches any run of characters within one segment; everything else is literal.
  const source = pattern
    .split("*")
    .map((literal) => literal.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
    .join("[^/]*");
  return { text: pattern, segments: parts.length as 1 | 2 | 4, regex: new RegExp(`^${source}$`) };
}

function compileList(value: unknown, permission: Permission): CompiledPattern[] {
  if (value === undefined) return [];
  const list = typeof value === "string" ? [value] : value;
  if (!Array.isArray(list) || list.some((item) => typeof item !== "string")) {
    throw invalidClaim(`"${permission}" must be an array of strings`);
  }
  if (list.length > 1000) throw invalidClaim(`"${permission}" has more than 1000 patterns`);
  return (list as string[]).map(compilePattern);
}

/**
 * Reads the `streamgate` claim: `{ "publish": [...], "subscribe": [...], "admin": [...] }`, each a list of
 * patterns (a single string is taken as a list of one). A missing claim grants nothing.
 * @throws StreamgateError UNAUTHENTICATED (TOKEN_CLAIMS_INVALID) for a claim of the wrong shape.
 */
export function grantsFromClaim(claim: unknown): Grants {
  if (claim === undefined) return noGrants;
  if (claim === null || typeof claim !== "object" || Array.isArray(claim)) throw invalidClaim("must be an object");
  const record = claim as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!Object.hasOwn(Permission, key)) {
      throw invalidClaim(`unknown permission "${key.slice(0, 40)}" (expected publish, subscribe or admin)`);
    }
  }
  const admin = compileList(record.admin, Permission.admin);
  const globalAdmin = admin.some((pattern) => EVERYTHING.has(pattern.text));
  return {
    publish: compileList(record.publish, Permission.publish),
    subscribe: compileList(record.subscribe, Permission.subscribe),
    admin,
    globalAdmin,
  };
}

function matches(patterns: readonly CompiledPattern[], name: string): boolean {
  const parts = name.split("/");
  if (parts.length !== 4) return false;
  for (const pattern of patterns) {
    const candidate = pattern.segments === 4 ? name : pattern.segments === 2 ? `${parts[2]}/${parts[3]}` : parts[3]!;
    if (pattern.regex.test(candidate)) return true;
  }
  return false;
}

/**
 * Whether `grants` allow `permission` on the resource `name` (`projects/{p}/{kind}/{id}`).
 * `admin` on a resource implies `publish` and `subscribe` on it.
 */
export function allows(grants: Grants, permission: Permission, name: string): boolean {
  if (matches(grants.admin, name)) return true;
  if (permission === Permission.admin) return false;
  return matches(grants[permission], name);
}

/** Whether `grants` allow anything at all on `name` (what Get* and List* need). */
export function allowsAny(grants: Grants, name: string): boolean {
  return matches(grants.admin, name) || matches(grants.publish, name) || matches(grants.subscribe, name);
}
