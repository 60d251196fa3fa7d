// The transport-neutral exchange a forwarder carries to a backend, and the header rules every hop shares.

import type { StreamgateError } from "../../errors/index.js";
import type { RequestHead } from "../../gen/streamgate/tunnel/v1/tunnel_pb.js";

/** One header or metadata entry; names lowercase, `-bin` values stay base64 text as on the wire. */
export interface HeaderEntry {
  name: string;
  value: string;
}

/** A request to carry to a backend: its head (as the tunnel frames it), its body and its cancellation. */
export interface UpstreamExchange {
  /** Protocol, method, authority, path, end-to-end headers and the remaining deadline. */
  head: RequestHead;
  /**
   * Request body bytes (gRPC: length-prefixed messages as read; WebSocket: raw bytes after the
   * upgrade). It ends when the client half-closes. Pulled only as fast as the backend accepts.
   */
  body: AsyncIterable<Uint8Array>;
  /** Aborts the backend call (the client cancelled or the tunnel stream went away). */
  signal: AbortSignal;
  /**
   * When `head.timeoutMs` was measured (`Date.now()`); the time spent since is subtracted before the
   * next hop. Default: when `forward()` was called.
   */
  receivedAtMs?: number;
  /** W3C trace id (32 hex) for a new `traceparent` when the request carries none. */
  traceId?: string;
}

/** What a sink's `data` may return when it took the bytes at once: the caller need not wait (see ResponseSink). */
export const WRITTEN: Promise<void> = Promise.resolve();

/** The response head a forwarder reports. */
export interface ResponseHeadInit {
  /** HTTP status (200 for gRPC, 101 for a WebSocket upgrade). */
  status: number;
  headers: HeaderEntry[];
  /** True when nothing follows (a gRPC trailers-only response carries grpc-status here). */
  endStream: boolean;
}

/**
 * Where a forwarder writes the backend's response, in order: `head`, then `data`*, then
 * `trailers`; or `error` at any point. Exactly one terminal call (`head` with endStream, `trailers`
 * or `error`) unless a call rejects, after which the forwarder stops calling and aborts the backend.
 * Each returned promise is the backpressure: the forwarder reads no more from the backend until it settles.
 * `data` returns WRITTEN when it took the bytes at once, so a caller may go on without waiting.
 */
export interface ResponseSink {
  head(head: ResponseHeadInit): Promise<void>;
  data(bytes: Uint8Array): Promise<void>;
  /** The response is complete; gRPC trailers as received (grpc-status, grpc-message, details); empty for HTTP. */
  trailers(headers: HeaderEntry[]): Promise<void>;
  error(error: StreamgateError): Promise<void>;
}

/** Headers that belong to one connection and never cross a proxy (RFC 9110 section 7.6.1, plus HTTP/2 rules). */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "http2-settings",
]);

/** True for a header (lowercase name) that belongs to one connection: see HOP_BY_HOP. */
export function isHopByHop(lowerName: string): boolean {
  return HOP_BY_HOP.has(lowerName);
}

/**
 * `headers` without hop-by-hop and pseudo headers, and without any header the `connection` header
 * names. `keep` lists hop-by-hop names to keep anyway (e.g. `upgrade` for a WebSocket handshake).
 */
export function endToEndHeaders(headers: readonly HeaderEntry[], keep: readonly string[] = []): HeaderEntry[] {
  const named = new Set<string>();
  for (const { name, value } of headers) {
    if (name.toLowerCase() !== "connection") continue;
    for (const token of value.split(",")) named.add(token.trim().toLowerCase());
  }
  return headers.filter(({ name }) => {
    const lower = name.toLowerCase();
    if (keep.includes(lower)) return true;
    return !lower.startsWith(":") && !HOP_BY_HOP.has(lower) && !named.has(lower);
  });
}

/** Header entries from a node header object (`IncomingHttpHeaders`-like); arrays keep their order. */
export function headerEntries(headers: Record<string, string | string[] | number | undefined>): HeaderEntry[] {
  const entries: HeaderEntry[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const item of value) entries.push({ name, value: item });
    else entries.push({ name, value: String(value) });
  }
  return entries;
}

/** Header entries from node's raw `[name, value, name, value, …]` list, names lowercased. */
export function rawHeaderEntries(raw: readonly string[]): HeaderEntry[] {
  const entries: HeaderEntry[] = [];
  for (let index = 0; index + 1 < raw.length; index += 2) {
    entries.push({ name: raw[index]!.toLowerCase(), value: raw[index + 1]! });
  }
  return entries;
}

/** A node header object from entries; repeated names become arrays (node sends each as its own field). */
export function headerObject(entries: readonly HeaderEntry[]): Record<string, string | string[]> {
  const object: Record<string, string | string[]> = {};
  for (const { name, value } of entries) {
    const lower = name.toLowerCase();
    const existing = object[lower];
    if (existing === undefined) object[lower] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else object[lower] = [existing, value];
  }
  return object;
}

/** Remaining ms of the exchange's deadline, or undefined when it has none (may be ≤ 0 when expired). */
export function remainingMs(exchange: UpstreamExchange, startedAtMs: number): number | undefined {
  const timeout = Number(exchange.head.timeoutMs);
  if (!(timeout > 0)) return undefined;
  return timeout - (Date.now() - (exchange.receivedAtMs ?? startedAtMs));
}

/** A `grpc-timeout` header value (at most 8 digits, as the gRPC spec requires) for `ms` milliseconds. */
export function formatGrpcTimeout(ms: number): string {
  const value = Math.max(1, Math.ceil(ms));
  if (value < 1e8) return `${value}m`;
  if (value / 1000 < 1e8) return `${Math.ceil(value / 1000)}S`;
  return `${Math.min(99_999_999, Math.ceil(value / 60_000))}M`;
}
