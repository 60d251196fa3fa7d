// Long-poll source: GET …/events?from=<cursor>&wait=<s> in a loop; each answer's nextFrom is the next cursor.
import { decodeGap, decodeMessage, type MessageJson } from "./message-codec.js";
import { authHeaders, eventsUrl, fetchOk, type Source } from "./source.js";

/** Most messages per poll (the server's limit). */
const MAX_MESSAGES = 1000;

interface LongPollBody {
  messages: MessageJson[];
  nextFrom: string;
  gap?: { fromOffset: string; firstAvailable: string; lost: number };
}

export const longPollSource: Source = async function* (context, position, signal) {
  let cursor = position;
  while (!signal.aborted) {
    const url = eventsUrl(context, {
      from: cursor,
      wait: String(context.longPollWaitSeconds),
      max: String(MAX_MESSAGES),
    });
    const response = await fetchOk(
      context,
      url,
      { headers: authHeaders(context.token, { accept: "application/json" }), signal, cache: "no-store" },
      "subscribe",
    );
    let body: LongPollBody;
    try {
      body = (await response.json()) as LongPollBody;
    } catch (error) {
      if (signal.aborted) return;
      throw error;
    }
    if (body.gap !== undefined) yield { kind: "gap", gap: decodeGap(body.gap) };
    for (const message of body.messages) yield { kind: "message", message: decodeMessage(message) };
    yield { kind: "cursor", offset: Number(body.nextFrom) };
    cursor = body.nextFrom;
  }
};
