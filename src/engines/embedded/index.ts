// Public surface of the embedded (SQLite) engine.
export { createEmbeddedEngine, type EmbeddedEngine } from "./embedded-engine.js";
export {
  EMBEDDED_ENGINE_DEFAULTS,
  type EmbeddedEngineOptions,
  type ResolvedEmbeddedEngineOptions,
  resolveEmbeddedEngineOptions,
} from "./embedded-engine-options.js";
export { DATABASE_FILE_NAME, SCHEMA_VERSION } from "./sqlite-schema.js";
