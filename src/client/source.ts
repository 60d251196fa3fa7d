// What a transport source is: one connection's worth of events for the reconnect loop, plus shared URL/header helpers.
import { StreamClientError } from "./stream-client-error.js";
import type { StreamGap, StreamMessage } from "./types.js";

/** One element of a connection, in order. */
export type SourceEvent =
  /** The connection is established (yielded once, first). */
  | { kind: "open" }
  | { kind: "message"; message: StreamMessage }
  | { kind: "gap"; gap: StreamGap }
  /** Every offset up to `offset` has been handled without a message to show (a long poll that pinned its cursor). */
  | { kind: "cursor"; offset: number };

/** What a source needs to open one connection. */
export interface SourceContext {
  baseUrl: string;
  token: string | undefined;
  fetch: typeof fetch;
  /** Full topic name, projects/{p}/topics/{t}. */
  topic: string;
  filter: string;
  idleTimeoutMs: number;
  longPollWaitSeconds: number;
}

/**
 * Opens one connection from `position` (`earliest`, `latest`, an offset cursor or an RFC 3339 time) and yields
 * its events. Returns when the server ends the stream; throws StreamClientError (retryable or not) on failure.
 */
export type Source = (context: SourceContext, position: string, signal: AbortSignal) => AsyncIterable<SourceEvent>;

/** GET …/topics/{t}/events with the given query. */
export function eventsUrl(context: SourceContext, query: Record<string, string>): string {
  const [, project, , topic] = context.topic.split("/");
  const search = new URLSearchParams(query);
  if (context.filter !== "") search.set("filter", context.filter);
  return `${context.baseUrl}/v1/projects/${encodeURIComponent(project!)}/topics/${encodeURIComponent(topic!)}/events?${search}`;
}

export function authHeaders(token: string | undefined, headers: Record<string, string> = {}): Record<string, string> {
  if (token !== undefined && token !== "") headers.authorization = `Bearer ${token}`;
  return headers;
}

/** fetch that reports network failures as StreamClientError UNAVAILABLE and non-2xx answers as their status. */
export async function fetchOk(
  context: Pick<SourceContext, "fetch">,
  url: string,
  init: RequestInit,
  what: string,
): Promise<Response> {
  let response: Response;
  try {
    response = await context.fetch(url, init);
  } catch (error) {
    throw StreamClientError.from(error);
  }
  if (!response.ok) throw await StreamClientError.fromResponse(response, what);
  return response;
}

/** A controller that aborts with `parent` and can be aborted on its own (idle timeout, cleanup). */
export function childController(parent: AbortSignal): { controller: AbortController; dispose(): void } {
  const controller = new AbortController();
  const abort = () => controller.abort();
  if (parent.aborted) controller.abort();
  else parent.addEventListener("abort", abort, { once: true });
  return { controller, dispose: () => parent.removeEventListener("abort", abort) };
}

/** The offset `latest` means right now (a zero-wait long poll), so a reconnect before the first message skips nothing. */
export async function pinLatest(context: SourceContext, signal: AbortSignal): Promise<number> {
  const url = eventsUrl({ ...context, filter: "" }, { from: "latest", wait: "0", max: "1" });
  const response = await fetchOk(
    context,
    url,
    { headers: authHeaders(context.token, { accept: "application/json" }), signal },
    "subscribe",
  );
  const body = (await response.json()) as { nextFrom?: string };
  const offset = Number(body.nextFrom);
  if (!Number.isSafeInteger(offset)) throw new StreamClientError("INTERNAL", "server sent no nextFrom for from=latest");
  return offset;
}
