// Builds what the tunnel carries of an incoming request: facts for the rules, end-to-end headers, X-Forwarded-*.
import type { Header, Protocol, RequestHead } from "../../gen/streamgate/tunnel/v1/tunnel_pb.js";
import { childTraceparent, formatTraceparent, parseTraceparent } from "../../observability/trace-context.js";
import { grpcFromPath, type RequestFacts } from "../rules/index.js";
import { endToEndHeaders, type HeaderEntry, headerEntries, isHopByHop } from "../upstream/exchange.js";

type Headers = Record<string, string | string[] | undefined>;

/** The parts of an incoming request the entry reads, whatever its transport. */
export interface IncomingRequest {
  protocol: Protocol;
  method: string;
  scheme: "http" | "https";
  authority: string;
  path: string;
  headers: Headers;
  /** "1.1" or "2". */
  httpVersion: string;
  /**
   * The verified hops from the client to this entry, client first: the client address (PROXY header or forwarding
   * headers of a trusted proxy, else the TCP peer), then each trusted proxy, the entry's TCP peer last.
   */
  clientChain: readonly string[];
  /** True when the request has no body. */
  endStream: boolean;
}

export function requestFacts(request: IncomingRequest, grpc: boolean): RequestFacts {
  return {
    authority: request.authority,
    path: request.path,
    method: request.method,
    headers: request.headers,
    grpc: grpc ? grpcFromPath(request.path.split("?")[0]!) : null,
  };
}

/**
 * The RequestHead for the agent (timeout filled when sent), and the request's trace id. Hop-by-hop
 * headers are dropped (`te: trailers` kept for gRPC, `upgrade` for WebSocket), the entry's bearer
 * token is dropped when the rule consumed it, and X-Forwarded-For/-Proto/-Host, Forwarded and a child
 * `traceparent` are set.
 */
export function buildRequestHead(
  request: IncomingRequest,
  options: { rule: string; group: string; dropAuthorization: boolean },
): { head: RequestHead; traceId: string } {
  const keep = request.protocol === 1 ? ["te"] : request.protocol === 3 ? ["upgrade"] : [];
  const entries: Header[] = [];
  // One pass over node's header object (names already lowercase) unless a `connection` header names more headers
  // to drop: then the general endToEndHeaders.
  const passed =
    request.headers.connection === undefined
      ? plainEndToEnd(request.headers, keep)
      : endToEndHeaders(headerEntries(request.headers), keep);
  for (const { name, value } of passed) {
    if (
      name !== "traceparent" &&
      !name.startsWith("x-forwarded-") &&
      name !== "forwarded" &&
      !(options.dropAuthorization && name === "authorization") &&
      (name !== "te" || request.protocol === 1)
    )
      entries.push(header(name, value));
  }
  const incomingTrace = parseTraceparent(first(request.headers.traceparent));
  const child = childTraceparent(incomingTrace);
  entries.push(header("traceparent", formatTraceparent(child)));
  // Only the verified chain goes on: hops a client wrote itself (an untrusted peer's headers, or hops left of the
  // right-most untrusted one) are dropped, so a backend never sees an address the client picked.
  const chain = request.clientChain.map((address) => address.replace(/^::ffff:/, ""));
  entries.push(header("x-forwarded-for", chain.join(", ")));
  entries.push(header("x-forwarded-proto", request.scheme));
  entries.push(header("x-forwarded-host", request.authority));
  const host = request.authority.replace(/["\\]/g, "");
  const elements = chain.map((address, index) => {
    const node = address.includes(":") ? `"[${address}]"` : address;
    return index === chain.length - 1 ? `for=${node};proto=${request.scheme};host="${host}"` : `for=${node}`;
  });
  entries.push(header("forwarded", elements.join(", ")));
  // The plain object create(RequestHeadSchema, …) makes for this proto3 message (all fields set), without reflection.
  const head: RequestHead = {
    $typeName: "streamgate.tunnel.v1.RequestHead",
    timeoutMs: 0n,
    protocol: request.protocol,
    method: request.method,
    scheme: request.scheme,
    authority: request.authority,
    path: request.path,
    headers: entries,
    endStream: request.endStream,
    rule: options.rule,
    group: options.group,
    httpVersion: request.httpVersion,
  };
  return { head, traceId: child.traceId };
}

function header(name: string, value: string): Header {
  return { $typeName: "streamgate.tunnel.v1.Header", name, value };
}

/** endToEndHeaders(headerEntries(headers), keep) for a header object without a `connection` header, in one pass. */
function plainEndToEnd(headers: Headers, keep: readonly string[]): HeaderEntry[] {
  const entries: HeaderEntry[] = [];
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (!keep.includes(lower) && (lower.startsWith(":") || isHopByHop(lower))) continue;
    if (Array.isArray(value)) for (const item of value) entries.push({ name, value: item });
    else entries.push({ name, value: String(value) });
  }
  return entries;
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(", ") : value;
}
