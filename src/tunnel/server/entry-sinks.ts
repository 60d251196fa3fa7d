// Where a tunnelled response goes: a raw gRPC HTTP/2 stream, an HTTP response, or an upgraded WebSocket socket.
import type { ServerResponse } from "node:http";
import type { Http2ServerResponse, OutgoingHttpHeaders, ServerHttp2Stream } from "node:http2";
import type { Socket } from "node:net";
import type { Writable } from "node:stream";
import { Code, codeName, httpStatusByCode, StreamgateError } from "../../errors/index.js";
import {
  endToEndHeaders,
  type HeaderEntry,
  headerObject,
  isHopByHop,
  type ResponseSink,
  WRITTEN,
} from "../upstream/exchange.js";
import { codeOfHttpStatus } from "../upstream/upstream-errors.js";
import { endGrpc, endWithTrailers } from "./grpc-stream.js";

/** HTTP status of a tunnel error: 503 when no agent could take it, 502 when the agent or its backend failed. */
export function httpStatusOfError(error: StreamgateError): number {
  if (error.reason === "TUNNEL_NO_AGENT") return 503;
  if (
    error.reason === "TUNNEL_AGENT_LOST" ||
    error.reason === "TUNNEL_UPSTREAM_UNAVAILABLE" ||
    error.reason === "TUNNEL_AGENT_PROTOCOL"
  )
    return 502;
  if (error.reason === "TUNNEL_MESSAGE_TOO_LARGE") return 413;
  return httpStatusByCode[error.code];
}

/** Resolves once `stream` accepted `bytes` (after 'drain' when its buffer is full); rejects once it closed. */
export function writeWithBackpressure(stream: Writable, bytes: Uint8Array): Promise<void> {
  if (stream.destroyed || stream.writableEnded) return Promise.reject(clientGone());
  if (stream.write(bytes)) return WRITTEN;
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      stream.off("close", onClose);
      resolve();
    };
    const onClose = () => {
      stream.off("drain", onDrain);
      reject(clientGone());
    };
    stream.once("drain", onDrain);
    stream.once("close", onClose);
  });
}

const clientGone = () => new StreamgateError(Code.CANCELLED, "the client went away", { reason: "TUNNEL_CLIENT_GONE" });

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const BAD_HEADER_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
/** Headers node sends once; an agent's repeat of one is dropped (the first stands). */
const SINGLE_VALUE = new Set([
  "content-type",
  "content-length",
  "location",
  "etag",
  "last-modified",
  "server",
  "grpc-status",
  "grpc-message",
]);

/**
 * A response the entry cannot pass on (see checkStatus, grpcStatusProblem). Nothing was written: the caller answers
 * the client. INVALID_ARGUMENT is the status the agent's stream ends with; the tunnel exchange turns it into
 * UNAVAILABLE / 502 with reason TUNNEL_AGENT_PROTOCOL for the client, as every other protocol error of an agent.
 */
const badResponse = (detail: string) =>
  new StreamgateError(Code.INVALID_ARGUMENT, detail, { reason: "TUNNEL_BAD_RESPONSE" });

/**
 * Refuses a status no client can be given: only a final status (200..599) passes, and 101 when the request was a
 * WebSocket upgrade. (node throws on the others over HTTP/2; over HTTP/1.1 a 101 would switch the connection.)
 */
function checkStatus(status: number, upgrade = false): void {
  if (Number.isInteger(status) && status >= 200 && status <= 599) return;
  if (upgrade && status === 101) return;
  throw badResponse(
    status === 101
      ? "HTTP status 101 answers a request that asked for no upgrade"
      : `HTTP status ${status} is not a final status (200..599)`,
  );
}

/** Why a grpc-status value is not one a client can take (missing, or not 0..16), or null when it is. */
function grpcStatusProblem(value: string | string[] | undefined): string | null {
  if (value === undefined) return "without grpc-status";
  return typeof value === "string" && /^\d{1,2}$/.test(value) && Number(value) <= 16
    ? null
    : `with grpc-status ${JSON.stringify(value)}, not a status code (0..16)`;
}

/**
 * Response headers safe to send on HTTP/1.1 and HTTP/2: no connection-specific ones, no pseudo headers, no
 * invalid names (an agent's header is dropped unless its name is a lowercase token and its value has no
 * CR, LF, NUL or other control character), no repeat of a single-value header.
 */
export function responseHeaders(
  entries: readonly HeaderEntry[],
  keep: readonly string[] = [],
): Record<string, string | string[]> {
  // One pass into the header object (every head and trailers of every call comes here); a `connection` header,
  // which names more headers to drop, takes the general path below.
  const object: Record<string, string | string[]> = {};
  for (const { name, value } of entries) {
    const lower = name.toLowerCase();
    if (lower === "connection") return responseHeadersNamed(entries, keep);
    if (!keep.includes(lower) && (lower.startsWith(":") || isHopByHop(lower))) continue;
    if (!HEADER_NAME.test(lower) || BAD_HEADER_VALUE.test(value)) continue;
    const existing = object[lower];
    if (existing === undefined) object[lower] = value;
    else if (SINGLE_VALUE.has(lower)) continue;
    else if (Array.isArray(existing)) existing.push(value);
    else object[lower] = [existing, value];
  }
  return object;
}

/**
 * responseHeaders for entries with a `connection` header (whose tokens name headers to drop), the general path:
 * exported so a test can hold the one-pass path to it.
 */
export function responseHeadersNamed(
  entries: readonly HeaderEntry[],
  keep: readonly string[],
): Record<string, string | string[]> {
  const seen = new Set<string>();
  const safe = endToEndHeaders(entries, keep)
    .map(({ name, value }) => ({ name: name.toLowerCase(), value }))
    .filter(({ name, value }) => {
      if (!HEADER_NAME.test(name) || BAD_HEADER_VALUE.test(value)) return false;
      if (!SINGLE_VALUE.has(name)) return true;
      if (seen.has(name)) return false;
      seen.add(name);
      return true;
    });
  return headerObject(safe);
}

/**
 * A sink writing gRPC to a raw HTTP/2 stream: headers, messages, trailers (or trailers-only). The client always
 * gets `:status 200` and a grpc-status; what the agent leaves out is decided here (gRPC spec, "HTTP to gRPC Status
 * Code Mapping": a grpc-status, when present, wins; without one a client maps the HTTP status):
 * - a non-200 head without grpc-status: the mapped code (404 → UNIMPLEMENTED, 503 → UNAVAILABLE, 400 → INTERNAL,
 *   others UNKNOWN), reason TUNNEL_AGENT_HTTP_STATUS, at once (what follows is not a gRPC response; the trailers
 *   of a head that leaves the stream open are not waited for);
 * - a response ending without a valid grpc-status after HTTP 200 (trailers, or a trailers-only head): the spec
 *   would have a client read UNKNOWN. Here it is the agent breaking the protocol, answered like every other
 *   such break: UNAVAILABLE with reason TUNNEL_AGENT_PROTOCOL and a message saying what the agent did.
 */
export function createGrpcSink(stream: ServerHttp2Stream): ResponseSink {
  // head and trailers answer WRITTEN when they wrote at once (always, unless refused): the exchange then goes on
  // without a promise and a turn per call. A refusal is a rejected promise, as the ResponseSink contract says.
  return {
    head(head) {
      try {
        if (stream.destroyed || stream.closed) throw clientGone();
        checkStatus(head.status);
        const headers = responseHeaders(head.headers);
        const problem = head.endStream ? grpcStatusProblem(headers["grpc-status"]) : "without grpc-status";
        if (head.status !== 200 && problem !== null) {
          throw new StreamgateError(
            codeOfHttpStatus(head.status),
            `the tunnel agent answered HTTP ${head.status} ${problem} (gRPC status mapped from the HTTP status)`,
            { reason: "TUNNEL_AGENT_HTTP_STATUS" },
          );
        }
        if (head.endStream && problem !== null) throw badResponse(`the gRPC response ended ${problem} (HTTP 200)`);
        stream.removeAllListeners("wantTrailers");
        const sent: OutgoingHttpHeaders = { "content-type": "application/grpc", ...headers, ":status": 200 };
        if (head.endStream) stream.respond(sent, { endStream: true });
        else stream.respond(sent, { waitForTrailers: true });
        return WRITTEN;
      } catch (error) {
        return Promise.reject(error);
      }
    },
    data: (bytes) => writeWithBackpressure(stream, bytes),
    trailers(headers) {
      const trailers = responseHeaders(headers);
      const problem = grpcStatusProblem(trailers["grpc-status"]);
      if (problem !== null) return Promise.reject(badResponse(`the gRPC response ended ${problem} (HTTP 200)`));
      try {
        endWithTrailers(stream, trailers);
      } catch (error) {
        return Promise.reject(error);
      }
      return WRITTEN;
    },
    async error(error) {
      endGrpc(stream, error);
    },
  };
}

/** A sink writing an HTTP/1.1 or HTTP/2 response through node's response object. */
export function createHttpSink(response: ServerResponse | Http2ServerResponse): ResponseSink {
  const http2 = "stream" in response;
  return {
    async head(head) {
      if (response.headersSent || response.destroyed) throw clientGone();
      checkStatus(head.status);
      (response as ServerResponse).writeHead(head.status, responseHeaders(head.headers));
      if (head.endStream) response.end();
      // Send the status line now: an SSE client reports "open" on it, and the first event may come much later.
      else (response as ServerResponse).flushHeaders();
    },
    data: (bytes) => writeWithBackpressure(response as unknown as Writable, bytes),
    async trailers(headers) {
      // HTTP/1.1 carries trailers after a chunked body (node's default without content-length); a response
      // with a content-length has none (nor could its backend have sent any).
      if (headers.length > 0 && (http2 || (response as ServerResponse).chunkedEncoding)) {
        response.addTrailers(responseHeaders(headers));
      }
      response.end();
    },
    async error(error) {
      if (!response.headersSent) {
        const status = httpStatusOfError(error);
        const text = JSON.stringify({
          error: { code: status, message: error.message, status: codeName(error.code), reason: error.reason },
        });
        (response as ServerResponse).writeHead(status, {
          "content-type": "application/json; charset=utf-8",
          "content-length": Buffer.byteLength(text),
          "cache-control": "no-store",
        });
        response.end(text);
      } else {
        // The status line is gone: cut the response so the client sees it incomplete, not a clean end.
        response.destroy();
      }
    },
  };
}

/** A sink for a WebSocket upgrade: the agent's 101 (or refusal) as raw HTTP/1.1, then raw bytes. */
export function createWebSocketSink(socket: Socket): ResponseSink & { readonly upgraded: boolean } {
  let headWritten = false;
  let upgraded = false;
  const writeHead = (status: number, reason: string, headers: Record<string, string | string[]>) => {
    let text = `HTTP/1.1 ${status} ${reason}\r\n`;
    for (const [name, value] of Object.entries(headers)) {
      for (const item of Array.isArray(value) ? value : [value]) text += `${name}: ${item}\r\n`;
    }
    socket.write(`${text}\r\n`);
    headWritten = true;
  };
  return {
    get upgraded() {
      return upgraded;
    },
    async head(head) {
      if (socket.destroyed) throw clientGone();
      checkStatus(head.status, true);
      if (head.status === 101) {
        upgraded = true;
        writeHead(101, "Switching Protocols", {
          ...responseHeaders(head.headers),
          connection: "Upgrade",
          upgrade: head.headers.find((header) => header.name === "upgrade")?.value ?? "websocket",
        });
      } else {
        writeHead(head.status, "Upgrade Refused", { ...responseHeaders(head.headers), connection: "close" });
      }
      if (head.endStream) socket.end();
    },
    data: (bytes) => writeWithBackpressure(socket, bytes),
    async trailers() {
      socket.end();
    },
    async error(error) {
      if (!headWritten && !socket.destroyed) {
        const status = httpStatusOfError(error);
        const text = JSON.stringify({ error: { code: status, message: error.message, reason: error.reason } });
        writeHead(status, codeName(error.code), {
          "content-type": "application/json; charset=utf-8",
          "content-length": String(Buffer.byteLength(text)),
          connection: "close",
        });
        socket.end(text);
      } else {
        socket.destroy();
      }
    },
  };
}
