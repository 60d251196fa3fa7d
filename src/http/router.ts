// The one route table of the HTTP edge: every plain-HTTP endpoint of the main port (Pub/Sub REST, SSE and long
// poll, the dashboard, health, readiness, metrics, JWKS, the tunnel admin) is a `{methods, path, handle}` entry,
// looked up once per request; no handler probes a request and passes it on. gRPC, gRPC-Web and Connect calls
// reach connect's router or the lean gRPC path before this table; WebSocket upgrades take the listener's
// upgrade hook.
import type { AnyRequest, AnyResponse } from "./json-response.js";

/** Named groups of a pattern route (raw, still percent-encoded), or {} for an exact path. */
export type RouteParams = Readonly<Record<string, string>>;

export interface Route {
  /** Methods served, e.g. ["GET"]; a route serving GET serves HEAD too. */
  methods: readonly string[];
  /** An exact path, or a pattern tested against the whole path (its named groups become the params). */
  path: string | RegExp;
  /**
   * A fallback answers only paths no other route's path matches, whatever the method (e.g. Pub/Sub's HTML 404
   * under /v1/projects/); its `methods` are ignored.
   */
  fallback?: boolean;
  handle(request: AnyRequest, response: AnyResponse, params: RouteParams): void | Promise<void>;
}

export type RouteMatch =
  | { kind: "route"; route: Route; params: RouteParams }
  /** The path exists, the method does not: what the path does allow (for `allow`). */
  | { kind: "method"; allow: string[] }
  | { kind: "none" };

export interface Router {
  match(method: string, path: string): RouteMatch;
  /** Every route, in lookup order (exact paths first). */
  readonly routes: readonly Route[];
}

const serves = (route: Route, method: string) =>
  route.methods.includes(method) || (method === "HEAD" && route.methods.includes("GET"));

/** Exact paths are looked up in a map, then patterns in table order; fallbacks only when no path matched. */
export function createRouter(table: readonly Route[]): Router {
  const exact = new Map<string, Route[]>();
  const patterns: Route[] = [];
  const fallbacks: Route[] = [];
  for (const route of table) {
    if (route.fallback === true) fallbacks.push(route);
    else if (typeof route.path === "string") exact.set(route.path, [...(exact.get(route.path) ?? []), route]);
    else patterns.push(route);
  }
  const testPattern = (route: Route, path: string) => {
    const found = (route.path as RegExp).exec(path);
    return found === null ? null : ((found.groups ?? {}) as RouteParams);
  };
  return {
    routes: [...[...exact.values()].flat(), ...patterns, ...fallbacks],
    match(method, path) {
      const allow = new Set<string>();
      for (const route of exact.get(path) ?? []) {
        if (serves(route, method)) return { kind: "route", route, params: {} };
        for (const served of route.methods) allow.add(served);
      }
      for (const route of patterns) {
        const params = testPattern(route, path);
        if (params === null) continue;
        if (serves(route, method)) return { kind: "route", route, params };
        for (const served of route.methods) allow.add(served);
      }
      if (allow.size > 0) {
        if (allow.has("GET")) allow.add("HEAD");
        return { kind: "method", allow: [...allow] };
      }
      for (const route of fallbacks) {
        const params = typeof route.path === "string" ? (route.path === path ? {} : null) : testPattern(route, path);
        if (params !== null) return { kind: "route", route, params };
      }
      return { kind: "none" };
    },
  };
}
