// The public entries: the gRPC entry (HTTP/2) and the HTTP entry (HTTP/1.1, h2c, WebSocket upgrade), each its own listener.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse, IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import type { Socket } from "node:net";
import { Code, StreamgateError } from "../../errors/index.js";
import { Protocol } from "../../gen/streamgate/tunnel/v1/tunnel_pb.js";
import {
  createListener,
  type Listener,
  type ListenerOptions,
  requestClient,
  type StreamRoute,
  streamClient,
  type TrustedProxies,
} from "../../http/index.js";
import type { Logger } from "../../observability/index.js";
import { readChunks } from "../protocol/chunk-reader.js";
import { createGrpcSink, createHttpSink, createWebSocketSink } from "./entry-sinks.js";
import { endGrpc, parseGrpcTimeout } from "./grpc-stream.js";
import { type ProxyContext, proxyRequest } from "./proxy-request.js";
import type { IncomingRequest } from "./request-head.js";

export interface EntryListenerOptions {
  host: string;
  port: number;
  tls: ListenerOptions["tls"];
  pingIntervalMs: number;
  /** HTTP/2 streams one client connection may have open at once. */
  maxStreamsPerConnection: number;
  /** Refuses new requests (server draining). */
  draining(): boolean;
  /** Connection lines (debug), TLS handshake failures and certificate reloads of this entry. */
  logger?: Logger;
  /** Proxies in front of this entry whose PROXY / forwarding headers are believed. Default: none. */
  trustedProxies?: TrustedProxies;
  /** PROXY protocol on this entry. Default: off. */
  proxyProtocol?: ListenerOptions["proxyProtocol"];
}

/**
 * RST_STREAMs one client connection of an entry may send, as node's streamResetBurst / streamResetRate: ten times
 * nghttp2's default (1,000 at 33/s), and the listener retires a connection gracefully at half the burst. A client
 * that cancels many calls (deadlines, hedging, a gateway in front carrying many users) keeps its connection; a
 * cancelled call costs the tunnel no more than a finished one (one Cancel frame to the agent), and the rate
 * still bounds a rapid-reset flood.
 */
export const ENTRY_STREAM_RESET_LIMIT = { burst: 10_000, perSecond: 330 } as const;

/** Abort reason (a constant: abort() without one builds a DOMException with a stack per request). */
const CLIENT_GONE = "the client went away";

const GRPC_CONTENT_TYPE = /^application\/grpc(?!-web)/;

const drainingError = () =>
  new StreamgateError(Code.UNAVAILABLE, "the tunnel entry is draining", { reason: "TUNNEL_SERVER_DRAINING" });

/** The gRPC entry: every request is a gRPC call over HTTP/2. */
export function createGrpcEntry(context: ProxyContext, options: EntryListenerOptions): Listener {
  const scheme = options.tls === null ? "http" : "https";
  const listenerOptions = {
    host: options.host,
    port: options.port,
    tls: options.tls,
    pingIntervalMs: options.pingIntervalMs,
    maxHeaderBytes: 64 * 1024,
    maxStreamsPerConnection: options.maxStreamsPerConnection,
    streamResetLimit: ENTRY_STREAM_RESET_LIMIT,
    logger: options.logger,
    ...listenerProxyOptions(options),
    streamRoutes: [grpcStreamRoute(context, scheme, options)],
    handler: (
      request: Parameters<ListenerOptions["handler"]>[0],
      response: Parameters<ListenerOptions["handler"]>[1],
    ) => {
      if (!("stream" in request)) {
        plainError(response, 505, "the gRPC entry speaks HTTP/2 only (h2c prior knowledge, or TLS with ALPN h2)");
        return;
      }
      if (!GRPC_CONTENT_TYPE.test(String(request.headers["content-type"] ?? ""))) {
        plainError(response, 415, "the gRPC entry takes content-type application/grpc only");
        return;
      }
      serveGrpc(context, request.stream, request.headers, scheme, requestClient(request).chain, options);
    },
  };
  return createListener(listenerOptions);
}

/** The HTTP entry: HTTP/1.1 and h2c requests (gRPC ones included) and WebSocket upgrades. */
export function createHttpEntry(context: ProxyContext, options: EntryListenerOptions): Listener {
  const scheme = options.tls === null ? "http" : "https";
  const listenerOptions = {
    host: options.host,
    port: options.port,
    tls: options.tls,
    pingIntervalMs: options.pingIntervalMs,
    maxHeaderBytes: 64 * 1024,
    maxStreamsPerConnection: options.maxStreamsPerConnection,
    streamResetLimit: ENTRY_STREAM_RESET_LIMIT,
    logger: options.logger,
    ...listenerProxyOptions(options),
    streamRoutes: [grpcStreamRoute(context, scheme, options)],
    handler: (
      request: Parameters<ListenerOptions["handler"]>[0],
      response: Parameters<ListenerOptions["handler"]>[1],
    ) => {
      if ("stream" in request && GRPC_CONTENT_TYPE.test(String(request.headers["content-type"] ?? ""))) {
        serveGrpc(context, request.stream, request.headers, scheme, requestClient(request).chain, options);
        return;
      }
      serveHttp(context, request, response, scheme, options);
    },
    upgrade: (request: IncomingMessage, socket: Socket, head: Buffer) =>
      serveUpgrade(context, request, socket, head, scheme, options),
  };
  return createListener(listenerOptions);
}

/**
 * An entry's HTTP/2 gRPC calls taken as raw streams (a listener stream route): the tunnel drives the stream itself,
 * so node's compatibility layer need not build a request/response pair for each. CONNECT and `expect` requests
 * stay with that layer, which answers them itself (405, 100-continue) before the entry's handler sees them; so do
 * other content types (the gRPC entry's 415, the HTTP entry's plain HTTP/2 requests).
 */
function grpcStreamRoute(context: ProxyContext, scheme: "http" | "https", options: EntryListenerOptions): StreamRoute {
  return (stream, headers) => {
    if (headers[":method"] === "CONNECT" || headers.expect !== undefined) return false;
    if (!GRPC_CONTENT_TYPE.test(String(headers["content-type"] ?? ""))) return false;
    serveGrpc(context, stream, headers, scheme, streamClient(stream, headers).chain, options);
    return true;
  };
}

function listenerProxyOptions(
  options: EntryListenerOptions,
): Pick<ListenerOptions, "trustedProxies" | "proxyProtocol"> {
  return {
    ...(options.trustedProxies === undefined ? {} : { trustedProxies: options.trustedProxies }),
    ...(options.proxyProtocol === undefined ? {} : { proxyProtocol: options.proxyProtocol }),
  };
}

function plainError(response: ServerResponse | Http2ServerResponse, status: number, message: string): void {
  const text = JSON.stringify({ error: { code: status, message } });
  (response as ServerResponse).writeHead(status, { "content-type": "application/json; charset=utf-8" });
  response.end(text);
}

function serveGrpc(
  context: ProxyContext,
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  scheme: "http" | "https",
  clientChain: readonly string[],
  options: EntryListenerOptions,
): void {
  stream.on("error", () => undefined);
  if (options.draining()) {
    endGrpc(stream, drainingError());
    return;
  }
  let timeoutMs: number | null;
  try {
    timeoutMs = parseGrpcTimeout(headers["grpc-timeout"]);
  } catch (error) {
    endGrpc(stream, StreamgateError.from(error));
    return;
  }
  const abort = new AbortController();
  const onClose = () => abort.abort(CLIENT_GONE);
  stream.once("close", onClose);
  stream.once("aborted", onClose);
  const request: IncomingRequest = {
    protocol: Protocol.GRPC,
    method: String(headers[":method"] ?? "POST"),
    scheme,
    authority: String(headers[":authority"] ?? headers.host ?? ""),
    path: String(headers[":path"] ?? "/"),
    headers: headers as Record<string, string | string[] | undefined>,
    httpVersion: "2",
    clientChain,
    endStream: stream.endAfterHeaders,
  };
  void proxyRequest(context, {
    request,
    grpc: true,
    // Leaving the loop early (a rejected message, a finished response) must not reset the client's stream.
    body: request.endStream ? null : readChunks(stream),
    timeoutMs,
    controller: abort,
    sink: createGrpcSink(stream),
  }).finally(() => stream.off("close", onClose));
}

function serveHttp(
  context: ProxyContext,
  request: IncomingMessage | Http2ServerRequest,
  response: ServerResponse | Http2ServerResponse,
  scheme: "http" | "https",
  options: EntryListenerOptions,
): void {
  const sink = createHttpSink(response);
  if (options.draining()) {
    if (request.httpVersionMajor === 1) response.setHeader("connection", "close");
    void sink.error(drainingError());
    return;
  }
  const abort = new AbortController();
  const onClose = () => {
    if (!response.writableFinished) abort.abort(CLIENT_GONE);
  };
  response.once("close", onClose);
  const headers = request.headers as Record<string, string | string[] | undefined>;
  const http2 = request.httpVersionMajor === 2;
  const declaredLength = headers["content-length"];
  const bodyless =
    declaredLength === "0" ||
    (declaredLength === undefined && headers["transfer-encoding"] === undefined && !http2) ||
    (http2 && "stream" in request && request.stream.endAfterHeaders);
  const incoming: IncomingRequest = {
    protocol: Protocol.HTTP,
    method: request.method ?? "GET",
    scheme,
    authority: String(http2 ? (headers[":authority"] ?? headers.host ?? "") : (headers.host ?? "")),
    path: request.url ?? "/",
    headers,
    httpVersion: http2 ? "2" : "1.1",
    clientChain: requestClient(request).chain,
    endStream: bodyless,
  };
  void proxyRequest(context, {
    request: incoming,
    grpc: false,
    body: bodyless ? null : readChunks(request),
    timeoutMs: null,
    controller: abort,
    sink,
  }).finally(() => response.off("close", onClose));
}

function serveUpgrade(
  context: ProxyContext,
  request: IncomingMessage,
  socket: Socket,
  head: Buffer,
  scheme: "http" | "https",
  options: EntryListenerOptions,
): void {
  socket.on("error", () => undefined);
  const sink = createWebSocketSink(socket);
  if (String(request.headers.upgrade ?? "").toLowerCase() !== "websocket") {
    void sink.error(
      new StreamgateError(Code.INVALID_ARGUMENT, "only WebSocket upgrades are tunnelled", {
        reason: "INVALID_ARGUMENT",
      }),
    );
    return;
  }
  if (options.draining()) {
    void sink.error(drainingError());
    return;
  }
  const abort = new AbortController();
  const onClose = () => abort.abort(CLIENT_GONE);
  socket.once("close", onClose);
  const incoming: IncomingRequest = {
    protocol: Protocol.WEBSOCKET,
    method: request.method ?? "GET",
    scheme,
    authority: String(request.headers.host ?? ""),
    path: request.url ?? "/",
    headers: request.headers as Record<string, string | string[] | undefined>,
    httpVersion: "1.1",
    clientChain: requestClient(request).chain,
    endStream: false,
  };
  async function* body(): AsyncIterable<Uint8Array> {
    if (head.length > 0) yield head;
    for await (const chunk of socket.iterator({ destroyOnReturn: false })) yield chunk as Uint8Array;
  }
  void proxyRequest(context, {
    request: incoming,
    grpc: false,
    body: body(),
    timeoutMs: null,
    controller: abort,
    sink,
  }).finally(() => {
    socket.off("close", onClose);
    if (!socket.destroyed) socket.end();
  });
}
