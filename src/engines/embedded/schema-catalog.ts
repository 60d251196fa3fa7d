// Schemas of the embedded engine: every revision in SQLite, mirrored in memory (the SchemaStorage of the registry).
import type Database from "better-sqlite3";
import { DELETED_SCHEMA } from "../../broker/types.js";
import { Code, errors, StreamgateError } from "../../errors/index.js";
import { type SchemaRevision, type SchemaStorage, type SchemaType, schemaNotFound } from "../../schemas/index.js";
import type { EmbeddedContext } from "./embedded-context.js";
import type { TopicCatalog } from "./topic-catalog.js";

interface RevisionRow {
  name: string;
  revision_id: string;
  type: string;
  definition: string;
  create_time: number;
}

/** Writes go to SQLite in one transaction, then to memory; reads come from memory. */
export class SchemaCatalog implements SchemaStorage {
  private readonly byName = new Map<string, SchemaRevision[]>();
  private readonly statements;

  constructor(
    db: Database.Database,
    private readonly context: EmbeddedContext,
    private readonly topics: TopicCatalog,
  ) {
    this.statements = {
      all: db.prepare("SELECT * FROM schema_revisions ORDER BY name, position"),
      insert: db.prepare(
        "INSERT INTO schema_revisions (name, revision_id, position, type, definition, create_time) VALUES (?, ?, ?, ?, ?, ?)",
      ),
      remove: db.prepare("DELETE FROM schema_revisions WHERE name = ?"),
      dropPolicy: db.prepare("DELETE FROM iam_policies WHERE resource = ?"),
    };
    for (const row of this.statements.all.all() as RevisionRow[]) {
      const revisions = this.byName.get(row.name) ?? [];
      revisions.push({
        name: row.name,
        revisionId: row.revision_id,
        type: row.type as SchemaType,
        definition: row.definition,
        revisionCreateTimeMs: row.create_time,
      });
      this.byName.set(row.name, revisions);
    }
  }

  revisions(name: string): readonly SchemaRevision[] | undefined {
    return this.byName.get(name);
  }

  names(prefix: string): string[] {
    return [...this.byName.keys()].filter((name) => name.startsWith(prefix)).sort();
  }

  async create(name: string, revisions: SchemaRevision[]): Promise<void> {
    if (this.byName.has(name)) {
      throw errors.alreadyExists("schema", name);
    }
    this.context.messages.transaction(() => this.write(name, revisions));
    this.byName.set(name, revisions);
  }

  async replace(name: string, expected: readonly SchemaRevision[], revisions: SchemaRevision[]): Promise<void> {
    const current = this.byName.get(name);
    if (current === undefined) throw schemaNotFound(name);
    // One process owns the data dir and these calls run without awaiting in between: `expected` is current.
    if (current !== expected) {
      throw new StreamgateError(Code.ABORTED, `${name} was changed by another request at the same time; retry`, {
        reason: "SCHEMA_CONCURRENT_CHANGE",
        details: { resource: name },
      });
    }
    this.context.messages.transaction(() => {
      this.statements.remove.run(name);
      this.write(name, revisions);
    });
    this.byName.set(name, revisions);
  }

  async remove(name: string): Promise<void> {
    const users = this.topics.all().filter((state) => state.config.schemaSettings?.schema === name);
    const updated = users.map((state) => ({
      state,
      config: { ...state.config, schemaSettings: { ...state.config.schemaSettings!, schema: DELETED_SCHEMA } },
    }));
    this.context.messages.transaction(() => {
      this.statements.remove.run(name);
      // The schema's IAM policy goes with it, in the same transaction (a recreated schema starts without one).
      this.statements.dropPolicy.run(name);
      for (const { state, config } of updated) this.context.catalog.updateTopic(state.id, config);
    });
    for (const { state, config } of updated) state.config = config;
    this.byName.delete(name);
  }

  private write(name: string, revisions: SchemaRevision[]): void {
    for (const [position, revision] of revisions.entries()) {
      this.statements.insert.run(
        name,
        revision.revisionId,
        position,
        revision.type,
        revision.definition,
        revision.revisionCreateTimeMs,
      );
    }
  }
}
