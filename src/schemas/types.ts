// Domain types of Pub/Sub schemas: definitions, revisions, the engine-facing store and its storage.
import type { Page, PageRequest } from "../broker/types.js";

/** The kinds of schema definitions (Pub/Sub's `Schema.Type`). */
export const SchemaType = {
  /** A `.proto` source; its first message type is the schema's message. */
  protocolBuffer: "PROTOCOL_BUFFER",
  /** An Avro schema in JSON. */
  avro: "AVRO",
} as const;
export type SchemaType = (typeof SchemaType)[keyof typeof SchemaType];

/** What a caller supplies for a new schema or revision. */
export interface SchemaDefinition {
  type: SchemaType;
  definition: string;
}

/** One revision of a schema, as stored and returned. */
export interface SchemaRevision extends SchemaDefinition {
  /** `projects/{p}/schemas/{s}` (never with `@revision`). */
  name: string;
  /** 8 lowercase hex digits, unique within the schema. */
  revisionId: string;
  /** Milliseconds since the epoch; strictly increasing within a schema. */
  revisionCreateTimeMs: number;
}

/**
 * The schemas of an engine (Pub/Sub's SchemaService minus validation, which needs no storage).
 * Every method throws StreamgateError: INVALID_ARGUMENT for a malformed name or definition,
 * NOT_FOUND (SCHEMA_NOT_FOUND) for a missing schema or revision.
 */
export interface Schemas {
  create(name: string, definition: SchemaDefinition): Promise<SchemaRevision>;
  /** The latest revision, or the one `name@revision` names. */
  get(name: string): Promise<SchemaRevision>;
  /** The latest revision of each schema of `project`, by name. */
  list(project: string, page: PageRequest): Promise<Page<SchemaRevision>>;
  /** Revisions of one schema, newest first. */
  listRevisions(name: string, page: PageRequest): Promise<Page<SchemaRevision>>;
  /** Adds a revision; the type must stay the schema's type. */
  commit(name: string, definition: SchemaDefinition): Promise<SchemaRevision>;
  /** Adds a revision that copies `revisionId`. */
  rollback(name: string, revisionId: string): Promise<SchemaRevision>;
  /** Deletes one revision (never the only one); returns it. */
  deleteRevision(name: string, revisionId: string): Promise<SchemaRevision>;
  /** Deletes the schema; topics using it get {@link DELETED_SCHEMA} and refuse publishes. */
  delete(name: string): Promise<void>;
}

/**
 * What an engine stores for schemas: every revision of every schema, read from memory, written durably.
 * A schema always has at least one revision.
 */
export interface SchemaStorage {
  /** Revisions of `name`, oldest first; undefined when there is no such schema. */
  revisions(name: string): readonly SchemaRevision[] | undefined;
  /** Names of every schema starting with `prefix`, sorted. */
  names(prefix: string): string[];
  /** @throws StreamgateError ALREADY_EXISTS when the schema exists. */
  create(name: string, revisions: SchemaRevision[]): Promise<void>;
  /**
   * Replaces the revisions of an existing schema, when they are still `expected` (the list this caller read).
   * @throws StreamgateError NOT_FOUND when it was deleted, ABORTED when another writer changed it first.
   */
  replace(name: string, expected: readonly SchemaRevision[], revisions: SchemaRevision[]): Promise<void>;
  /** Deletes the schema and points every topic using it at {@link DELETED_SCHEMA}. */
  remove(name: string): Promise<void>;
}
