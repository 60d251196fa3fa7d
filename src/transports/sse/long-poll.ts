// Long poll on GET …/topics/{t}/events?wait=<s>: a JSON batch after at least one message or the wait.
import type { StreamPosition } from "../../broker/types.js";
import type { Engine } from "../../engines/engine.js";
import { errors, StreamgateError } from "../../errors/index.js";
import { type AnyRequest, type AnyResponse, sendError } from "../../http/index.js";
import { encodeMessageJson, type StreamHub } from "../../streams/index.js";
import type { EventsRequest } from "./events-route.js";

/** Longest accepted `wait`, in seconds (below common 60 s proxy idle timeouts with the response time). */
export const MAX_WAIT_SECONDS = 60;
export const DEFAULT_MAX_MESSAGES = 100;
export const MAX_MAX_MESSAGES = 1000;
/** Longest a `wait=0` poll waits for history catch-up before answering with what it has. */
const MAX_CATCH_UP_MS = 5_000;

/**
 * Answers `{"messages":[…],"nextFrom":"<offset>"}` (plus `"gap"` when retention removed
 * messages at the cursor). `nextFrom` is the cursor for the next poll: the last offset returned,
 * or the position the poll started after when none arrived.
 */
export async function serveLongPoll(
  hub: StreamHub,
  engine: Engine,
  parsed: EventsRequest,
  request: AnyRequest,
  response: AnyResponse,
  shutdownSignal: AbortSignal,
): Promise<void> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  shutdownSignal.addEventListener("abort", stop, { once: true });
  request.once("close", stop);
  response.once("close", stop);
  let timer: NodeJS.Timeout | undefined;
  try {
    const waitSeconds = parseNumber(parsed.query.get("wait") ?? "0", "wait", 0, MAX_WAIT_SECONDS, false);
    const max = parseNumber(parsed.query.get("max") ?? String(DEFAULT_MAX_MESSAGES), "max", 1, MAX_MAX_MESSAGES, true);
    const after = await cursorOf(engine, parsed);
    const subscription = await hub.subscribe({
      topic: parsed.topic,
      from: { kind: "after", offset: after },
      filter: parsed.filter,
      signal: controller.signal,
    });
    const messages: string[] = [];
    let nextFrom = after;
    let gap = "";
    // wait=0 still lets history catch-up finish (bounded), so an engine with async reads answers with it.
    timer = setTimeout(stop, waitSeconds === 0 ? MAX_CATCH_UP_MS : waitSeconds * 1000);
    let finishing = false;
    // Once something arrived (or wait=0), let the first read finish (history catch-up: engines such
    // as jetstream read asynchronously, so a gap or the first page can come before the rest), then
    // take what is already queued (same tick) and answer.
    const finishSoon = () => {
      if (finishing) return;
      finishing = true;
      void subscription.caughtUp.then(() => setImmediate(stop));
    };
    if (waitSeconds === 0) finishSoon();
    try {
      for await (const event of subscription) {
        if (event.kind === "message") {
          messages.push(encodeMessageJson(event.message));
          nextFrom = event.message.offset;
          finishSoon();
          if (messages.length >= max) break;
        } else if (event.kind === "gap") {
          gap = `,"gap":{"fromOffset":"${event.fromOffset}","firstAvailable":"${event.firstAvailable}","lost":${event.lost}}`;
          nextFrom = event.firstAvailable - 1;
          finishSoon();
        }
      }
    } catch (error) {
      // A poll holds nothing between requests: past its buffer it answers with what it has, and the next poll
      // goes on from `nextFrom` (a slow-consumer drop is not an error for a client that reads at its own pace).
      if (!(error instanceof StreamgateError && error.reason === "SLOW_CONSUMER")) throw error;
    }
    if (response.destroyed) return;
    const body = `{"messages":[${messages.join(",")}],"nextFrom":"${nextFrom}"${gap}}`;
    response.writeHead(200, {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(body),
      "cache-control": "no-store",
    });
    response.end(body);
  } catch (error) {
    if (!response.destroyed) sendError(response, error);
  } finally {
    clearTimeout(timer);
    controller.abort();
    shutdownSignal.removeEventListener("abort", stop);
    request.off("close", stop);
    response.off("close", stop);
  }
}

/** The offset the poll starts after (latest, earliest and time are pinned now, so `nextFrom` is exact). */
async function cursorOf(engine: Engine, parsed: EventsRequest): Promise<number> {
  const from: StreamPosition = parsed.from;
  switch (from.kind) {
    case "after":
      return from.offset;
    case "latest":
      return (await engine.topicStats(parsed.topic)).nextOffset - 1;
    case "earliest":
      return Math.max(0, (await engine.topicStats(parsed.topic)).firstOffset - 1);
    case "time":
      return (await engine.offsetAtTime(parsed.topic, from.timeMs)) - 1;
  }
}

function parseNumber(text: string, field: string, min: number, max: number, integer: boolean): number {
  const value = /^\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (Number.isNaN(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    throw errors.invalidArgument(
      field,
      `must be ${integer ? "an integer" : "a number"} from ${min} to ${max}, got ${JSON.stringify(text.slice(0, 32))}`,
    );
  }
  return value;
}
