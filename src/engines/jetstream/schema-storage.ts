// Schemas of the JetStream engine: one catalog record per schema holding all its revisions, shared by every instance.
import { DELETED_SCHEMA } from "../../broker/types.js";
import { Code, StreamgateError } from "../../errors/index.js";
import { type SchemaRevision, type SchemaStorage, schemaNotFound } from "../../schemas/index.js";
import type { Catalog } from "./catalog.js";

/** Room left in a NATS message for the KV headers around a record. */
const HEADER_ROOM_BYTES = 4096;

/** Writes are compare-and-set on the schema's record, so two instances committing at once cannot lose a revision. */
export class JetStreamSchemaStorage implements SchemaStorage {
  constructor(
    private readonly catalog: Catalog,
    /** The NATS server's max_payload: a record (all revisions of a schema) must fit in one message. */
    private readonly maxPayloadBytes: () => number,
  ) {}

  revisions(name: string): readonly SchemaRevision[] | undefined {
    return this.catalog.get("schema", name)?.revisions;
  }

  names(prefix: string): string[] {
    return this.catalog
      .all("schema")
      .map((record) => record.revisions[0]?.name ?? "")
      .filter((name) => name !== "" && name.startsWith(prefix))
      .sort();
  }

  async create(name: string, revisions: SchemaRevision[]): Promise<void> {
    this.checkSize(name, revisions);
    await this.catalog.create("schema", name, { revisions });
  }

  async replace(name: string, expected: readonly SchemaRevision[], revisions: SchemaRevision[]): Promise<void> {
    const current = this.catalog.get("schema", name);
    if (current === undefined) throw schemaNotFound(name);
    this.checkSize(name, revisions);
    if (current.revisions !== expected || !(await this.catalog.putIfUnchanged("schema", name, { revisions }))) {
      throw concurrentChange(name);
    }
  }

  async remove(name: string): Promise<void> {
    if (!(await this.catalog.removeIfUnchanged("schema", name))) {
      if (this.catalog.get("schema", name) === undefined) throw schemaNotFound(name);
      throw concurrentChange(name);
    }
    for (const record of this.catalog.all("topic")) {
      const settings = record.config.schemaSettings;
      if (!settings || settings.schema !== name) continue;
      const config = { ...record.config, schemaSettings: { ...settings, schema: DELETED_SCHEMA } };
      await this.catalog.put("topic", config.name, { ...record, config });
    }
  }

  private checkSize(name: string, revisions: SchemaRevision[]): void {
    const bytes = Buffer.byteLength(JSON.stringify({ revisions }));
    const limit = this.maxPayloadBytes() - HEADER_ROOM_BYTES;
    if (bytes > limit) {
      throw new StreamgateError(
        Code.RESOURCE_EXHAUSTED,
        `the revisions of ${name} would take ${bytes} bytes, more than the ${limit} one NATS message holds here; delete old revisions (DeleteSchemaRevision) or raise the NATS server's max_payload`,
        { reason: "SCHEMA_TOO_LARGE", details: { resource: name } },
      );
    }
  }
}

function concurrentChange(name: string): StreamgateError {
  return new StreamgateError(Code.ABORTED, `${name} was changed by another request at the same time; retry`, {
    reason: "SCHEMA_CONCURRENT_CHANGE",
    details: { resource: name },
  });
}
