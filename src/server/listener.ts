// One TCP listener speaking HTTP/1.1 and h2c (prior knowledge) on the same port, or TLS with ALPN h2,http/1.1.
import { readFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import {
  createServer as createHttp2Server,
  createSecureServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Session,
} from "node:http2";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { PrefaceSocket } from "./preface-socket.js";

export type RequestHandler = (
  request: IncomingMessage | Http2ServerRequest,
  response: ServerResponse | Http2ServerResponse,
) => void;

export interface ListenerOptions {
  host: string;
  port: number;
  tls: { certPath: string; keyPath: string } | null;
  handler: RequestHandler;
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
}

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
    if (!accepting) session.close();
  };

  const http1 = createHttpServer(
    { keepAliveTimeout: 65_000, requestTimeout: 0, headersTimeout: 60_000 },
    options.handler,
  );
  const upgrade = options.upgrade;
  if (upgrade !== undefined)
    http1.on("upgrade", (request: IncomingMessage, socket: Socket, head: Buffer) => upgrade(request, socket, head));
  http1.on("clientError", (_error, socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
    else socket.destroy();
  });
  let h2c: ReturnType<typeof createHttp2Server> | null = null;
  let net: NetServer;

  if (options.tls === null) {
    h2c = createHttp2Server({ settings: http2Settings, maxSessionMemory: 64 }, options.handler);
    h2c.on("session", trackSession);
    // Without TCP_NODELAY every small response waits for Nagle + delayed ACK (~40 ms per unary call).
    net = createNetServer({ noDelay: true }, (socket) => {
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
      socket.on("error", () => socket.destroy());
      if (options.admitConnection?.(socket, false) === false) return;
      sniff(socket);
    });
  } else {
    const secure = createSecureServer(
      {
        cert: readFileSync(options.tls.certPath),
        key: readFileSync(options.tls.keyPath),
        allowHTTP1: true,
        ALPNProtocols: ["h2", "http/1.1"],
        settings: http2Settings,
        maxSessionMemory: 64,
        noDelay: true,
      },
      options.handler,
    );
    secure.on("session", trackSession);
    if (upgrade !== undefined) secure.on("upgrade", upgrade);
    secure.on("connection", (socket: Socket) => {
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
      options.admitConnection?.(socket, true);
    });
    secure.on("tlsClientError", () => undefined);
    net = secure as unknown as NetServer;
  }

  function sniff(socket: Socket) {
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const compared = Math.min(buffered.length, PREFACE.length);
      const isPreface = buffered.subarray(0, compared).equals(PREFACE.subarray(0, compared));
      if (isPreface && buffered.length < PREFACE.length) return;
      socket.off("data", onData);
      if (isPreface) {
        h2c!.emit("connection", new PrefaceSocket(socket, buffered));
        return;
      }
      socket.pause();
      socket.unshift(buffered);
      http1.emit("connection", socket);
      socket.resume();
    };
    socket.on("data", onData);
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
      net.close();
      for (const session of sessions) session.close();
      http1.closeIdleConnections();
    },
    closeIdle() {
      http1.closeIdleConnections();
    },
    destroy() {
      accepting = false;
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
