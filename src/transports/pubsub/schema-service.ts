// google.pubsub.v1.SchemaService over the Engine's schemas: validates, converts and delegates (shared by gRPC and REST).
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { parseProjectName } from "../../broker/names.js";
import { SchemaEncoding } from "../../broker/types.js";
import type { Engine } from "../../engines/engine.js";
import { Code, errors, StreamgateError } from "../../errors/index.js";
import {
  Encoding,
  Schema_Type,
  type Schema as SchemaProto,
  SchemaSchema,
  type SchemaService,
  SchemaView,
} from "../../gen/google/pubsub/v1/schema_pb.js";
import {
  type CompiledSchema,
  compileRevision,
  compileSchema,
  type SchemaDefinition,
  type SchemaRevision,
  SchemaType,
} from "../../schemas/index.js";
import { msToTimestamp } from "./convert.js";
import { pageSize } from "./limits.js";

/** A revision as Pub/Sub returns it; the BASIC view leaves out the definition. */
export function schemaToProto(revision: SchemaRevision, view: SchemaView): SchemaProto {
  return create(SchemaSchema, {
    name: revision.name,
    type: revision.type === SchemaType.avro ? Schema_Type.AVRO : Schema_Type.PROTOCOL_BUFFER,
    definition: view === SchemaView.BASIC ? "" : revision.definition,
    revisionId: revision.revisionId,
    revisionCreateTime: msToTimestamp(revision.revisionCreateTimeMs),
  });
}

/** The type and definition of a request's schema; INVALID_ARGUMENT naming `field` when absent or untyped. */
function definitionFromProto(proto: SchemaProto | undefined, field: string): SchemaDefinition {
  if (proto === undefined) throw errors.invalidArgument(field, "is required");
  const type =
    proto.type === Schema_Type.AVRO
      ? SchemaType.avro
      : proto.type === Schema_Type.PROTOCOL_BUFFER
        ? SchemaType.protocolBuffer
        : null;
  if (type === null) throw errors.invalidArgument(`${field}.type`, "must be AVRO or PROTOCOL_BUFFER");
  return { type, definition: proto.definition };
}

function encodingFromProto(encoding: Encoding): SchemaEncoding {
  if (encoding === Encoding.JSON) return SchemaEncoding.json;
  if (encoding === Encoding.BINARY) return SchemaEncoding.binary;
  throw errors.invalidArgument("encoding", "must be JSON or BINARY");
}

/** Implements every SchemaService method; errors are StreamgateErrors (mapped by the transport). */
export function createSchemaService(engine: Engine): ServiceImpl<typeof SchemaService> {
  const { schemas } = engine;
  return {
    async createSchema(request) {
      parseProjectName(request.parent, "parent");
      if (request.schemaId === "") throw errors.invalidArgument("schema_id", "is required");
      const definition = definitionFromProto(request.schema, "schema");
      const revision = await schemas.create(`${request.parent}/schemas/${request.schemaId}`, definition);
      return schemaToProto(revision, SchemaView.FULL);
    },
    async getSchema(request) {
      const view = request.view === SchemaView.BASIC ? SchemaView.BASIC : SchemaView.FULL;
      return schemaToProto(await schemas.get(request.name), view);
    },
    async listSchemas(request) {
      const project = parseProjectName(request.parent, "parent");
      const page = await schemas.list(project, { pageSize: pageSize(request.pageSize), pageToken: request.pageToken });
      const view = request.view === SchemaView.FULL ? SchemaView.FULL : SchemaView.BASIC;
      return { schemas: page.items.map((item) => schemaToProto(item, view)), nextPageToken: page.nextPageToken };
    },
    async listSchemaRevisions(request) {
      const page = await schemas.listRevisions(request.name, {
        pageSize: pageSize(request.pageSize),
        pageToken: request.pageToken,
      });
      const view = request.view === SchemaView.FULL ? SchemaView.FULL : SchemaView.BASIC;
      return { schemas: page.items.map((item) => schemaToProto(item, view)), nextPageToken: page.nextPageToken };
    },
    async commitSchema(request) {
      const revision = await schemas.commit(request.name, definitionFromProto(request.schema, "schema"));
      return schemaToProto(revision, SchemaView.FULL);
    },
    async rollbackSchema(request) {
      return schemaToProto(await schemas.rollback(request.name, request.revisionId), SchemaView.FULL);
    },
    async deleteSchemaRevision(request) {
      return schemaToProto(await schemas.deleteRevision(request.name, request.revisionId), SchemaView.FULL);
    },
    async deleteSchema(request) {
      await schemas.delete(request.name);
      return {};
    },
    async validateSchema(request) {
      parseProjectName(request.parent, "parent");
      compileSchema(definitionFromProto(request.schema, "schema"));
      return {};
    },
    async validateMessage(request) {
      parseProjectName(request.parent, "parent");
      const encoding = encodingFromProto(request.encoding);
      const spec = request.schemaSpec;
      let compiled: CompiledSchema;
      if (spec.case === "name") compiled = compileRevision(await schemas.get(spec.value));
      else if (spec.case === "schema") compiled = compileSchema(definitionFromProto(spec.value, "schema"));
      else throw errors.invalidArgument("name", "name a schema (name) or give one (schema)");
      try {
        compiled.validate(request.message, encoding);
      } catch (error) {
        if (error instanceof StreamgateError) throw error;
        const reason = error instanceof Error ? error.message : String(error);
        throw new StreamgateError(
          Code.INVALID_ARGUMENT,
          `message: the ${encoding} data does not match the schema: ${reason}`,
          {
            reason: "SCHEMA_VALIDATION_FAILED",
            details: { field: "message" },
          },
        );
      }
      return {};
    },
  };
}
