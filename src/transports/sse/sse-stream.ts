// Server-Sent Events on GET /v1/projects/{p}/topics/{t}/events: one hub subscription per response, one write per page of events.
import { codeName, httpStatusByCode, StreamgateError } from "../../errors/index.js";
import { type AnyRequest, type AnyResponse, sendError } from "../../http/index.js";
import { liveConnections } from "../../observability/index.js";
import type { FeedEvent, FeedSubscription, StreamHub } from "../../streams/index.js";
import type { EventsRequest } from "./events-route.js";
import { openSseSink, type SseSink } from "./sse-sink.js";

/** Reconnect delay suggested to EventSource, in ms. */
export const SSE_RETRY_MS = 2_000;

/** The final `event: error` of a stream. */
export function formatSseError(error: StreamgateError, resumeFrom: string): string {
  const body = {
    code: httpStatusByCode[error.code],
    status: codeName(error.code),
    reason: error.reason,
    message: error.message,
    resumeFrom,
  };
  return `event: error\ndata: ${JSON.stringify(body)}\n\n`;
}

/**
 * Opens one SSE stream; it is then served until the client leaves, the server shuts down or the subscription fails.
 * Resolves once the stream is open (or refused): an idle stream is an {@link SseStream} waiting on one promise, not a
 * chain of suspended async functions (the edge's handler, the route's, this one, a pump), each a generator, a promise
 * and a context held per stream.
 */
export async function serveSse(
  hub: StreamHub,
  parsed: EventsRequest,
  request: AnyRequest,
  response: AnyResponse,
  shutdownSignal: AbortSignal,
  maxBufferBytes: number,
): Promise<void> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  const release = () => {
    shutdownSignal.removeEventListener("abort", stop);
    response.off("close", stop);
    request.off("close", stop);
  };
  // `on`, not `once`: `stop` is idempotent and `once` adds a wrapper, its context and a property array per listener.
  shutdownSignal.addEventListener("abort", stop);
  response.on("close", stop);
  request.on("close", stop);
  let subscription: FeedSubscription;
  try {
    subscription = await hub.subscribe({
      topic: parsed.topic,
      from: parsed.from,
      filter: parsed.filter,
      signal: controller.signal,
    });
  } catch (error) {
    release();
    if (!controller.signal.aborted) sendError(response, error);
    return;
  }
  response.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
  });
  liveConnections.track("sse", response);
  new SseStream(subscription, response, openSseSink(response), maxBufferBytes, release).start();
}

/** One open SSE stream: pulls pages from its subscription and writes each at once, until the subscription ends. */
class SseStream {
  constructor(
    private readonly subscription: FeedSubscription,
    private readonly response: AnyResponse,
    private readonly sink: SseSink,
    private readonly maxBufferBytes: number,
    private readonly release: () => void,
  ) {}

  start(): void {
    this.sink.writeText(`retry: ${SSE_RETRY_MS}\n\n`);
    this.pull();
  }

  private readonly pull = (): void => {
    this.subscription.nextBatch().then(this.onPage, this.onFailure);
  };

  // A page at a time: every event queued when the subscription wakes leaves in one write (one syscall, one TCP
  // segment when small), and each message's bytes are shared by every client (encoded once per message).
  private readonly onPage = (events: readonly FeedEvent[] | null): void => {
    if (events === null) {
      this.finish("");
      return;
    }
    try {
      if (!this.sink.closed) {
        this.sink.writePage(events);
        // Past the limit, stop pulling: history is then read at the client's pace, and at the live tail the
        // hub's byte-bounded queue fills and drops this client as a slow consumer (final `event: error`).
        if (this.sink.buffered > this.maxBufferBytes) {
          void this.sink.drained().then(this.pull);
          return;
        }
      }
    } catch (error) {
      this.onFailure(error);
      return;
    }
    this.pull();
  };

  // The subscription's cursor: the last event taken, else the pinned start (never `latest`, which would skip
  // whatever was published while the client was away).
  private readonly onFailure = (error: unknown): void => {
    this.finish(formatSseError(StreamgateError.from(error), String(this.subscription.lastOffset)));
  };

  private finish(final: string): void {
    // Page-at-a-time reading does not end the subscription on its own, as leaving a for-await loop does.
    void this.subscription[Symbol.asyncIterator]().return?.();
    this.release();
    const response = this.response;
    if (response.destroyed || response.writableEnded) return;
    response.end(final);
    // A client that stopped reading may never take the final event: do not hold its socket forever.
    if (!response.writableFinished) {
      const timer = setTimeout(() => response.destroy(), FINAL_FLUSH_MS);
      timer.unref();
      response.once("close", () => clearTimeout(timer));
    }
  }
}

/** How long the final event of a stream may take to leave before the socket is cut. */
const FINAL_FLUSH_MS = 10_000;
