// GET /v1/ws: accepts WebSocket upgrades (ws, noServer) and keeps connections alive with pings.
import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import { type WebSocket, WebSocketServer } from "ws";
import type { MessageInput, PublishedRef, TopicName } from "../../broker/types.js";
import { errors } from "../../errors/index.js";
import { refuse } from "../../http/index.js";
import { liveConnections, traceContextFromHeaders } from "../../observability/index.js";
import type { StreamHub } from "../../streams/index.js";
import { WsConnection } from "./ws-connection.js";

export interface WebSocketEndpointOptions {
  hub: StreamHub;
  publish(topic: TopicName, messages: MessageInput[]): Promise<PublishedRef[]>;
  /**
   * Interval of WebSocket pings. A connection is terminated as a dead peer when it has missed two pongs and
   * at least DEAD_PEER_AFTER_MS has passed since it last answered one.
   */
  heartbeatMs: number;
  /** Largest frame a client may send, in bytes; larger ones close with 1009. Default 1 MiB. */
  maxPayloadBytes?: number;
  /** Unsent bytes a connection may hold before it is closed 1013 (slow consumer). */
  maxBufferBytes: number;
  /** Default 100. */
  maxSubscriptions?: number;
  /** Default 10. */
  maxMalformedFrames?: number;
}

export interface WebSocketEndpoint {
  /** Takes over an HTTP/1.1 upgrade request for /v1/ws. */
  handleUpgrade(request: IncomingMessage, socket: Socket, head: Buffer): void;
  /** Closes every connection with 1001 (going away) and stops the ping timer. */
  close(): void;
  connections(): number;
}

export const WEBSOCKET_PATH = "/v1/ws";

/**
 * Least silence, in ms, before a connection is a dead peer, whatever the ping interval. A client that stopped reading
 * (a frozen tab, a paused stream) cannot answer pings queued behind the data it did not read; while the socket still
 * takes that data, the slow-consumer limit has not yet had its say (close 1013 with a resume point). Short ping
 * intervals must not pre-empt it: the default 15 s interval gives 30 s anyway.
 */
export const DEAD_PEER_AFTER_MS = 10_000;

export function createWebSocketEndpoint(options: WebSocketEndpointOptions): WebSocketEndpoint {
  const server = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxPayloadBytes ?? 1024 * 1024,
    perMessageDeflate: false,
    clientTracking: false,
  });
  // A refused handshake gets the JSON error every HTTP error has (ws itself would answer text/html).
  server.on("wsClientError", (error: Error, socket: Socket) => {
    refuse({ socket }, errors.invalidArgument("upgrade", error.message));
  });
  const connections = new Set<WsConnection>();
  const context = {
    hub: options.hub,
    publish: options.publish,
    maxBufferBytes: options.maxBufferBytes,
    maxSubscriptions: options.maxSubscriptions ?? 100,
    maxMalformedFrames: options.maxMalformedFrames ?? 10,
  };

  // Outside handleUpgrade's callback: a closure made there would keep the upgrade request alive with the connection.
  const admit = (ws: WebSocket, connection: WsConnection) => {
    connections.add(connection);
    ws.on("close", () => connections.delete(connection));
    liveConnections.track("websocket", ws);
  };

  const missedPongLimit = Math.max(2, Math.ceil(DEAD_PEER_AFTER_MS / options.heartbeatMs));
  const pinger = setInterval(() => {
    for (const connection of connections) {
      // A closing connection (e.g. a slow consumer's 1013) has its close frame queued behind the data it did not
      // read: terminating it on missed pongs would drop that frame and its resume point (the client saw 1006).
      if (connection.isClosing) continue;
      if (connection.missedPongs >= missedPongLimit) {
        connection.terminate();
        continue;
      }
      connection.missedPongs++;
      connection.ping();
    }
  }, options.heartbeatMs);
  pinger.unref();

  return {
    handleUpgrade(request, socket, head) {
      socket.setNoDelay(true);
      server.handleUpgrade(request, socket, head, (ws) => {
        admit(ws, new WsConnection(ws, socket, context, traceContextFromHeaders(request.headers)));
      });
    },
    close() {
      clearInterval(pinger);
      for (const connection of connections) connection.close(1001, "server is shutting down; reconnect and resume");
      server.close();
    },
    connections: () => connections.size,
  };
}
