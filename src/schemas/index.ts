// Public surface of Pub/Sub schemas: types, the registry engines build on their storage, and validation.
export { type CompiledSchema, compileRevision, compileSchema, MAX_DEFINITION_BYTES } from "./schema-compiler.js";
export { MAX_SCHEMA_REVISIONS, SchemaAttribute, SchemaRegistry, schemaNotFound } from "./schema-registry.js";
export * from "./types.js";
