// Long-poll source: GET …/events?from=<cursor>&wait=<s> in a loop; each answer's nextFrom is the next cursor.
import { decodeGap, decodeMessage, type MessageJson } from "./message-codec.js";
import { authHeaders, childController, eventsUrl, fetchOk, type Source, type SourceContext } from "./source.js";
import { StreamClientError } from "./stream-client-error.js";

/** Most messages per poll (the server's limit). */
const MAX_MESSAGES = 1000;

interface LongPollBody {
  messages: MessageJson[];
  nextFrom: string;
  gap?: { fromOffset: string; firstAvailable: string; lost: number };
}

export const longPollSource: Source = async function* (context, position, signal) {
  let cursor = position;
  let opened = false;
  while (!signal.aborted) {
    const url = eventsUrl(context, {
      from: cursor,
      wait: String(context.longPollWaitSeconds),
      max: String(MAX_MESSAGES),
    });
    const body = await poll(context, url, signal);
    if (body === undefined) return;
    if (!opened) {
      opened = true;
      yield { kind: "open" };
    }
    if (body.gap !== undefined) yield { kind: "gap", gap: decodeGap(body.gap) };
    for (const message of body.messages) yield { kind: "message", message: decodeMessage(message) };
    yield { kind: "cursor", offset: Number(body.nextFrom) };
    cursor = body.nextFrom;
  }
};

/**
 * One poll, bounded by the wait plus `idleTimeoutMs`: a request that neither answers nor fails (a cut the HTTP stack
 * swallowed, a dead proxy) becomes a retryable error instead of a hang. Resolves undefined when `signal` aborted.
 */
async function poll(context: SourceContext, url: string, signal: AbortSignal): Promise<LongPollBody | undefined> {
  const { controller, dispose } = childController(signal);
  let timedOut = false;
  const timer = setTimeout(
    () => {
      timedOut = true;
      controller.abort();
    },
    context.longPollWaitSeconds * 1000 + context.idleTimeoutMs,
  );
  try {
    const response = await fetchOk(
      context,
      url,
      {
        headers: authHeaders(context.token, { accept: "application/json" }),
        signal: controller.signal,
        cache: "no-store",
      },
      "subscribe",
    );
    return (await response.json()) as LongPollBody;
  } catch (error) {
    if (signal.aborted) return undefined;
    if (timedOut) {
      throw new StreamClientError(
        "UNAVAILABLE",
        `long poll got no answer within ${context.longPollWaitSeconds} s + ${context.idleTimeoutMs} ms`,
      );
    }
    throw error;
  } finally {
    clearTimeout(timer);
    controller.abort();
    dispose();
  }
}
