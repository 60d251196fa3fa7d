// The Pub/Sub v1 REST routes of SchemaService (`/v1/projects/{p}/schemas…`), as Pub/Sub's REST API names them.
import type { DescMethod } from "@bufbuild/protobuf";
import { SchemaService } from "../../gen/google/pubsub/v1/schema_pb.js";
import type { RestRoute } from "./pubsub-routes.js";

const id = "[^/:]+";
const projectPath = `^/v1/(?<name>projects/(?<project>${id}))`;
// A schema id may carry `@{revision}` (GET …/schemas/s@1a2b3c4d).
const schemaPath = `^/v1/(?<name>projects/(?<project>${id})/schemas/${id})`;

const rpc = (name: string): DescMethod => {
  const found = SchemaService.methods.find((m) => m.localName === name);
  if (found === undefined) throw new Error(`no method ${name}`);
  return found;
};
/** `view`, `pageSize` and `pageToken` query parameters, when present. */
const query = (q: URLSearchParams, ...keys: string[]) =>
  Object.fromEntries(
    keys.flatMap((key) => {
      const value = q.get(key);
      if (value === null) return [];
      return [[key, key === "pageSize" ? Number(value) : value]];
    }),
  );

/** Every SchemaService REST route. */
export const schemaRoutes: RestRoute[] = [
  {
    httpMethod: "GET",
    pattern: new RegExp(`${projectPath}/schemas$`),
    rpc: rpc("listSchemas"),
    request: (n, _p, _b, q) => ({ parent: n, ...query(q, "view", "pageSize", "pageToken") }),
  },
  {
    httpMethod: "POST",
    pattern: new RegExp(`${projectPath}/schemas$`),
    rpc: rpc("createSchema"),
    // The body is the Schema; the id comes in the query (`?schemaId=`).
    request: (n, _p, b, q) => ({ parent: n, schema: b, schemaId: q.get("schemaId") ?? "" }),
  },
  {
    httpMethod: "POST",
    pattern: new RegExp(`${projectPath}/schemas:validate$`),
    rpc: rpc("validateSchema"),
    request: (n, _p, b) => ({ ...b, parent: n }),
  },
  {
    httpMethod: "POST",
    pattern: new RegExp(`${projectPath}/schemas:validateMessage$`),
    rpc: rpc("validateMessage"),
    request: (n, _p, b) => ({ ...b, parent: n }),
  },
  {
    httpMethod: "GET",
    pattern: new RegExp(`${schemaPath}:listRevisions$`),
    rpc: rpc("listSchemaRevisions"),
    request: (n, _p, _b, q) => ({ name: n, ...query(q, "view", "pageSize", "pageToken") }),
  },
  {
    httpMethod: "POST",
    pattern: new RegExp(`${schemaPath}:commit$`),
    rpc: rpc("commitSchema"),
    request: (n, _p, b) => ({ ...b, name: n }),
  },
  {
    httpMethod: "POST",
    pattern: new RegExp(`${schemaPath}:rollback$`),
    rpc: rpc("rollbackSchema"),
    request: (n, _p, b) => ({ ...b, name: n }),
  },
  {
    httpMethod: "DELETE",
    pattern: new RegExp(`${schemaPath}:deleteRevision$`),
    rpc: rpc("deleteSchemaRevision"),
    request: (n, _p, _b, q) => ({ name: n, ...query(q, "revisionId") }),
  },
  {
    httpMethod: "GET",
    pattern: new RegExp(`${schemaPath}$`),
    rpc: rpc("getSchema"),
    request: (n, _p, _b, q) => ({ name: n, ...query(q, "view") }),
  },
  {
    httpMethod: "DELETE",
    pattern: new RegExp(`${schemaPath}$`),
    rpc: rpc("deleteSchema"),
    request: (n) => ({ name: n }),
  },
];
