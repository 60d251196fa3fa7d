// SSE over fetch: parses text/event-stream (message, gap, error events) and resumes with from=<offset>.
import { decodeGap, decodeMessage, type MessageJson } from "./message-codec.js";
import { authHeaders, childController, eventsUrl, fetchOk, type Source, type SourceEvent } from "./source.js";
import { StreamClientError } from "./stream-client-error.js";

/** One parsed SSE event (fields other than event/data/id are ignored, comments are heartbeats). */
interface SseEvent {
  event: string;
  data: string;
}

/** Server-Sent Events with fetch, so headers (Authorization) can be sent and a dead stream can be detected. */
export const sseSource: Source = async function* (context, position, signal) {
  const { controller, dispose } = childController(signal);
  let idleTimer: ReturnType<typeof setTimeout> | undefined;
  let idle = false;
  const touch = () => {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => {
      idle = true;
      controller.abort();
    }, context.idleTimeoutMs);
  };
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  try {
    touch();
    const response = await fetchOk(
      context,
      eventsUrl(context, { from: position }),
      {
        headers: authHeaders(context.token, { accept: "text/event-stream" }),
        signal: controller.signal,
        cache: "no-store",
      },
      "subscribe",
    );
    if (response.body === null) throw new StreamClientError("INTERNAL", "subscribe: response has no body");
    reader = response.body.getReader();
    yield { kind: "open" };
    const parser = createSseParser();
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (error) {
        if (idle) throw new StreamClientError("UNAVAILABLE", `stream idle for ${context.idleTimeoutMs} ms`);
        throw StreamClientError.from(error);
      }
      if (chunk.done) return;
      touch();
      for (const event of parser.push(chunk.value)) {
        const decoded = decodeSseEvent(event);
        if (decoded !== undefined) yield decoded;
      }
    }
  } finally {
    clearTimeout(idleTimer);
    controller.abort();
    dispose();
    reader?.cancel().catch(() => {});
  }
};

function decodeSseEvent(event: SseEvent): SourceEvent | undefined {
  switch (event.event) {
    case "message":
      return { kind: "message", message: decodeMessage(JSON.parse(event.data) as MessageJson) };
    case "gap":
      return { kind: "gap", gap: decodeGap(JSON.parse(event.data)) };
    case "error": {
      const body = JSON.parse(event.data) as { code?: number; status?: string; reason?: string; message?: string };
      throw new StreamClientError(body.status ?? "UNKNOWN", `stream ended: ${body.message ?? event.data}`, {
        reason: body.reason ?? "",
        ...(typeof body.code === "number" ? { httpStatus: body.code } : {}),
      });
    }
    default:
      return undefined;
  }
}

/** Incremental text/event-stream parser (WHATWG rules for lines, fields and dispatch). */
export function createSseParser(): { push(bytes: Uint8Array): SseEvent[] } {
  const decoder = new TextDecoder();
  let buffer = "";
  let event = "";
  let data: string[] = [];
  return {
    push(bytes) {
      buffer += decoder.decode(bytes, { stream: true });
      const events: SseEvent[] = [];
      let start = 0;
      for (;;) {
        const match = /\r\n|\r|\n/g;
        match.lastIndex = start;
        const found = match.exec(buffer);
        // A lone \r at the end may be the first half of \r\n: wait for the next chunk.
        if (found === null || (found[0] === "\r" && found.index === buffer.length - 1)) break;
        const line = buffer.slice(start, found.index);
        start = found.index + found[0].length;
        if (line === "") {
          if (data.length > 0) events.push({ event: event === "" ? "message" : event, data: data.join("\n") });
          event = "";
          data = [];
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        let value = colon === -1 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
      }
      buffer = buffer.slice(start);
      return events;
    },
  };
}
