// Pub/Sub schema semantics over an engine's SchemaStorage: revisions, rollback, topic settings, publish validation.
import { randomBytes } from "node:crypto";
import { parseSchemaName, validateProjectId } from "../broker/names.js";
import { decodePageToken, encodePageToken, resolvePageSize } from "../broker/page-token.js";
import {
  DELETED_SCHEMA,
  type MessageInput,
  type Page,
  type PageRequest,
  type SchemaSettings,
} from "../broker/types.js";
import { Code, errors, StreamgateError } from "../errors/index.js";
import { compileRevision, compileSchema } from "./schema-compiler.js";
import type { SchemaDefinition, SchemaRevision, SchemaStorage, Schemas } from "./types.js";

/** Pub/Sub keeps at most 20 revisions of a schema at a time. */
export const MAX_SCHEMA_REVISIONS = 20;

/** Pub/Sub's limit on schemas per project. */
export const MAX_PROJECT_SCHEMAS = 10_000;

/** The attributes Pub/Sub adds to every message validated against a schema. */
export const SchemaAttribute = {
  name: "googclient_schemaname",
  encoding: "googclient_schemaencoding",
  revisionId: "googclient_schemarevisionid",
} as const;

/** A missing schema or revision (reason SCHEMA_NOT_FOUND; `name@revision` for a revision). */
export function schemaNotFound(name: string): StreamgateError {
  return errors.notFound("schema", name);
}

/** Implements {@link Schemas} and the checks topics need, over one engine's storage. */
export class SchemaRegistry implements Schemas {
  constructor(
    private readonly storage: SchemaStorage,
    private readonly now: () => number = Date.now,
    /** Called after a schema is deleted (an engine drops what it keeps per schema, e.g. its IAM policy). */
    private readonly onDeleted: (name: string) => Promise<void> = async () => undefined,
  ) {}

  async create(name: string, definition: SchemaDefinition): Promise<SchemaRevision> {
    const { project } = parseSchemaName(name, "name");
    compileSchema(definition);
    if (this.storage.names(`projects/${project}/schemas/`).length >= MAX_PROJECT_SCHEMAS) {
      throw new StreamgateError(
        Code.RESOURCE_EXHAUSTED,
        `project ${project} already has ${MAX_PROJECT_SCHEMAS} schemas, the most a project keeps; delete one first`,
        { reason: "SCHEMAS_EXHAUSTED", details: { resource: `projects/${project}` } },
      );
    }
    const revision = this.newRevision(name, definition, []);
    await this.storage.create(name, [revision]);
    return { ...revision };
  }

  async get(name: string): Promise<SchemaRevision> {
    const { schema, revisionId } = parseSchemaName(name, "name", true);
    const revisions = this.require(schema);
    if (revisionId === null) return { ...revisions[revisions.length - 1]! };
    return { ...this.requireRevision(schema, revisions, revisionId) };
  }

  async list(project: string, page: PageRequest): Promise<Page<SchemaRevision>> {
    validateProjectId(project);
    const prefix = `projects/${project}/schemas/`;
    const limit = resolvePageSize(page.pageSize);
    const after = decodePageToken(page.pageToken, prefix);
    const names = this.storage.names(prefix).filter((name) => name > after);
    const items = names.slice(0, limit).flatMap((name) => {
      const revisions = this.storage.revisions(name);
      return revisions === undefined ? [] : [{ ...revisions[revisions.length - 1]! }];
    });
    const nextPageToken = names.length > limit ? encodePageToken(names[limit - 1]!) : "";
    return { items, nextPageToken };
  }

  async listRevisions(name: string, page: PageRequest): Promise<Page<SchemaRevision>> {
    parseSchemaName(name, "name");
    const newestFirst = [...this.require(name)].reverse();
    const limit = resolvePageSize(page.pageSize);
    let start = 0;
    if (page.pageToken !== "") {
      const after = decodePageToken(page.pageToken, "");
      start = newestFirst.findIndex((revision) => revision.revisionId === after) + 1;
      // The token's revision was deleted since: restarting would repeat revisions the caller has seen.
      if (start === 0) throw invalid("page_token", "names a revision that no longer exists; list again from the start");
    }
    const items = newestFirst.slice(start, start + limit).map((revision) => ({ ...revision }));
    const more = start + limit < newestFirst.length;
    return { items, nextPageToken: more ? encodePageToken(items[items.length - 1]!.revisionId) : "" };
  }

  async commit(name: string, definition: SchemaDefinition): Promise<SchemaRevision> {
    parseSchemaName(name, "name");
    const revisions = this.require(name);
    const type = revisions[0]!.type;
    if (definition.type !== type) {
      throw new StreamgateError(
        Code.INVALID_ARGUMENT,
        `schema.type: a revision of ${name} must keep the schema's type ${type}, got ${definition.type}`,
        { reason: "INVALID_ARGUMENT", details: { field: "schema.type" } },
      );
    }
    compileSchema(definition);
    return this.append(name, revisions, definition);
  }

  async rollback(name: string, revisionId: string): Promise<SchemaRevision> {
    parseSchemaName(name, "name");
    if (revisionId === "") throw invalid("revision_id", "is required");
    const revisions = this.require(name);
    const target = this.requireRevision(name, revisions, revisionId);
    return this.append(name, revisions, { type: target.type, definition: target.definition });
  }

  async deleteRevision(name: string, revisionId: string): Promise<SchemaRevision> {
    const parsed = parseSchemaName(name, "name", true);
    const id = parsed.revisionId ?? revisionId;
    if (id === "") throw invalid("name", `name the revision to delete as ${parsed.schema}@{revision}`);
    if (parsed.revisionId !== null && revisionId !== "" && revisionId !== parsed.revisionId) {
      throw invalid("revision_id", `"${revisionId}" differs from the revision in the name ("${parsed.revisionId}")`);
    }
    const revisions = this.require(parsed.schema);
    const target = this.requireRevision(parsed.schema, revisions, id);
    if (revisions.length === 1) {
      throw new StreamgateError(
        Code.FAILED_PRECONDITION,
        `revision ${id} is the only revision of ${parsed.schema}; delete the schema instead`,
        { reason: "SCHEMA_LAST_REVISION", details: { resource: parsed.schema } },
      );
    }
    await this.storage.replace(
      parsed.schema,
      revisions,
      revisions.filter((revision) => revision !== target),
    );
    return { ...target };
  }

  async delete(name: string): Promise<void> {
    parseSchemaName(name, "name");
    this.require(name);
    await this.storage.remove(name);
    await this.onDeleted(name);
  }

  /**
   * The stored revisions of schema `name` (oldest first), for lookups that must not wait (IAM policies).
   * @throws StreamgateError NOT_FOUND when the schema does not exist.
   */
  requireRevisions(name: string): readonly SchemaRevision[] {
    return this.require(name);
  }

  /**
   * Checks a topic's schema settings against the stored schema (create or update of a topic).
   * @throws StreamgateError NOT_FOUND for a missing schema or revision, INVALID_ARGUMENT for a reversed range.
   */
  checkTopicSettings(settings: SchemaSettings | null): void {
    if (!settings) return;
    if (settings.schema !== DELETED_SCHEMA) parseSchemaName(settings.schema, "schema_settings.schema");
    const revisions = this.storage.revisions(settings.schema);
    if (revisions === undefined) throw schemaNotFound(settings.schema);
    const first =
      settings.firstRevisionId === "" ? 0 : this.indexOf(settings.schema, revisions, settings.firstRevisionId);
    const last =
      settings.lastRevisionId === ""
        ? revisions.length - 1
        : this.indexOf(settings.schema, revisions, settings.lastRevisionId);
    if (first > last) {
      throw invalid(
        "schema_settings.first_revision_id",
        `revision ${settings.firstRevisionId} is newer than last_revision_id ${settings.lastRevisionId}`,
      );
    }
  }

  /**
   * Validates each message against the topic's schema revisions (newest in range first) and returns
   * them with the `googclient_schema*` attributes of the revision that matched.
   * @throws StreamgateError INVALID_ARGUMENT naming the first bad message's index and the schema error;
   *   FAILED_PRECONDITION (SCHEMA_DELETED) when the topic's schema was deleted.
   */
  prepareMessages(settings: SchemaSettings | null | undefined, messages: MessageInput[]): MessageInput[] {
    if (!settings) return messages;
    const revisions = settings.schema === DELETED_SCHEMA ? undefined : this.storage.revisions(settings.schema);
    if (revisions === undefined) {
      throw new StreamgateError(
        Code.FAILED_PRECONDITION,
        `the topic's schema ${settings.schema === DELETED_SCHEMA ? "" : `${settings.schema} `}was deleted; update the topic's schema_settings to publish to it`,
        { reason: "SCHEMA_DELETED" },
      );
    }
    const candidates = inRange(revisions, settings).reverse();
    if (candidates.length === 0) {
      throw new StreamgateError(
        Code.FAILED_PRECONDITION,
        `no revision of ${settings.schema} lies between the topic's first_revision_id and last_revision_id; update its schema_settings`,
        { reason: "SCHEMA_DELETED" },
      );
    }
    return messages.map((message, index) => {
      let firstError: unknown;
      for (const revision of candidates) {
        try {
          compileRevision(revision).validate(message.data, settings.encoding);
        } catch (error) {
          firstError ??= error;
          continue;
        }
        return {
          ...message,
          attributes: {
            ...message.attributes,
            [SchemaAttribute.name]: settings.schema,
            [SchemaAttribute.encoding]: settings.encoding,
            [SchemaAttribute.revisionId]: revision.revisionId,
          },
        };
      }
      const reason = firstError instanceof Error ? firstError.message : String(firstError);
      throw new StreamgateError(
        Code.INVALID_ARGUMENT,
        `messages[${index}]: the ${settings.encoding} data does not match schema ${settings.schema} (revision ${candidates[0]?.revisionId}): ${reason}`,
        { reason: "SCHEMA_VALIDATION_FAILED", details: { field: `messages[${index}].data` } },
      );
    });
  }

  private require(name: string): readonly SchemaRevision[] {
    const revisions = this.storage.revisions(name);
    if (revisions === undefined || revisions.length === 0) throw schemaNotFound(name);
    return revisions;
  }

  private requireRevision(name: string, revisions: readonly SchemaRevision[], revisionId: string): SchemaRevision {
    const found = revisions.find((revision) => revision.revisionId === revisionId);
    if (found === undefined) throw schemaNotFound(`${name}@${revisionId}`);
    return found;
  }

  private indexOf(name: string, revisions: readonly SchemaRevision[], revisionId: string): number {
    const index = revisions.findIndex((revision) => revision.revisionId === revisionId);
    if (index === -1) throw schemaNotFound(`${name}@${revisionId}`);
    return index;
  }

  private async append(
    name: string,
    revisions: readonly SchemaRevision[],
    definition: SchemaDefinition,
  ): Promise<SchemaRevision> {
    if (revisions.length >= MAX_SCHEMA_REVISIONS) {
      throw new StreamgateError(
        Code.RESOURCE_EXHAUSTED,
        `${name} already has ${MAX_SCHEMA_REVISIONS} revisions, the most a schema keeps; delete one with DeleteSchemaRevision first`,
        { reason: "SCHEMA_REVISIONS_EXHAUSTED", details: { resource: name } },
      );
    }
    const revision = this.newRevision(name, definition, revisions);
    await this.storage.replace(name, revisions, [...revisions, revision]);
    return { ...revision };
  }

  private newRevision(name: string, definition: SchemaDefinition, existing: readonly SchemaRevision[]): SchemaRevision {
    const taken = new Set(existing.map((revision) => revision.revisionId));
    let revisionId = randomBytes(4).toString("hex");
    while (taken.has(revisionId)) revisionId = randomBytes(4).toString("hex");
    // Strictly increasing, so "newest" and revision ranges never depend on clock resolution.
    const latest = existing[existing.length - 1]?.revisionCreateTimeMs ?? 0;
    return {
      name,
      type: definition.type,
      definition: definition.definition,
      revisionId,
      revisionCreateTimeMs: Math.max(this.now(), latest + 1),
    };
  }
}

/** The revisions a topic's settings allow, oldest first (a bound whose revision was deleted is open). */
function inRange(revisions: readonly SchemaRevision[], settings: SchemaSettings): SchemaRevision[] {
  const first = revisions.findIndex((revision) => revision.revisionId === settings.firstRevisionId);
  const last = revisions.findIndex((revision) => revision.revisionId === settings.lastRevisionId);
  return revisions.slice(Math.max(first, 0), last === -1 ? revisions.length : last + 1);
}

function invalid(field: string, message: string): StreamgateError {
  return new StreamgateError(Code.INVALID_ARGUMENT, `${field}: ${message}`, {
    reason: "INVALID_ARGUMENT",
    details: { field },
  });
}
