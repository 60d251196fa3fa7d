// Server-Sent Events on GET /v1/projects/{p}/topics/{t}/events: one hub subscription per response, one write per page of events.
import type { StoredMessage } from "../../broker/types.js";
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
  response.write(`retry: ${SSE_RETRY_MS}\n\n`);
  let final = "";
  try {
    // A page at a time: every event queued when the subscription wakes leaves in one write (one syscall, one
    // TCP segment when small), and each message's text is shared by every client (encoded once per message).
    for (;;) {
      const events = await subscription.nextBatch();
      if (events === null) break;
      if (response.destroyed || response.writableEnded) continue;
      response.write(encodeSsePage(events));
      // Past the limit, stop pulling: history is then read at the client's pace, and at the live tail the
      // hub's byte-bounded queue fills and drops this client as a slow consumer (final `event: error`).
      if (response.writableLength > maxBufferBytes) await drained(response);
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

// The hub hands every subscriber of a topic the same StoredMessage object: its SSE event is encoded once.
const messageEvents = new WeakMap<StoredMessage, Buffer>();

/** The SSE bytes of one page of hub events, message events shared by every client of the topic. */
function encodeSsePage(events: readonly FeedEvent[]): Buffer {
  if (events.length === 1) return eventBytes(events[0]!);
  const parts: Buffer[] = new Array(events.length);
  let total = 0;
  for (let index = 0; index < events.length; index++) {
    const part = eventBytes(events[index]!);
    parts[index] = part;
    total += part.length;
  }
  return Buffer.concat(parts, total);
}

function eventBytes(event: FeedEvent): Buffer {
  if (event.kind !== "message") return Buffer.from(formatSseEvent(event));
  let bytes = messageEvents.get(event.message);
  if (bytes === undefined) {
    bytes = Buffer.from(formatSseEvent(event));
    messageEvents.set(event.message, bytes);
  }
  return bytes;
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
