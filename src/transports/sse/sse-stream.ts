// Server-Sent Events on GET /v1/projects/{p}/topics/{t}/events: one hub subscription per response, one write per page of events.
import { codeName, httpStatusByCode, StreamgateError } from "../../errors/index.js";
import { type AnyRequest, type AnyResponse, sendError } from "../../http/index.js";
import { liveConnections } from "../../observability/index.js";
import type { FeedSubscription, StreamHub } from "../../streams/index.js";
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

/** Serves one SSE stream until the client leaves, the server shuts down or the subscription fails. */
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
  shutdownSignal.addEventListener("abort", stop, { once: true });
  response.once("close", stop);
  request.once("close", stop);
  try {
    let subscription: Awaited<ReturnType<StreamHub["subscribe"]>>;
    try {
      subscription = await hub.subscribe({
        topic: parsed.topic,
        from: parsed.from,
        filter: parsed.filter,
        signal: controller.signal,
      });
    } catch (error) {
      if (!controller.signal.aborted) sendError(response, error);
      return;
    }
    response.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      "x-accel-buffering": "no",
    });
    liveConnections.track("sse", response);
    await pump(subscription, response, openSseSink(response), maxBufferBytes);
  } finally {
    shutdownSignal.removeEventListener("abort", stop);
    response.off("close", stop);
    request.off("close", stop);
  }
}

async function pump(
  subscription: FeedSubscription,
  response: AnyResponse,
  sink: SseSink,
  maxBufferBytes: number,
): Promise<void> {
  sink.writeText(`retry: ${SSE_RETRY_MS}\n\n`);
  let final = "";
  try {
    // A page at a time: every event queued when the subscription wakes leaves in one write (one syscall, one
    // TCP segment when small), and each message's bytes are shared by every client (encoded once per message).
    for (;;) {
      const events = await subscription.nextBatch();
      if (events === null) break;
      if (sink.closed) continue;
      sink.writePage(events);
      // Past the limit, stop pulling: history is then read at the client's pace, and at the live tail the
      // hub's byte-bounded queue fills and drops this client as a slow consumer (final `event: error`).
      if (sink.buffered > maxBufferBytes) await sink.drained();
    }
  } catch (error) {
    // The subscription's cursor: the last event taken, else the pinned start (never `latest`, which would skip
    // whatever was published while the client was away).
    final = formatSseError(StreamgateError.from(error), String(subscription.lastOffset));
  } finally {
    // Page-at-a-time reading does not end the subscription on its own, as leaving a for-await loop does.
    void subscription[Symbol.asyncIterator]().return?.();
  }
  if (response.destroyed || response.writableEnded) return;
  response.end(final);
  // A client that stopped reading may never take the final event: do not hold its socket forever.
  if (!response.writableFinished) {
    const timer = setTimeout(() => response.destroy(), FINAL_FLUSH_MS);
    timer.unref();
    response.once("close", () => clearTimeout(timer));
  }
}

/** How long the final event of a stream may take to leave before the socket is cut. */
const FINAL_FLUSH_MS = 10_000;
