// The one refusal writer of the HTTP edge: every "no" said before or instead of a handler (auth, limits, unknown
// RPCs and routes, malformed requests, over-limit connections, a draining server) is written here, in the protocol
// the caller speaks, from the one error mapping in src/errors (code → HTTP status, WebSocket close code).
import type { OutgoingHttpHeaders } from "node:http";
import type { Http2Session, IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import type { Socket } from "node:net";
import type { WebSocket } from "ws";
import { Code, codeName, httpStatusByCode, StreamgateError, wsCloseCodeByCode } from "../errors/index.js";
import { type AnyRequest, type AnyResponse, errorJson, rawErrorResponse, sendError } from "./json-response.js";

/** The wire protocol of a request, as far as a refusal must speak it. */
export type WireProtocol = "grpc" | "grpc-web" | "connect-stream" | "connect-unary" | "http";

/** Where a refusal goes. */
export type RefusalTarget =
  /** A request with its response object (HTTP/1.1 or node's HTTP/2 compat layer): answered in the request's protocol. */
  | { request: AnyRequest; response: AnyResponse }
  /** A bare HTTP/2 stream (no compat objects): gRPC trailers-only, else the JSON error. */
  | { stream: ServerHttp2Stream; headers: IncomingHttpHeaders }
  /** A socket with no HTTP machinery on it: a whole HTTP/1.1 response, then the connection closes. */
  | { socket: Socket; httpStatus?: number }
  /** An open WebSocket: a close frame with the code's close code and `STATUS: message` as the reason. */
  | { webSocket: WebSocket }
  /** An HTTP/2 connection: GOAWAY NO_ERROR once the streams already answered are done (their answers say why). */
  | { session: Http2Session };

const header = (headers: IncomingHttpHeaders, name: string): string | undefined => {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
};

/** The protocol a request speaks: content type first, then Connect's version header. */
export function wireProtocolOf(headers: IncomingHttpHeaders): WireProtocol {
  const contentType = header(headers, "content-type") ?? "";
  if (contentType.startsWith("application/grpc-web")) return "grpc-web";
  if (contentType.startsWith("application/grpc")) return "grpc";
  if (contentType.startsWith("application/connect+")) return "connect-stream";
  if (header(headers, "connect-protocol-version") !== undefined) return "connect-unary";
  return "http";
}

/**
 * The gRPC spec's percent-encoding of grpc-message: only bytes outside 0x20-0x7E, and '%'. (connect-es uses
 * encodeURIComponent, so "," ":" ";" would reach grpc-js clients, which decode with decodeURI, still encoded.)
 */
export function specPercentEncode(message: string): string {
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** The grpc-status / grpc-message pair of an error (`grpc-status: 0` for null). */
export function grpcStatusHeaders(error: StreamgateError | null): OutgoingHttpHeaders {
  if (error === null) return { "grpc-status": "0" };
  return { "grpc-status": String(error.code), "grpc-message": specPercentEncode(error.message) };
}

/** Connect's name of a code: the gRPC name in lower case, except that Connect spells `canceled` with one l. */
export function connectCodeName(code: Code): string {
  return code === Code.CANCELLED ? "canceled" : codeName(code).toLowerCase();
}

/** A WebSocket close reason: `STATUS: message`, cut to the 123 bytes a close frame holds. */
export function webSocketCloseReason(error: StreamgateError): string {
  let reason = `${codeName(error.code)}: ${error.message}`;
  while (Buffer.byteLength(reason) > 123) reason = reason.slice(0, -1);
  return reason;
}

/** Writes `error` to `target` in the target's protocol. Never throws; a target already answered is closed. */
export function refuse(target: RefusalTarget, cause: unknown): void {
  const error = StreamgateError.from(cause);
  if ("response" in target) refuseRequest(target.request, target.response, error);
  else if ("stream" in target) refuseStream(target.stream, target.headers, error);
  else if ("socket" in target) {
    if (target.socket.writable) target.socket.end(rawErrorResponse(error, target.httpStatus));
    else target.socket.destroy();
  } else if ("webSocket" in target) target.webSocket.close(wsCloseCodeByCode[error.code], webSocketCloseReason(error));
  else if (!target.session.closed) target.session.close();
}

function refuseRequest(request: AnyRequest, response: AnyResponse, error: StreamgateError): void {
  if (response.headersSent) {
    response.end();
    return;
  }
  const protocol = wireProtocolOf(request.headers);
  if (protocol === "grpc" || protocol === "grpc-web") {
    // Trailers-only: HTTP 200 and the status in the one HEADERS frame (the content type echoed, so gRPC-Web and
    // +proto/+json variants stay what the client asked for).
    const headers = {
      "content-type": header(request.headers, "content-type") ?? "application/grpc",
      ...grpcStatusHeaders(error),
    };
    if ("stream" in response && response.stream !== undefined) {
      response.stream.respond({ ":status": 200, ...headers }, { endStream: true });
    } else {
      response.writeHead(200, headers);
      response.end();
    }
    return;
  }
  if (error.code === Code.UNAUTHENTICATED) response.setHeader("www-authenticate", 'Bearer realm="streamgate"');
  if (protocol === "connect-stream") {
    // Connect streaming: HTTP 200 and one end-stream envelope (flags 0x02) carrying the error as JSON.
    const json = Buffer.from(JSON.stringify({ error: { code: connectCodeName(error.code), message: error.message } }));
    const prefix = Buffer.alloc(5);
    prefix.writeUInt8(0x02, 0);
    prefix.writeUInt32BE(json.length, 1);
    response.writeHead(200, {
      "content-type": header(request.headers, "content-type")!,
      "content-length": prefix.length + json.length,
    });
    response.end(Buffer.concat([prefix, json]));
    return;
  }
  if (protocol === "connect-unary") {
    const body = JSON.stringify({ code: connectCodeName(error.code), message: error.message });
    response.writeHead(httpStatusByCode[error.code], {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
    });
    response.end(body);
    return;
  }
  sendError(response, error);
}

function refuseStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, error: StreamgateError): void {
  stream.on("error", () => stream.destroy());
  if (stream.headersSent || stream.destroyed) {
    if (!stream.destroyed) stream.close();
    return;
  }
  const protocol = wireProtocolOf(headers);
  if (protocol === "grpc" || protocol === "grpc-web") {
    stream.respond(
      {
        ":status": 200,
        "content-type": header(headers, "content-type") ?? "application/grpc",
        ...grpcStatusHeaders(error),
      },
      { endStream: true },
    );
    return;
  }
  const out: OutgoingHttpHeaders = {
    ":status": httpStatusByCode[error.code],
    "content-type": "application/json; charset=utf-8",
    "cache-control": "no-store",
  };
  if (error.details.retryAfterSeconds !== undefined) out["retry-after"] = error.details.retryAfterSeconds;
  stream.respond(out);
  stream.end(errorJson(error));
}
