// Writes JSON bodies and Google-style JSON errors on node:http / node:http2 responses.
import { STATUS_CODES } from "node:http";
import type { connectNodeAdapter } from "@connectrpc/connect-node";
import { codeName, errors, httpStatusByCode, StreamgateError } from "../errors/index.js";

type NodeHandler = ReturnType<typeof connectNodeAdapter>;
/** An HTTP/1.1 or HTTP/2 request, as connect-node hands it over. */
export type AnyRequest = Parameters<NodeHandler>[0];
/** An HTTP/1.1 or HTTP/2 response, as connect-node hands it over. */
export type AnyResponse = Parameters<NodeHandler>[1];

export function sendJson(response: AnyResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  if (response.headersSent) {
    response.end();
    return;
  }
  response.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
  });
  response.end(text);
}

/** Google's JSON error shape: `{"error": {"code": 404, "message": "...", "status": "NOT_FOUND"}}`. */
export function sendError(response: AnyResponse, error: unknown): void {
  const normalized = StreamgateError.from(error);
  const status = httpStatusByCode[normalized.code];
  // Rate limits say when to come back (RFC 9110 retry-after, in seconds).
  const retryAfter = normalized.details.retryAfterSeconds;
  if (retryAfter !== undefined && !response.headersSent) response.setHeader("retry-after", retryAfter);
  sendJson(response, status, errorBody(normalized, status));
}

/**
 * A whole HTTP/1.1 error response with the same JSON body as {@link sendError}, for a raw socket
 * that has no response object (unparseable requests, refused upgrades); the connection then closes.
 * @param httpStatus - overrides the code's status (e.g. 431 for oversized headers).
 */
export function rawErrorResponse(error: unknown, httpStatus?: number): string {
  const normalized = StreamgateError.from(error);
  const status = httpStatus ?? httpStatusByCode[normalized.code];
  const text = errorJson(normalized, status);
  const retryAfter = normalized.details.retryAfterSeconds;
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\nconnection: close\r\n` +
    `content-type: application/json; charset=utf-8\r\ncache-control: no-store\r\n` +
    (retryAfter === undefined ? "" : `retry-after: ${retryAfter}\r\n`) +
    `content-length: ${Buffer.byteLength(text)}\r\n\r\n${text}`
  );
}

/** The Google-style JSON error text of {@link sendError}, for writers that have no response object. */
export function errorJson(error: StreamgateError, status = httpStatusByCode[error.code]): string {
  return JSON.stringify(errorBody(error, status));
}

function errorBody(normalized: StreamgateError, status: number) {
  const details =
    Object.keys(normalized.details).length === 0
      ? []
      : [
          {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            reason: normalized.reason,
            domain: "streamgate",
            metadata: normalized.details,
          },
        ];
  return { error: { code: status, message: normalized.message, status: codeName(normalized.code), details } };
}

/** Reads a request body up to `maxBytes`; larger bodies fail with RESOURCE_EXHAUSTED (HTTP 429→ we send 413). */
export async function readBody(request: AnyRequest, maxBytes: number): Promise<Buffer> {
  const declared = Number(request.headers["content-length"] ?? "0");
  if (declared > maxBytes) throw tooLarge(maxBytes);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw tooLarge(maxBytes);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Thrown for bodies over the limit; the REST handler answers 413. */
export class PayloadTooLargeError extends StreamgateError {
  constructor(maxBytes: number) {
    super(8, `request body exceeds the limit of ${maxBytes} bytes`, { reason: "REQUEST_TOO_LARGE" });
  }
}

function tooLarge(maxBytes: number): PayloadTooLargeError {
  return new PayloadTooLargeError(maxBytes);
}

/**
 * The URL of a request; a target no URL parser accepts (e.g. `//`, which reads as an empty host)
 * is INVALID_ARGUMENT instead of a TypeError that would surface as INTERNAL.
 */
export function requestUrl(request: AnyRequest): URL {
  const target = request.url ?? "/";
  try {
    return new URL(target, "http://localhost");
  } catch {
    throw errors.invalidArgument("url", `${JSON.stringify(target.slice(0, 200))} is not a valid request target`);
  }
}
