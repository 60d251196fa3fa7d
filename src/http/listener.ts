// One TCP listener speaking HTTP/1.1 and h2c (prior knowledge) on the same port, or TLS with ALPN h2,http/1.1 (optional mTLS, reloaded certificates).
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import {
  constants,
  createServer as createHttp2Server,
  createSecureServer,
  type Http2SecureServer,
  type Http2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { errors } from "../errors/index.js";
import { StreamResetBudget, type StreamResetLimit } from "../limits/stream-reset-budget.js";
import type { Logger } from "../observability/logger.js";
import { connectionOrigin, setConnectionOrigin } from "./client-address.js";
import { sendError, sendJson } from "./json-response.js";
import { readProxyHeader } from "./proxy-accept.js";
import type { ProxyHeaderRejection } from "./proxy-protocol.js";
import { refuse } from "./refuse.js";
import { formatSubject } from "./tls-client-certificate.js";
import { type CertificateWatcher, loadSecureContextOptions, watchCertificateFiles } from "./tls-reload.js";
import type { TrustedProxies } from "./trusted-proxies.js";

export type RequestHandler = (
  request: IncomingMessage | Http2ServerRequest,
  response: ServerResponse | Http2ServerResponse,
) => void;

/**
 * A route for raw HTTP/2 streams, tried before node's compatibility layer builds the request/response objects of
 * `handler` (about a third of the CPU of a small gRPC call): returns true when it took the stream, which it then
 * answers on its own, false to leave it to the next route and finally to `handler`. It is called synchronously
 * as the stream's headers arrive and must decide from them alone.
 */
export type StreamRoute = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => boolean;

export interface ListenerOptions {
  host: string;
  port: number;
  tls: ListenerTlsOptions | null;
  /** Connection lines (debug), TLS reloads and handshake failures. Default: none. */
  logger?: Logger;
  handler: RequestHandler;
  /**
   * Raw HTTP/2 stream routes (h2c and TLS), tried in order on every new stream before `handler` sees it; see
   * {@link StreamRoute}. A stream taken by one gets a no-op `error` listener (its reset shows in `close` and
   * `rstCode`), as the compatibility layer gives every stream it wraps. Default: none, every stream goes to `handler`.
   */
  streamRoutes?: readonly StreamRoute[];
  /** Takes HTTP/1.1 `Upgrade` requests (WebSocket); without it they get no special handling. */
  upgrade?: (request: IncomingMessage, socket: Socket, head: Buffer) => void;
  /** Interval of HTTP/2 PING frames on idle sessions; keeps NAT and proxies from dropping them. */
  pingIntervalMs: number;
  /** Largest HTTP/2 header block, in bytes. */
  maxHeaderBytes: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS of every session; more streams are refused with REFUSED_STREAM. Default 1000. */
  maxStreamsPerConnection?: number;
  /**
   * Called once per accepted TCP connection (`tls` tells which listener); false means it refused
   * the connection and answered or closed it itself (per-IP limit). Default: every connection is admitted.
   */
  admitConnection?: (socket: Socket, tls: boolean) => boolean;
  /** Proxies whose PROXY headers (with proxyProtocol) and Forwarded / X-Forwarded-For headers are believed. Default: none. */
  trustedProxies?: TrustedProxies;
  /** PROXY protocol v1/v2 on this listener, read before TLS and HTTP/2 sniffing; needs trustedProxies. Default: off. */
  proxyProtocol?: ListenerProxyProtocol;
  /**
   * RST_STREAMs one HTTP/2 client may send (node's streamResetBurst / streamResetRate); a connection is retired
   * gracefully at half the burst. Default nghttp2's 1,000 at 33 per second.
   */
  streamResetLimit?: StreamResetLimit;
}

/** PROXY protocol settings of one listener. */
export interface ListenerProxyProtocol {
  /** The whole header must arrive within this many ms of accept. */
  timeoutMs: number;
  /** Called once per connection closed for its header (the `streamgate_proxy_protocol_rejected_total` counter). */
  onRejected?: (reason: ProxyHeaderRejection) => void;
}

/** TLS of the listener; the files are watched and reloaded when they change. */
export interface ListenerTlsOptions {
  certPath: string;
  keyPath: string;
  /** PEM bundle of CAs for client certificates (mTLS); null = no client certificate asked. */
  clientCaPath: string | null;
  /** With a client CA: accept clients without a valid certificate too (requests then see no client certificate). */
  clientCertOptional: boolean;
  /** Interval of the stat poll backing up fs.watch, in ms. Default 5 000. */
  reloadPollMs?: number;
}

/** Transport of one client connection, as connection log lines name it. */
type ConnectionTransport = "http1" | "h2c" | "h2/tls" | "http1/tls" | "websocket" | "websocket/tls";

export interface Listener {
  /** Resolves to the bound address once listening. */
  listen(): Promise<{ host: string; port: number }>;
  /** Stops accepting; sends GOAWAY on HTTP/2 sessions and closes idle HTTP/1.1 keep-alives. */
  stopAccepting(): void;
  /** Closes HTTP/1.1 keep-alive connections that are between requests (during drain). */
  closeIdle(): void;
  /** Destroys every connection. */
  destroy(): void;
  /** Resolves when no connection is open. */
  idle(): Promise<void>;
  connections(): number;
}

/** The HTTP/2 connection preface a prior-knowledge client sends first. */
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export function createListener(options: ListenerOptions): Listener {
  const sockets = new Set<Socket>();
  const sessions = new Set<Http2Session>();
  let accepting = true;
  const http2Settings = {
    maxHeaderListSize: options.maxHeaderBytes,
    enablePush: false,
    maxConcurrentStreams: options.maxStreamsPerConnection ?? 1000,
  };
  const resetLimit = options.streamResetLimit;
  const resetOptions =
    resetLimit === undefined ? {} : { streamResetBurst: resetLimit.burst, streamResetRate: resetLimit.perSecond };

  const trackSession = (session: Http2Session) => {
    sessions.add(session);
    const timer = setInterval(() => {
      if (!session.destroyed && !session.closed) session.ping(() => undefined);
    }, options.pingIntervalMs);
    timer.unref();
    session.once("close", () => {
      clearInterval(timer);
      sessions.delete(session);
    });
    session.on("error", () => undefined);
    // A client that cancels many calls on one connection (deadlines, hedging, a busy gateway in front) would
    // meet nghttp2's rapid-reset protection: GOAWAY INTERNAL_ERROR, every call on the connection failed. Before
    // that the connection is closed gracefully (see STREAM_RESET_BUDGET): its calls finish, the client reconnects.
    const resets = new StreamResetBudget(Date.now(), options.streamResetLimit);
    // One listener function per session (`this` is the closing stream), not a closure per stream.
    const onStreamClose = function (this: ServerHttp2Stream) {
      if (this.rstCode !== constants.NGHTTP2_NO_ERROR && resets.spend() && !session.closed) {
        options.logger?.debug(
          { remoteAddress: connectionOrigin(session.socket as Socket).address },
          "connection retired: many stream resets",
        );
        session.close();
      }
    };
    session.on("stream", (stream: ServerHttp2Stream) => {
      stream.on("close", onStreamClose);
    });
    if (!accepting) session.close();
  };

  // Node's own answer to an HTTP/1.1 request without Host is an empty 400; ours is the JSON error every error is.
  const http1 = createHttpServer(
    { keepAliveTimeout: 65_000, requestTimeout: 0, headersTimeout: 60_000, requireHostHeader: false },
    (request, response) => {
      if (request.httpVersion === "1.1" && request.headers.host === undefined) {
        response.shouldKeepAlive = false;
        sendError(response, errors.invalidArgument("host", "an HTTP/1.1 request must carry a Host header"));
      } else options.handler(request, response);
    },
  );
  const upgrade = options.upgrade;
  const upgradeTo = (request: IncomingMessage, socket: Socket, head: Buffer) => {
    logConnection.identified(socket, options.tls === null ? "websocket" : "websocket/tls");
    upgrade!(request, socket, head);
  };
  if (upgrade !== undefined) http1.on("upgrade", upgradeTo);
  // An Expect other than 100-continue: node's own 417 has no body; ours carries the JSON error.
  http1.on("checkExpectation", (request: IncomingMessage, response: ServerResponse) => {
    response.shouldKeepAlive = false;
    const message = `Expect: ${String(request.headers.expect).slice(0, 100)} is not supported (only 100-continue)`;
    sendJson(response, 417, { error: { code: 417, message, status: "FAILED_PRECONDITION", details: [] } });
  });
  // Requests node cannot parse get the same JSON error body as every other error (431 for oversized heads).
  http1.on("clientError", (error: NodeJS.ErrnoException, socket) => {
    if (error.code === "HPE_HEADER_OVERFLOW") {
      const tooLarge = errors.resourceExhausted(
        "REQUEST_TOO_LARGE",
        "the request line and headers exceed the server's limit",
      );
      refuse({ socket: socket as Socket, httpStatus: 431 }, tooLarge);
    } else
      refuse(
        { socket: socket as Socket },
        errors.invalidArgument("request", `malformed HTTP/1.1 request (${error.code ?? "parse error"})`),
      );
  });
  let h2c: ReturnType<typeof createHttp2Server> | null = null;
  let net: NetServer;
  let certificates: CertificateWatcher | null = null;
  const logConnection = connectionLogger(options.logger);

  const trusted = options.trustedProxies;
  const proxyProtocol = options.proxyProtocol;
  if (proxyProtocol !== undefined && (trusted === undefined || trusted.ranges.length === 0)) {
    throw new Error("PROXY protocol needs trusted proxy ranges: no peer could send a header");
  }
  // Where the connection's bytes go once its PROXY header (if any) is read.
  let handOver: (socket: Socket, rest: Buffer) => void;
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
  };
  const acceptProxied = (socket: Socket) => {
    track(socket);
    readProxyHeader(socket, { trusted: trusted!, timeoutMs: proxyProtocol!.timeoutMs }, (result) => {
      if (result.kind === "accepted") {
        setConnectionOrigin(socket, result.origin);
        handOver(socket, result.rest);
        return;
      }
      if (result.kind === "rejected") {
        proxyProtocol!.onRejected?.(result.reason);
        options.logger?.warn(
          {
            peerAddress: socket.remoteAddress,
            peerPort: socket.remotePort,
            reason: result.reason,
            bytes: result.bytes,
            detail: result.message,
          },
          "connection closed: PROXY protocol header refused",
        );
      }
      socket.destroy();
    });
  };

  if (options.tls === null) {
    h2c = createHttp2Server({ settings: http2Settings, maxSessionMemory: 64, ...resetOptions }, options.handler);
    routeRawStreams(h2c, options.streamRoutes ?? []);
    h2c.on("session", trackSession);
    handOver = (socket, rest) => {
      logConnection.opened(socket);
      if (options.admitConnection?.(socket, false) === false) {
        if (rest.length > 0) socket.unshift(rest);
        socket.resume();
        return;
      }
      sniff(socket, rest);
    };
    // Without TCP_NODELAY every small response waits for Nagle + delayed ACK (~40 ms per unary call).
    net = createNetServer({ noDelay: true }, (socket) => {
      if (proxyProtocol !== undefined) {
        acceptProxied(socket);
        return;
      }
      track(socket);
      // Recorded once here (also without trusted proxies): every request then reads it instead of asking the
      // kernel for the peer's address again (a getpeername call per request through the HTTP/2 socket proxy).
      const origin = connectionOrigin(socket);
      setConnectionOrigin(socket, trusted !== undefined && trusted.ranges.length > 0 ? { ...origin, trusted } : origin);
      handOver(socket, Buffer.alloc(0));
    });
  } else {
    const tls = options.tls;
    const files = { certPath: tls.certPath, keyPath: tls.keyPath, clientCaPath: tls.clientCaPath };
    const mutual = tls.clientCaPath !== null;
    const secure = createSecureServer(
      {
        ...loadSecureContextOptions(files),
        // mTLS: ask every client for a certificate; unless optional, one not signed by the CA fails the handshake.
        requestCert: mutual,
        rejectUnauthorized: mutual && !tls.clientCertOptional,
        allowHTTP1: true,
        ALPNProtocols: ["h2", "http/1.1"],
        settings: http2Settings,
        maxSessionMemory: 64,
        ...resetOptions,
        noDelay: true,
      },
      options.handler,
    );
    routeRawStreams(secure, options.streamRoutes ?? []);
    secure.on("session", trackSession);
    if (upgrade !== undefined) secure.on("upgrade", upgradeTo);
    handOver = (socket, rest) => {
      if (options.admitConnection?.(socket, true) === false) return;
      // The TLS socket reads what is left in the TCP socket's buffer before its own handle ("already has some buffered data").
      if (rest.length > 0) socket.unshift(rest);
      secure.emit("connection", socket);
    };
    if (proxyProtocol === undefined) {
      secure.on("connection", (socket: Socket) => {
        sockets.add(socket);
        socket.once("close", () => sockets.delete(socket));
        const origin = connectionOrigin(socket);
        setConnectionOrigin(
          socket,
          trusted !== undefined && trusted.ranges.length > 0 ? { ...origin, trusted } : origin,
        );
        options.admitConnection?.(socket, true);
      });
    }
    secure.on("secureConnection", (socket: TLSSocket) => {
      // With mTLS the line names the verified client certificate: who the connection belongs to.
      const peer = mutual && socket.authorized ? socket.getPeerCertificate() : undefined;
      const clientSubject = peer?.subject === undefined ? undefined : formatSubject(peer.subject);
      logConnection.opened(socket, socket.alpnProtocol === "h2" ? "h2/tls" : "http1/tls", { clientSubject });
    });
    // Scanners and clients without a valid certificate (mTLS) end here: debug, as it can be frequent.
    secure.on("tlsClientError", (error: Error & { code?: string }, socket: TLSSocket) => {
      options.logger?.debug(
        { remoteAddress: connectionOrigin(socket).address, reason: error.code ?? error.message },
        "tls handshake failed",
      );
    });
    certificates = watchCertificateFiles({
      files,
      pollMs: tls.reloadPollMs,
      apply(context) {
        secure.setSecureContext(context);
        options.logger?.info({ certPath: tls.certPath }, "tls certificate reloaded; new connections use it");
      },
      failed(error) {
        options.logger?.error(
          { err: error, certPath: tls.certPath, keyPath: tls.keyPath },
          "tls certificate reload failed; still serving the previous certificate",
        );
      },
    });
    net =
      proxyProtocol === undefined
        ? (secure as unknown as NetServer)
        : createNetServer({ noDelay: true }, acceptProxied);
  }

  function sniff(socket: Socket, initial: Buffer) {
    let buffered: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      const compared = Math.min(buffered.length, PREFACE.length);
      const isPreface = buffered.subarray(0, compared).equals(PREFACE.subarray(0, compared));
      if (isPreface && buffered.length < PREFACE.length) return;
      socket.off("data", onData);
      if (isPreface) {
        logConnection.identified(socket, "h2c");
        // The real socket goes to http2, so its native fast path reads it (a JS wrapper costs CPU on every
        // frame). Paused, so nothing is emitted before http2 takes over; http2 takes the unshifted preface
        // bytes from the socket's buffer when it sets the session up ("already has some buffered data").
        socket.pause();
        socket.unshift(buffered);
        h2c!.emit("connection", socket);
        return;
      }
      logConnection.identified(socket, "http1");
      socket.pause();
      socket.unshift(buffered);
      http1.emit("connection", socket);
      socket.resume();
    };
    socket.on("data", onData);
    if (initial.length > 0) onData(initial);
    // A socket paused after its PROXY header, still undecided, reads on.
    if (socket.listeners("data").includes(onData)) socket.resume();
  }

  return {
    listen() {
      return new Promise((resolve, reject) => {
        net.once("error", reject);
        net.listen(options.port, options.host, () => {
          net.off("error", reject);
          const address = net.address();
          if (address === null || typeof address === "string") reject(new Error("listener has no TCP address"));
          else resolve({ host: address.address, port: address.port });
        });
      });
    },
    stopAccepting() {
      accepting = false;
      certificates?.close();
      net.close();
      for (const session of sessions) session.close();
      http1.closeIdleConnections();
    },
    closeIdle() {
      http1.closeIdleConnections();
    },
    destroy() {
      accepting = false;
      certificates?.close();
      if (net.listening) net.close();
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
      http1.closeAllConnections();
    },
    async idle() {
      while (sockets.size > 0) await new Promise((resolve) => setTimeout(resolve, 20));
    },
    connections: () => sockets.size,
  };
}

const ignoreStreamError = () => undefined;

/**
 * Puts `routes` in front of the compatibility layer of `server`. Node installs that layer as the server's one
 * `stream` listener when it is given a request handler; it is taken off and called only for the streams no route
 * takes. Without routes the server is left as it is.
 */
function routeRawStreams(server: Http2Server | Http2SecureServer, routes: readonly StreamRoute[]): void {
  if (routes.length === 0) return;
  const compat = server.listeners("stream");
  if (compat.length !== 1) {
    throw new Error(
      `node:http2 changed: expected its compatibility layer as the one 'stream' listener, found ${compat.length}`,
    );
  }
  const toCompat = compat[0] as (...args: unknown[]) => void;
  server.removeListener("stream", toCompat);
  server.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, ...rest: unknown[]) => {
    for (const route of routes) {
      if (route(stream, headers)) {
        stream.on("error", ignoreStreamError);
        return;
      }
    }
    toCompat.call(server, stream, headers, ...rest);
  });
}

/**
 * One debug line per client connection open and close (transport, remote address, reason,
 * duration). Debug, not info: every keep-alive, health probe and load-balancer check is a
 * connection, which would flood the log; the per-stream lines (info) say what users see.
 */
function connectionLogger(logger: Logger | undefined) {
  const log = logger?.isLevelEnabled("debug") ? logger : undefined;
  const transports = new WeakMap<Socket, ConnectionTransport>();
  return {
    opened(socket: Socket, transport?: ConnectionTransport, fields: Record<string, unknown> = {}) {
      if (log === undefined) return;
      const openedMs = Date.now();
      const address = addressFields(socket);
      if (transport !== undefined) transports.set(socket, transport);
      let failure: string | undefined;
      socket.on("error", (error: Error & { code?: string }) => {
        failure ??= error.code ?? error.message;
      });
      // The transport of a plain connection is only known after its first bytes (see identified()).
      if (transport !== undefined) log.debug({ transport, ...address, ...fields }, "connection opened");
      socket.once("close", (hadError: boolean) => {
        log.debug(
          {
            transport: transports.get(socket) ?? "unidentified",
            ...address,
            reason: failure ?? (hadError ? "error" : "closed"),
            durationMs: Date.now() - openedMs,
          },
          "connection closed",
        );
      });
    },
    identified(socket: Socket, transport: ConnectionTransport) {
      if (log === undefined) return;
      const first = !transports.has(socket);
      transports.set(socket, transport);
      if (first) {
        log.debug({ transport, ...addressFields(socket) }, "connection opened");
      }
    },
  };
}

/**
 * The address fields of a connection line: the client (from the PROXY header when there was one), the proxy, and
 * what the proxy's v2 TLVs said (the client's ALPN, authority and TLS as the proxy saw them, its unique id).
 */
function addressFields(socket: Socket): Record<string, unknown> {
  const origin = connectionOrigin(socket);
  if (origin.source === "peer" && origin.tlvs === undefined)
    return { remoteAddress: origin.address, remotePort: origin.port };
  const fields: Record<string, unknown> = {
    remoteAddress: origin.address,
    remotePort: origin.port,
    proxyAddress: origin.peerAddress,
    addressSource: origin.source,
  };
  const tlvs = origin.tlvs ?? {};
  if (tlvs.uniqueId !== undefined) fields.proxyUniqueId = tlvs.uniqueId.toString("hex");
  if (tlvs.alpn !== undefined) fields.proxyAlpn = tlvs.alpn;
  if (tlvs.authority !== undefined) fields.proxyAuthority = tlvs.authority;
  if (tlvs.ssl !== undefined) {
    fields.proxyTls = tlvs.ssl.tls ? (tlvs.ssl.version ?? "yes") : "no";
    if (tlvs.ssl.commonName !== undefined) fields.proxyClientCommonName = tlvs.ssl.commonName;
  }
  return fields;
}
