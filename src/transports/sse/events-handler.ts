// Routes GET …/topics/{t}/events to the SSE stream or, with `wait` and no text/event-stream Accept, the long poll.
import type { Engine } from "../../engines/engine.js";
import { type AnyRequest, type AnyResponse, sendError } from "../../http/index.js";
import type { StreamHub } from "../../streams/index.js";
import { matchEventsPath, parseEventsRequest } from "./events-route.js";
import { serveLongPoll } from "./long-poll.js";
import { serveSse } from "./sse-stream.js";

export interface EventsHandlerOptions {
  hub: StreamHub;
  /** The hub long polls read from (e.g. one observed at another log level). Default: `hub`. */
  longPollHub?: StreamHub;
  /** For pinning long-poll cursors (latest/earliest/time) to offsets. */
  engine: Engine;
  /** Aborts on drain/close: streams end so clients reconnect elsewhere. */
  shutdownSignal: AbortSignal;
  /** Unsent bytes an SSE response may hold before the client is dropped as a slow consumer. */
  maxBufferBytes: number;
}

/** Resolves true when it handled the request (events path), false to let other routes try. */
export function createEventsHandler(
  options: EventsHandlerOptions,
): (request: AnyRequest, response: AnyResponse, path: string) => Promise<boolean> {
  return async (request, response, path) => {
    if (request.method !== "GET") return false;
    let parsed: ReturnType<typeof parseEventsRequest>;
    try {
      const topic = matchEventsPath(path);
      if (topic === null) return false;
      parsed = parseEventsRequest(request, topic);
    } catch (error) {
      sendError(response, error);
      return true;
    }
    const accept = String(request.headers.accept ?? "");
    if (parsed.query.has("wait") && !accept.includes("text/event-stream")) {
      await serveLongPoll(
        options.longPollHub ?? options.hub,
        options.engine,
        parsed,
        request,
        response,
        options.shutdownSignal,
      );
    } else {
      await serveSse(options.hub, parsed, request, response, options.shutdownSignal, options.maxBufferBytes);
    }
    return true;
  };
}
