// Parses Avro (avsc) and Protocol Buffer (protobufjs) definitions and validates messages against them.
import avro from "avsc";
import protobuf from "protobufjs";
import protojson from "protobufjs/ext/protojson.js";
import { SchemaEncoding } from "../broker/types.js";
import { errors } from "../errors/index.js";
import { type SchemaDefinition, type SchemaRevision, SchemaType } from "./types.js";

/** Pub/Sub's limit on a schema definition, in bytes. */
export const MAX_DEFINITION_BYTES = 300_000;

/** A parsed definition, ready to validate messages. */
export interface CompiledSchema {
  /** @throws Error whose message says why `data` does not match (no field prefix). */
  validate(data: Uint8Array, encoding: SchemaEncoding): void;
}

/**
 * Compiled stored revisions, so a topic's revisions are parsed once, not per publish. Keyed by revision
 * (immutable), bounded, and never filled by inline definitions (ValidateSchema, ValidateMessage), which
 * any caller controls.
 */
const revisionCache = new Map<string, CompiledSchema>();
const CACHE_ENTRIES = 256;

/** The compiled form of a stored revision (cached; see {@link compileSchema} for errors). */
export function compileRevision(revision: SchemaRevision): CompiledSchema {
  const key = `${revision.name}@${revision.revisionId}@${revision.revisionCreateTimeMs}`;
  const cached = revisionCache.get(key);
  if (cached !== undefined) {
    // Most recently used last, so eviction drops the coldest revision.
    revisionCache.delete(key);
    revisionCache.set(key, cached);
    return cached;
  }
  const compiled = compileSchema(revision);
  if (revisionCache.size >= CACHE_ENTRIES) revisionCache.delete(revisionCache.keys().next().value as string);
  revisionCache.set(key, compiled);
  return compiled;
}

/**
 * Parses a definition (what ValidateSchema, CreateSchema and CommitSchema check).
 * @param field - the request field named in errors, e.g. `schema`.
 * @throws StreamgateError INVALID_ARGUMENT naming `field.type` or `field.definition` and what is wrong.
 */
export function compileSchema(schema: SchemaDefinition, field = "schema"): CompiledSchema {
  if (schema.type !== SchemaType.avro && schema.type !== SchemaType.protocolBuffer) {
    throw errors.invalidArgument(`${field}.type`, "must be AVRO or PROTOCOL_BUFFER");
  }
  if (typeof schema.definition !== "string" || schema.definition.trim() === "") {
    throw errors.invalidArgument(`${field}.definition`, "is required");
  }
  const bytes = Buffer.byteLength(schema.definition);
  if (bytes > MAX_DEFINITION_BYTES) {
    throw errors.invalidArgument(
      `${field}.definition`,
      `is ${bytes} bytes; at most ${MAX_DEFINITION_BYTES} are allowed`,
    );
  }
  try {
    return schema.type === SchemaType.avro ? compileAvro(schema.definition) : compileProto(schema.definition);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    const kind = schema.type === SchemaType.avro ? "Avro schema" : "Protocol Buffer definition";
    throw errors.invalidArgument(`${field}.definition`, `is not a valid ${kind}: ${reason}`);
  }
}

function compileAvro(definition: string): CompiledSchema {
  const type = avro.Type.forSchema(JSON.parse(definition) as avro.Schema);
  return {
    validate(data, encoding) {
      if (encoding === SchemaEncoding.binary) {
        type.fromBuffer(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
        return;
      }
      type.fromString(jsonText(data));
    },
  };
}

function compileProto(definition: string): CompiledSchema {
  const parsed = protobuf.parse(definition);
  if ((parsed.imports?.length ?? 0) > 0 || (parsed.weakImports?.length ?? 0) > 0) {
    throw new Error(
      `imports are not supported (found ${[...(parsed.imports ?? []), ...(parsed.weakImports ?? [])].join(", ")})`,
    );
  }
  parsed.root.resolveAll();
  // Pub/Sub's rule: exactly one top-level type, and it is the message (nested types are fine).
  const declared = topLevelTypes(parsed.root);
  const type = declared[0];
  if (declared.length !== 1 || !(type instanceof protobuf.Type)) {
    const found = declared.map((item) => `${item instanceof protobuf.Type ? "message" : "enum"} ${item.name}`);
    throw new Error(
      `it must define exactly one top-level type, a message; found ${found.length === 0 ? "none" : found.join(", ")}`,
    );
  }
  return {
    validate(data, encoding) {
      if (encoding === SchemaEncoding.binary) {
        type.decode(data);
        return;
      }
      protojson.fromJsonString(type, jsonText(data));
    },
  };
}

/** Messages and enums declared at the top of the file (inside its package, if any). */
function topLevelTypes(namespace: protobuf.NamespaceBase): (protobuf.Type | protobuf.Enum)[] {
  return namespace.nestedArray.flatMap((nested) => {
    if (nested instanceof protobuf.Type || nested instanceof protobuf.Enum) return [nested];
    // A plain namespace is a segment of the package name.
    return nested instanceof protobuf.Namespace ? topLevelTypes(nested) : [];
  });
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function jsonText(data: Uint8Array): string {
  try {
    return utf8.decode(data);
  } catch {
    throw new Error("JSON encoding expects UTF-8 text");
  }
}
