// Admin endpoints of the tunnel on the main port: the rules dry run and the list of connected agents.
import { Code, StreamgateError } from "../../errors/index.js";
import { type AnyRequest, type AnyResponse, sendError, sendJson } from "../../http/index.js";
import { explainMatch, grpcFromPath, type ServerRules } from "../rules/index.js";

/** Path of the dry run: which rule and target a request would get. */
export const TUNNEL_MATCH_PATH = "/v1/tunnel/match";
/** Path of the connected agents list. */
export const TUNNEL_AGENTS_PATH = "/v1/tunnel/agents";

/** One connected agent session, as `/v1/tunnel/agents` and the dashboard show it. */
export interface AgentInfo {
  client_id: string;
  group: string;
  session: string;
  version: string;
  healthy: boolean;
  draining: boolean;
  /** Ejected for a while after repeated UNAVAILABLE answers. */
  ejected: boolean;
  in_flight: number;
  standby: number;
  /** The session keeps a Stream call for the next request after a clean exchange (reuse_streams). */
  reuse_streams: boolean;
  /** Stream calls the agent attached to this session so far (with reuse, far fewer than requests). */
  streams_attached: number;
  upstreams: { name: string; address: string; serving: boolean; detail: string }[];
  /** RFC 3339. */
  connected_since: string;
}

export interface TunnelAdminSources {
  rules(): ServerRules;
  agents(): AgentInfo[];
  stats(): object;
  /** The refusal when the current request may not use admin endpoints, else null. */
  authorize(): StreamgateError | null;
}

/**
 * Answers GET /v1/tunnel/match?host=H&path=P&method=M&header=k:v&grpc=1 and GET /v1/tunnel/agents.
 * Resolves false for any other path. The caller applies admin authorization before calling.
 */
export async function handleTunnelAdmin(
  request: AnyRequest,
  response: AnyResponse,
  path: string,
  sources: TunnelAdminSources,
): Promise<boolean> {
  if (path !== TUNNEL_MATCH_PATH && path !== TUNNEL_AGENTS_PATH) return false;
  const refusal = sources.authorize();
  if (refusal !== null) {
    sendError(response, refusal);
    return true;
  }
  if (request.method !== "GET") {
    sendError(response, new StreamgateError(Code.INVALID_ARGUMENT, `${path} answers GET only`));
    return true;
  }
  if (path === TUNNEL_AGENTS_PATH) {
    sendJson(response, 200, { agents: sources.agents(), stats: sources.stats() });
    return true;
  }
  const query = new URL(request.url ?? "/", "http://localhost").searchParams;
  const requestPath = query.get("path") ?? "/";
  const headers: Record<string, string | string[]> = {};
  for (const header of query.getAll("header")) {
    const colon = header.indexOf(":");
    if (colon <= 0) {
      sendError(
        response,
        new StreamgateError(Code.INVALID_ARGUMENT, `header: expected name:value, got ${JSON.stringify(header)}`),
      );
      return true;
    }
    const name = header.slice(0, colon).trim().toLowerCase();
    const value = header.slice(colon + 1).trim();
    const existing = headers[name];
    headers[name] = existing === undefined ? value : [...(Array.isArray(existing) ? existing : [existing]), value];
  }
  const grpcFlag = query.get("grpc");
  const grpc = grpcFlag === "1" || grpcFlag === "true" ? grpcFromPath(requestPath.split("?")[0]!) : null;
  if ((grpcFlag === "1" || grpcFlag === "true") && grpc === null) {
    sendError(
      response,
      new StreamgateError(
        Code.INVALID_ARGUMENT,
        `path: a gRPC path looks like /package.Service/Method, got ${requestPath}`,
      ),
    );
    return true;
  }
  const rules = sources.rules();
  const explanation = explainMatch(rules, {
    authority: query.get("host") ?? "",
    path: requestPath,
    method: query.get("method") ?? (grpc !== null ? "POST" : "GET"),
    headers,
    grpc,
  });
  const match = explanation.match;
  sendJson(response, 200, {
    source: rules.source,
    rule: match?.rule ?? null,
    line: match?.line ?? null,
    target: match?.target ?? null,
    requires_bearer_token: match?.requiresBearerToken ?? false,
    explanation: explanation.misses,
  });
  return true;
}
