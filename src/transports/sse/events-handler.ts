// The route of GET …/topics/{t}/events: the SSE stream or, with `wait` and no text/event-stream Accept, the long poll.
import type { Engine } from "../../engines/engine.js";
import { type Route, sendError } from "../../http/index.js";
import type { StreamHub } from "../../streams/index.js";
import { EVENTS_PATH, matchEventsPath, parseEventsRequest } from "./events-route.js";
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

/** The route of GET …/topics/{t}/events for the edge's route table: SSE, or with `wait` the long poll. */
export function createEventsRoute(options: EventsHandlerOptions): Route {
  return {
    methods: ["GET"],
    path: EVENTS_PATH,
    async handle(request, response) {
      let parsed: ReturnType<typeof parseEventsRequest>;
      try {
        const path = (request.url ?? "/").split("?")[0]!;
        parsed = parseEventsRequest(request, matchEventsPath(path)!);
      } catch (error) {
        sendError(response, error);
        return;
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
    },
  };
}
