// Serves the Pub/Sub REST API by decoding JSON into the same request messages the gRPC services take.

import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { create, fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { createHandlerContext } from "@connectrpc/connect";
import { Code, errors, StreamgateError } from "../../errors/index.js";
import {
  type AnyRequest,
  type AnyResponse,
  PayloadTooLargeError,
  type Route,
  type RouteParams,
  readBody,
  requestUrl,
  sendError,
  sendJson,
} from "../../http/index.js";
import { iamRoutes } from "./iam-routes.js";
import { pubsubRoutes, type RestRoute } from "./pubsub-routes.js";
import { schemaRoutes } from "./schema-routes.js";

/** Every REST route served: Pub/Sub's, SchemaService's and IAMPolicy's on Pub/Sub resources. */
const routes = [...pubsubRoutes, ...schemaRoutes, ...iamRoutes];

/** A service implementation keyed by method local name (what connect's ServiceImpl is). */
type Implementation = Record<string, (request: never, context: never) => unknown>;

export interface RestHandlerOptions {
  services: { descriptor: DescService; implementation: Implementation }[];
  /** Largest accepted body in bytes. */
  maxRequestBytes: number;
  /** Aborts in-flight calls (long polls) on shutdown. */
  shutdownSignal: AbortSignal;
}

/**
 * The Pub/Sub REST routes for the edge's route table: one per REST method (Pub/Sub's, SchemaService's, IAMPolicy's),
 * then a fallback that answers any other path under /v1/projects/ with Pub/Sub's HTML 404 page.
 */
export function createRestRoutes(options: RestHandlerOptions): Route[] {
  const implementations = new Map<string, Implementation>();
  for (const { descriptor, implementation } of options.services)
    implementations.set(descriptor.typeName, implementation);

  const serve = async (route: RestRoute, request: AnyRequest, response: AnyResponse, params: RouteParams) => {
    const url = requestUrl(request);
    try {
      const name = decodeName(params.name ?? "");
      const body = await readJsonBody(request, options.maxRequestBytes);
      const json = route.request(name, params.project ?? "", body, url.searchParams);
      const rpc: DescMethod = route.rpc;
      let message: ReturnType<typeof fromJson>;
      try {
        message = fromJson(rpc.input, json as JsonValue, { ignoreUnknownFields: false });
      } catch (error) {
        throw errors.invalidArgument("body", error instanceof Error ? error.message : String(error));
      }
      const implementation = implementations.get(rpc.parent.typeName);
      const method = implementation?.[rpc.localName];
      if (method === undefined) throw new StreamgateError(Code.UNIMPLEMENTED, `${rpc.name} is not implemented`);
      const abort = new AbortController();
      const onClose = () => abort.abort(new StreamgateError(Code.CANCELLED, "client closed the request"));
      response.once("close", onClose);
      const context = createHandlerContext({
        service: rpc.parent,
        method: rpc,
        protocolName: "rest",
        requestMethod: request.method ?? "GET",
        url: url.toString(),
        requestSignal: abort.signal,
        shutdownSignal: options.shutdownSignal,
        requestHeader: headersOf(request),
      });
      try {
        const result = await (method as (r: unknown, c: unknown) => Promise<unknown>)(message, context);
        const output = create(rpc.output, result as never);
        sendJson(response, 200, toJson(rpc.output, output));
      } finally {
        response.off("close", onClose);
        context.abort(); // unlinks the context from the shutdown signal (one listener per request otherwise)
      }
    } catch (error) {
      if (error instanceof PayloadTooLargeError) {
        response.setHeader("connection", "close");
        sendJsonError413(response, error);
      } else sendError(response, error);
    }
  };

  return [
    ...routes.map(
      (route): Route => ({
        methods: [route.httpMethod],
        path: route.pattern,
        handle: (request, response, params) => serve(route, request, response, params),
      }),
    ),
    {
      methods: [],
      path: /^\/v1\/projects\//,
      fallback: true,
      handle: (request, response) => sendUnknownPath(response, requestUrl(request).pathname),
    },
  ];
}

/**
 * An unknown path in the Pub/Sub REST namespace: 404 with an HTML page, as Pub/Sub's front end answers
 * (not a JSON NOT_FOUND error, which clients read as "the topic does not exist").
 */
function sendUnknownPath(response: AnyResponse, path: string): void {
  const escaped = path.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const body =
    `<!DOCTYPE html>\n<html lang=en>\n<meta charset=utf-8>\n<title>Error 404 (Not Found)</title>\n` +
    `<p><b>404.</b> The requested URL <code>${escaped}</code> was not found on this server. ` +
    `No Pub/Sub REST method has this path (see docs/pubsub.md for the routes streamgate serves).\n`;
  response.writeHead(404, { "content-type": "text/html; charset=UTF-8", "content-length": Buffer.byteLength(body) });
  response.end(body);
}

function sendJsonError413(response: AnyResponse, error: PayloadTooLargeError): void {
  sendJson(response, 413, { error: { code: 413, message: error.message, status: "RESOURCE_EXHAUSTED", details: [] } });
}

function decodeName(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw errors.invalidArgument("name", `"${raw}" is not a valid URL-encoded resource name`);
  }
}

async function readJsonBody(request: AnyRequest, maxBytes: number): Promise<Record<string, unknown>> {
  const raw = await readBody(request, maxBytes);
  if (raw.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString("utf8"));
  } catch (error) {
    throw errors.invalidArgument("body", `malformed JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw errors.invalidArgument("body", "must be a JSON object");
  }
  return parsed as Record<string, unknown>;
}

function headersOf(request: AnyRequest): Headers {
  const headers = new Headers();
  for (const [key, value] of Object.entries(request.headers)) {
    if (key.startsWith(":") || value === undefined || value === null) continue;
    headers.set(key, Array.isArray(value) ? value.join(", ") : String(value));
  }
  return headers;
}
