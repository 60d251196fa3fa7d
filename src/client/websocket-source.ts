// WebSocket source: one socket per subscription on /v1/ws; the browser's WebSocket, or the `ws` package in Node 20.
import { AsyncQueue } from "./async-queue.js";
import { decodeGap, decodeMessage, type MessageJson } from "./message-codec.js";
import type { Source, SourceEvent } from "./source.js";
import { StreamClientError } from "./stream-client-error.js";

/** The part of the WHATWG WebSocket API used here (the `ws` package implements it too). */
interface SocketLike {
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  readonly readyState: number;
  send(text: string): void;
  close(code?: number, reason?: string): void;
}

type SocketFactory = (url: string, token: string | undefined) => SocketLike;

let factory: Promise<SocketFactory> | undefined;

/** The platform WebSocket when there is one (browsers, Node 22+); else `ws`, loaded only then. */
function socketFactory(): Promise<SocketFactory> {
  factory ??= (async (): Promise<SocketFactory> => {
    const Native = (globalThis as { WebSocket?: new (url: string) => SocketLike }).WebSocket;
    if (Native !== undefined) {
      // A browser WebSocket cannot send headers: the token travels as a query parameter.
      return (url, token) => new Native(token ? `${url}?access_token=${encodeURIComponent(token)}` : url);
    }
    // A variable specifier, so browser bundlers do not try to bundle the Node-only package.
    const specifier = "ws";
    const module = (await import(specifier)) as { default: new (url: string, options: object) => SocketLike };
    const Ws = module.default;
    return (url, token) =>
      new Ws(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, perMessageDeflate: false });
  })();
  return factory;
}

const SUBSCRIPTION_ID = "s";
/** Client pings keep NATs and proxies open and prove the server alive; the server pings too. */
const PING_INTERVAL_MS = 15_000;

export const websocketSource: Source = async function* (context, position, signal) {
  const create = await socketFactory();
  const queue = new AsyncQueue<SourceEvent>();
  const url = `${context.baseUrl.replace(/^http/, "ws")}/v1/ws`;
  let socket: SocketLike;
  try {
    socket = create(url, context.token);
  } catch (error) {
    throw StreamClientError.from(error);
  }
  let lastFrameAt = Date.now();
  const ticker = setInterval(
    () => {
      if (Date.now() - lastFrameAt > context.idleTimeoutMs) {
        queue.end(new StreamClientError("UNAVAILABLE", `WebSocket idle for ${context.idleTimeoutMs} ms`));
      } else if (socket.readyState === 1) socket.send('{"type":"ping"}');
    },
    Math.min(PING_INTERVAL_MS, context.idleTimeoutMs / 3),
  );
  const abort = () => queue.end();
  signal.addEventListener("abort", abort, { once: true });
  socket.onopen = () => {
    queue.push({ kind: "open" });
    socket.send(
      JSON.stringify({
        type: "subscribe",
        id: SUBSCRIPTION_ID,
        topic: context.topic,
        from: position,
        filter: context.filter,
      }),
    );
  };
  socket.onmessage = (event) => {
    lastFrameAt = Date.now();
    try {
      const frame = JSON.parse(String(event.data)) as Record<string, unknown>;
      if (frame.type === "message" && frame.id === SUBSCRIPTION_ID) {
        queue.push({ kind: "message", message: decodeMessage(frame.message as MessageJson) });
      } else if (frame.type === "gap" && frame.id === SUBSCRIPTION_ID) {
        queue.push({ kind: "gap", gap: decodeGap(frame as never) });
      } else if (frame.type === "error") {
        queue.end(
          new StreamClientError(String(frame.status ?? "UNKNOWN"), `subscribe: ${String(frame.message ?? "")}`, {
            reason: String(frame.reason ?? ""),
            ...(typeof frame.code === "number" ? { httpStatus: frame.code } : {}),
          }),
        );
      }
    } catch (error) {
      queue.end(StreamClientError.from(error));
    }
  };
  socket.onclose = (event) => {
    // 1013: dropped as a slow consumer; 1001: server going away; 1006: cut. All resume from the cursor.
    queue.end(
      new StreamClientError(
        "UNAVAILABLE",
        `WebSocket closed (${event.code}${event.reason ? `: ${event.reason}` : ""})`,
      ),
    );
  };
  socket.onerror = () => {
    queue.end(new StreamClientError("UNAVAILABLE", "WebSocket error"));
  };
  try {
    yield* queue;
  } finally {
    clearInterval(ticker);
    signal.removeEventListener("abort", abort);
    socket.onopen = socket.onmessage = socket.onclose = null;
    socket.onerror = () => {};
    if (socket.readyState === 0 || socket.readyState === 1) socket.close(1000, "unsubscribed");
  }
};
