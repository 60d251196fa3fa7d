// The client address of a connection and of a request: what per-IP limits, logs, auth and the tunnel's forwarding headers use.
import type { IncomingMessage } from "node:http";
import type { Http2ServerRequest, IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import type { Socket } from "node:net";
import type { ProxyTlvs } from "./proxy-protocol.js";
import {
  type ClientAddressSource,
  NO_TRUSTED_PROXIES,
  plainAddress,
  type TrustedProxies,
  verifiedChain,
} from "./trusted-proxies.js";

/** What the listener learnt about one TCP connection before any request on it. */
export interface ConnectionOrigin {
  /** The TCP peer (the proxy, when there is one). */
  peerAddress: string;
  /** The PROXY header's source when it named one, else the TCP peer. */
  address: string;
  port: number | undefined;
  /** "proxy_protocol" when a PROXY header named the client (not for LOCAL, UNKNOWN or UNIX headers). */
  source: "proxy_protocol" | "peer";
  /** The PROXY v2 TLVs kept (ALPN, authority, SSL, unique id), when there was a header. */
  tlvs?: ProxyTlvs;
  /** The listener's trusted proxies: whose forwarding headers requests on this connection may use. */
  trusted: TrustedProxies;
}

/**
 * Kept on the socket under a symbol rather than in a WeakMap: node's HTTP/2 hands out a Proxy for a session's socket
 * (`session.socket`, `request.socket`), which forwards property reads to the real socket but is another object.
 */
const ORIGIN = Symbol("streamgate.connectionOrigin");
type WithOrigin = { [ORIGIN]?: ConnectionOrigin; _parent?: WithOrigin };

/** Records what the listener learnt (PROXY header, trusted list) for `socket`. */
export function setConnectionOrigin(socket: Socket, origin: ConnectionOrigin): void {
  (socket as unknown as WithOrigin)[ORIGIN] = origin;
}

/**
 * The origin of a connection's socket. A TLS socket wraps the TCP socket the listener saw; node keeps that one as
 * `_parent` (stable since node 0.11, not typed), so the origin recorded before the handshake is found.
 */
export function connectionOrigin(socket: Socket | undefined | null): ConnectionOrigin {
  if (socket !== undefined && socket !== null) {
    const marked = socket as unknown as WithOrigin;
    const origin = marked[ORIGIN] ?? marked._parent?.[ORIGIN];
    if (origin !== undefined) return origin;
  }
  const peer = plainAddress(socket?.remoteAddress ?? "unknown");
  return { peerAddress: peer, address: peer, port: socket?.remotePort, source: "peer", trusted: NO_TRUSTED_PROXIES };
}

/** The socket of a request's connection (for HTTP/2, the session's; `request.socket` is a proxy object there). */
function connectionSocket(request: IncomingMessage | Http2ServerRequest): Socket | undefined {
  if ("stream" in request && request.stream !== undefined) return request.stream.session?.socket as Socket | undefined;
  return request.socket ?? undefined;
}

/** A request's client: its address, the verified hops from it to this server, and where the address came from. */
export interface RequestClient {
  address: string;
  /** Client first, this server's TCP peer last; every hop right of the client is a trusted proxy. */
  chain: readonly string[];
  source: ClientAddressSource;
  /** The TCP peer. */
  peerAddress: string;
}

const resolved = new WeakMap<object, RequestClient>();

/**
 * The client of a request: the connection's address (PROXY header or TCP peer) and, when that is a trusted proxy,
 * the right-most untrusted hop of `Forwarded` / `X-Forwarded-For`. An untrusted peer's headers are never read.
 */
export function requestClient(request: IncomingMessage | Http2ServerRequest): RequestClient {
  const cached = resolved.get(request);
  if (cached !== undefined) return cached;
  const client = clientOf(connectionOrigin(connectionSocket(request)), request.headers);
  resolved.set(request, client);
  return client;
}

/** The client of each connection whose peer is not a trusted proxy: the same for all its requests. */
const byOrigin = new WeakMap<ConnectionOrigin, RequestClient>();

/**
 * The client of a raw HTTP/2 stream (one a listener's stream route took), as requestClient finds a request's.
 * When the connection's peer is not a trusted proxy no header is read, so every stream of the connection gets the
 * same (frozen) answer.
 */
export function streamClient(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): RequestClient {
  const origin = connectionOrigin(stream.session?.socket as Socket | undefined);
  if (origin.trusted.trusts(origin.address)) return clientOf(origin, headers);
  let client = byOrigin.get(origin);
  if (client === undefined) {
    client = clientOf(origin, headers);
    Object.freeze(client.chain);
    byOrigin.set(origin, Object.freeze(client));
  }
  return client;
}

function clientOf(origin: ConnectionOrigin, headers: IncomingHttpHeaders): RequestClient {
  const { chain, fromHeaders } = verifiedChain(origin.address, headers, origin.trusted);
  if (origin.source === "proxy_protocol") chain.push(origin.peerAddress);
  return {
    address: chain[0]!,
    chain,
    source: fromHeaders ? "forwarded" : origin.source,
    peerAddress: origin.peerAddress,
  };
}

/** The client address of a request (see requestClient). */
export function requestClientAddress(request: IncomingMessage | Http2ServerRequest): string {
  return requestClient(request).address;
}
