// Authentication at the edge: reads the bearer token of every request or upgrade, verifies it, and runs the
// rest of the request as its principal; refusals are answered in the caller's protocol (gRPC 16, 401, close 1008).
import type { IncomingMessage } from "node:http";
import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import type { Socket } from "node:net";
import { WebSocketServer } from "ws";
import { Code, StreamgateError } from "../errors/index.js";
import {
  type AnyRequest,
  type AnyResponse,
  type RefusalTarget,
  type RequestClient,
  refuse,
  requestClientAddress,
  streamClient,
} from "../http/index.js";
import { type Principal, type PrincipalRunner, principalRunner, runAsPrincipal } from "./principal-context.js";
import { AuthTransport, type TokenPrincipal } from "./token-principal.js";
import type { TokenVerifier } from "./token-verifier.js";

/** Query parameter carrying the token where headers cannot be set (browser WebSocket, EventSource). */
export const TOKEN_QUERY_PARAMETER = "access_token";
/** Cookie carrying the token for browsers (GET requests and same-origin WebSocket upgrades only). */
export const TOKEN_COOKIE = "streamgate_token";

export interface AuthEdgeOptions {
  /** null = auth off: every request runs as `anonymous@<ip>` and is allowed everything. */
  verifier: TokenVerifier | null;
  /** Serve GET /metrics without a token. Default false: it needs a token with `"admin": ["*"]`. */
  metricsPublic: boolean;
  /** Called for each refused request (the auth-failures metric). */
  /** `clientAddress`: the request's client (PROXY header or trusted forwarding headers, else the TCP peer). */
  onFailure(transport: AuthTransport, reason: string, clientAddress?: string): void;
}

export interface AuthEdge {
  readonly enabled: boolean;
  /** Runs `next` as the request's principal, or answers the request itself when it is refused. */
  handle(request: AnyRequest, response: AnyResponse, next: () => void): void;
  /**
   * The same for a raw HTTP/2 stream (a listener stream route: no request/response objects); refusals are
   * written on the stream (gRPC trailers-only, else the JSON error).
   */
  handleStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, next: () => void): void;
  /** The same for an HTTP/1.1 upgrade (WebSocket): refusals complete the handshake and close 1008. */
  upgrade(request: IncomingMessage, socket: Socket, head: Buffer, next: () => void): void;
}

/** Paths anyone may call: probes, push-token keys, and the gRPC health service. */
const OPEN_PATHS = new Set(["/healthz", "/readyz", "/.well-known/jwks.json"]);
const HEALTH_SERVICE_PREFIX = "/grpc.health.v1.Health/";
/** Paths that need a token with admin on every resource. */
const GLOBAL_ADMIN_PATHS = new Set(["/v1/dashboard/overview", "/metrics"]);

/** What the edge reads of a request: method, target and headers (a request object's, or a raw stream's). */
type EdgeRequest = Pick<IncomingMessage, "method" | "url" | "headers">;

function header(request: EdgeRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function transportOf(request: EdgeRequest, path: string, upgrade: boolean): AuthTransport {
  if (upgrade) return AuthTransport.websocket;
  const contentType = header(request, "content-type") ?? "";
  if (contentType.startsWith("application/grpc-web")) return AuthTransport.grpcWeb;
  if (contentType.startsWith("application/grpc")) return AuthTransport.grpc;
  if (contentType.startsWith("application/connect+") || header(request, "connect-protocol-version") !== undefined) {
    return AuthTransport.connect;
  }
  if (path.startsWith("/v1/")) return path.endsWith("/events") ? AuthTransport.sse : AuthTransport.rest;
  return AuthTransport.http;
}

function unauthenticated(reason: string, message: string): StreamgateError {
  // The detail makes REST bodies carry the reason (error.details[0].reason).
  return new StreamgateError(Code.UNAUTHENTICATED, message, { reason, details: { scheme: "Bearer" } });
}

/**
 * The token of a request: `authorization: Bearer …`, else `?access_token=…`, else the `streamgate_token`
 * cookie when `cookieAllowed`. Returns undefined when there is none.
 * @throws StreamgateError UNAUTHENTICATED (TOKEN_MALFORMED) for an authorization header that is not Bearer.
 */
export function tokenOf(request: EdgeRequest, cookieAllowed: boolean): string | undefined {
  const authorization = header(request, "authorization");
  if (authorization !== undefined) {
    const match = /^Bearer[ \t]+(\S+)\s*$/i.exec(authorization);
    if (match === null) {
      throw unauthenticated("TOKEN_MALFORMED", 'the authorization header must be "Bearer <token>"');
    }
    return match[1];
  }
  const url = request.url ?? "";
  if (url.includes(`${TOKEN_QUERY_PARAMETER}=`)) {
    const query = url.indexOf("?");
    const token = query < 0 ? null : new URLSearchParams(url.slice(query + 1)).get(TOKEN_QUERY_PARAMETER);
    if (token !== null && token !== "") return token;
  }
  if (cookieAllowed) {
    const cookies = header(request, "cookie") ?? "";
    for (const part of cookies.split(";")) {
      const separator = part.indexOf("=");
      if (separator > 0 && part.slice(0, separator).trim() === TOKEN_COOKIE) {
        // A JWT needs no escaping; a value that does not decode is simply not one.
        let token: string;
        try {
          token = decodeURIComponent(part.slice(separator + 1).trim());
        } catch {
          throw unauthenticated("TOKEN_MALFORMED", `the ${TOKEN_COOKIE} cookie is not a token`);
        }
        if (token !== "") return token;
      }
    }
  }
  return undefined;
}

/**
 * Cookies ride along on cross-site requests, so they count only where a forged request cannot change
 * anything: GET/HEAD, and WebSocket upgrades whose Origin is this host (or that send no Origin).
 */
function cookieAllowed(request: EdgeRequest, upgrade: boolean): boolean {
  if (!upgrade) return request.method === "GET" || request.method === "HEAD";
  const origin = header(request, "origin");
  if (origin === undefined) return true;
  const host = header(request, "host") ?? header(request, ":authority");
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}

/** Creates the edge; with `verifier` null it only tags requests with an anonymous principal. */
export function createAuthEdge(options: AuthEdgeOptions): AuthEdge {
  const { verifier } = options;
  const closer = new WebSocketServer({ noServer: true, clientTracking: false, perMessageDeflate: false });

  const anonymous = (remoteAddress: string): Principal => ({
    id: `anonymous@${remoteAddress}`,
    authenticated: false,
    remoteAddress,
  });

  /** Runs work as a client's anonymous principal: one per client (a connection's, see streamClient), not one per call. */
  const anonymousByClient = new WeakMap<RequestClient, PrincipalRunner>();

  /** Resolves the principal, or throws the StreamgateError to answer with. */
  const authenticate = async (
    request: EdgeRequest,
    clientAddress: () => string,
    path: string,
    transport: AuthTransport,
    upgrade: boolean,
  ): Promise<Principal> => {
    if (verifier === null) return anonymous(clientAddress());
    const open =
      OPEN_PATHS.has(path) ||
      path.startsWith(HEALTH_SERVICE_PREFIX) ||
      (path === "/metrics" && options.metricsPublic) ||
      // The dashboard's static files (`/`, `/app.js`, …): one path segment, GET/HEAD; its data API needs a token.
      (!upgrade &&
        (request.method === "GET" || request.method === "HEAD") &&
        /^\/[^/]*$/.test(path) &&
        path !== "/metrics");
    if (open) return anonymous(clientAddress());
    const token = tokenOf(request, cookieAllowed(request, upgrade));
    if (token === undefined) {
      throw unauthenticated(
        "TOKEN_MISSING",
        `no token: send "authorization: Bearer <token>", the ${TOKEN_QUERY_PARAMETER} query parameter or the ${TOKEN_COOKIE} cookie`,
      );
    }
    const verified = await verifier.verify(token);
    const principal: TokenPrincipal = {
      id: verified.subject,
      authenticated: true,
      remoteAddress: clientAddress(),
      grants: verified.grants,
      transport,
      expiresAtMs: verified.expiresAtMs,
    };
    if (GLOBAL_ADMIN_PATHS.has(path) && !principal.grants.globalAdmin) {
      throw new StreamgateError(
        Code.PERMISSION_DENIED,
        `${path} needs a token with admin on every resource ("admin": ["*"])`,
        { reason: "PERMISSION_DENIED", details: { resource: path } },
      );
    }
    return principal;
  };

  /** An HTTP request or HTTP/2 stream: runs `next` as its principal, or refuses it on `target` (and counts why). */
  const authenticateThen = (
    request: EdgeRequest,
    clientAddress: () => string,
    target: RefusalTarget,
    next: () => void,
  ): void => {
    const path = (request.url ?? "/").split("?")[0]!;
    const transport = transportOf(request, path, false);
    authenticate(request, clientAddress, path, transport, false).then(
      (principal) => runAsPrincipal(principal, next),
      (error: unknown) => {
        const failure = StreamgateError.from(error);
        options.onFailure(transport, failure.reason, clientAddress());
        refuse(target, failure);
      },
    );
  };

  return {
    enabled: verifier !== null,
    handle(request, response, next) {
      const clientAddress = () => requestClientAddress(request);
      if (verifier === null) {
        runAsPrincipal(anonymous(clientAddress()), next);
        return;
      }
      authenticateThen(request, clientAddress, { request, response }, next);
    },
    handleStream(stream, headers, next) {
      const client = streamClient(stream, headers);
      const clientAddress = () => client.address;
      if (verifier === null) {
        let runAsClient = anonymousByClient.get(client);
        if (runAsClient === undefined) {
          runAsClient = principalRunner(anonymous(client.address));
          anonymousByClient.set(client, runAsClient);
        }
        runAsClient(next);
        return;
      }
      const request: EdgeRequest = { method: headers[":method"], url: headers[":path"], headers };
      authenticateThen(request, clientAddress, { stream, headers }, next);
    },
    upgrade(request, socket, head, next) {
      const clientAddress = () => requestClientAddress(request);
      if (verifier === null) {
        runAsPrincipal(anonymous(clientAddress()), next);
        return;
      }
      const path = (request.url ?? "/").split("?")[0]!;
      authenticate(request, clientAddress, path, AuthTransport.websocket, true).then(
        (principal) => runAsPrincipal(principal, next),
        (error: unknown) => {
          const failure = StreamgateError.from(error);
          options.onFailure(AuthTransport.websocket, failure.reason, clientAddress());
          if (socket.destroyed) return;
          // A browser sees no HTTP status of a failed upgrade, only the close frame: complete it and close.
          closer.handleUpgrade(request, socket, head, (webSocket) => refuse({ webSocket }, failure));
        },
      );
    },
  };
}
