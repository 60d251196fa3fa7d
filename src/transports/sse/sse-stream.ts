// Server-Sent Events on GET /v1/projects/{p}/topics/{t}/events: one hub subscription per response, writes coalesced per tick.
import { codeName, httpStatusByCode, StreamgateError } from "../../errors/index.js";
import { type AnyRequest, type AnyResponse, sendError } from "../../http/index.js";
import { liveConnections } from "../../observability/index.js";
import type { FeedEvent, FeedSubscription, StreamHub } from "../../streams/index.js";
import { encodeMessageJson } from "../../streams/index.js";
import type { EventsRequest } from "./events-route.js";

/** Reconnect delay suggested to EventSource, in ms. */
export const SSE_RETRY_MS = 2_000;

/** The SSE text of one hub event. Gap events carry `id: firstAvailable - 1` so a reconnect does not repeat them. */
export function formatSseEvent(event: FeedEvent): string {
  switch (event.kind) {
    case "message":
      return `id: ${event.message.offset}\nevent: message\ndata: ${encodeMessageJson(event.message)}\n\n`;
    case "gap":
      return (
        `id: ${event.firstAvailable - 1}\nevent: gap\ndata: ` +
        `{"fromOffset":"${event.fromOffset}","firstAvailable":"${event.firstAvailable}","lost":${event.lost}}\n\n`
      );
    case "heartbeat":
      return ": keepalive\n\n";
  }
}

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
    await pump(subscription, response, maxBufferBytes);
  } finally {
    shutdownSignal.removeEventListener("abort", stop);
    response.off("close", stop);
    request.off("close", stop);
  }
}

async function pump(subscription: FeedSubscription, response: AnyResponse, maxBufferBytes: number): Promise<void> {
  let pending: string[] = [`retry: ${SSE_RETRY_MS}\n\n`];
  let scheduled = false;
  // Events that are ready in the same tick go out in one write (one syscall, one TCP segment when small).
  const flush = () => {
    scheduled = false;
    if (pending.length === 0 || response.destroyed || response.writableEnded) return;
    const text = pending.length === 1 ? pending[0]! : pending.join("");
    pending = [];
    response.write(text);
  };
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(flush);
  };
  schedule();
  try {
    for await (const event of subscription) {
      pending.push(formatSseEvent(event));
      schedule();
      // Past the limit, stop pulling: history is then read at the client's pace, and at the live tail the
      // hub's byte-bounded queue fills and drops this client as a slow consumer (final `event: error`).
      if (response.writableLength > maxBufferBytes) {
        flush();
        await drained(response);
      }
    }
  } catch (error) {
    // The subscription's cursor: the last event taken, else the pinned start (never `latest`, which would skip
    // whatever was published while the client was away).
    pending.push(formatSseError(StreamgateError.from(error), String(subscription.lastOffset)));
  }
  flush();
  if (response.writableEnded) return;
  response.end();
  // A client that stopped reading may never take the final event: do not hold its socket forever.
  if (!response.writableFinished) {
    const timer = setTimeout(() => response.destroy(), FINAL_FLUSH_MS);
    timer.unref();
    response.once("close", () => clearTimeout(timer));
  }
}

/** How long the final event of a stream may take to leave before the socket is cut. */
const FINAL_FLUSH_MS = 10_000;

/** Resolves on 'drain' or when the stream closes (no listener is left behind). */
function drained(response: AnyResponse): Promise<void> {
  if (response.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      response.off("drain", done);
      response.off("close", done);
      resolve();
    };
    response.on("drain", done);
    response.on("close", done);
  });
}
