// Builds what the tunnel carries of an incoming request: facts for the rules, end-to-end headers, X-Forwarded-*.
import { create } from "@bufbuild/protobuf";
import { type Protocol, type RequestHead, RequestHeadSchema } from "../../gen/streamgate/tunnel/v1/tunnel_pb.js";
import { childTraceparent, formatTraceparent, parseTraceparent } from "../../observability/trace-context.js";
import { grpcFromPath, type RequestFacts } from "../rules/index.js";
import { endToEndHeaders, type HeaderEntry, headerEntries } from "../upstream/exchange.js";

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
  const entries: HeaderEntry[] = endToEndHeaders(headerEntries(request.headers), keep).filter(
    ({ name }) =>
      name !== "traceparent" &&
      !name.startsWith("x-forwarded-") &&
      name !== "forwarded" &&
      !(options.dropAuthorization && name === "authorization") &&
      (name !== "te" || request.protocol === 1),
  );
  const incomingTrace = parseTraceparent(first(request.headers.traceparent));
  const child = childTraceparent(incomingTrace);
  entries.push({ name: "traceparent", value: formatTraceparent(child) });
  // Only the verified chain goes on: hops a client wrote itself (an untrusted peer's headers, or hops left of the
  // right-most untrusted one) are dropped, so a backend never sees an address the client picked.
  const chain = request.clientChain.map((address) => address.replace(/^::ffff:/, ""));
  entries.push({ name: "x-forwarded-for", value: chain.join(", ") });
  entries.push({ name: "x-forwarded-proto", value: request.scheme });
  entries.push({ name: "x-forwarded-host", value: request.authority });
  const host = request.authority.replace(/["\\]/g, "");
  const elements = chain.map((address, index) => {
    const node = address.includes(":") ? `"[${address}]"` : address;
    return index === chain.length - 1 ? `for=${node};proto=${request.scheme};host="${host}"` : `for=${node}`;
  });
  entries.push({ name: "forwarded", value: elements.join(", ") });
  const head = create(RequestHeadSchema, {
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
  });
  return { head, traceId: child.traceId };
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(", ") : value;
}
