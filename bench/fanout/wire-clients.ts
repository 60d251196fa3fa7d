// Lean stream clients over raw TCP (no `ws`, no http parser): count deliveries cheaply so one client
// process can hold thousands of streams. WebSocket frames and SSE events are parsed just enough to count
// messages, read offsets and, on sampled clients, the send time embedded in the message data.
import { connect, type Socket } from "node:net";

/** What a stream client reports to its owner. */
export interface WireHandlers {
  /** One message delivered; `frame` is its JSON text (only when the client was opened with `parse`). */
  onMessage?(frame: string | null): void;
  /** The server closed the WebSocket (code, reason) or the TCP connection ended (code 1006 / SSE 0). */
  onClose?(code: number, reason: string): void;
  /** WebSocket: a text frame that is not a message (subscribed, published, error…). */
  onText?(text: string): void;
  /** SSE, count mode: the `id:` of each event, in order (messages are counted by these then). */
  onOffset?(offset: number): void;
  /** SSE: the final `event: error` data. */
  onSseError?(data: string): void;
}

export interface WireOptions {
  host: string;
  port: number;
  /** Source address (127.0.0.x) so more than one ephemeral port range is available. */
  localAddress?: string;
  /**
   * Hand every message's JSON text to onMessage (costs a decode); "head": WebSocket only, its first
   * 120 bytes (enough for the offset); otherwise count only.
   */
  parse?: boolean | "head";
  handlers: WireHandlers;
  /** Handshake / subscribe deadline. Default 30000 ms. */
  timeoutMs?: number;
}

/** An open stream. */
export interface WireStream {
  readonly socket: Socket;
  messages: number;
  closed: boolean;
  destroy(): void;
}

const WS_KEY = "dGhlIHNhbXBsZSBub25jZQ==";
const MESSAGE_TYPE = Buffer.from('{"type":"message"');

/** A masked client frame (mask key 0: the payload is sent as is, which RFC 6455 allows). */
export function clientFrame(opcode: number, payload: Buffer): Buffer {
  const length = payload.length;
  const header = length < 126 ? Buffer.alloc(6) : length < 65536 ? Buffer.alloc(8) : Buffer.alloc(14);
  header[0] = 0x80 | opcode;
  if (length < 126) header[1] = 0x80 | length;
  else if (length < 65536) {
    header[1] = 0x80 | 126;
    header.writeUInt16BE(length, 2);
  } else {
    header[1] = 0x80 | 127;
    header.writeUInt32BE(0, 2);
    header.writeUInt32BE(length, 6);
  }
  return Buffer.concat([header, payload]);
}

function openSocket(options: WireOptions, request: string): Promise<{ socket: Socket; rest: Buffer; head: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: options.host, port: options.port, localAddress: options.localAddress });
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error("handshake timed out"));
    }, options.timeoutMs ?? 30_000);
    let buffered: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf("\r\n\r\n");
      if (end < 0) return;
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("error", onError);
      resolve({ socket, head: buffered.toString("latin1", 0, end), rest: buffered.subarray(end + 4) });
    };
    const onError = (error: Error) => {
      clearTimeout(timer);
      reject(error);
    };
    socket.on("data", onData);
    socket.once("error", onError);
    socket.once("connect", () => socket.write(request));
  });
}

/**
 * A WebSocket client: upgrade on `path`, then `subscribeText` (if any) as a text frame. Resolves once
 * the upgrade is done and, when `awaitText` is given, a frame containing it arrived (e.g. "subscribed").
 */
export async function openWebSocket(
  options: WireOptions & { path: string; subscribeText?: string; awaitText?: string },
): Promise<WireStream> {
  const { socket, head, rest } = await openSocket(
    options,
    `GET ${options.path} HTTP/1.1\r\nHost: ${options.host}:${options.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  if (!head.startsWith("HTTP/1.1 101")) {
    socket.destroy();
    throw new Error(`upgrade refused: ${head.split("\r\n")[0]}`);
  }
  const { handlers } = options;
  let pending: Buffer | null = null;
  let resolveReady: (() => void) | null = null;
  const awaitBytes = options.awaitText === undefined ? null : Buffer.from(options.awaitText);
  const stream: WireStream = {
    socket,
    messages: 0,
    closed: false,
    destroy: () => socket.destroy(),
  };
  const finish = (code: number, reason: string) => {
    if (stream.closed) return;
    stream.closed = true;
    handlers.onClose?.(code, reason);
  };
  const ready =
    awaitBytes === null
      ? Promise.resolve()
      : new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => {
            socket.destroy();
            reject(new Error(`no ${options.awaitText} frame in time`));
          }, options.timeoutMs ?? 30_000);
          socket.once("close", () => {
            clearTimeout(timer);
            reject(new Error("closed before ready"));
          });
          resolveReady = () => {
            clearTimeout(timer);
            resolve();
          };
        });
  const onData = (chunk: Buffer) => {
    let data = pending === null ? chunk : Buffer.concat([pending, chunk]);
    pending = null;
    let at = 0;
    while (data.length - at >= 2) {
      const opcode = data[at]! & 0x0f;
      let length = data[at + 1]! & 0x7f;
      let start = at + 2;
      if (length === 126) {
        if (data.length - at < 4) break;
        length = data.readUInt16BE(at + 2);
        start = at + 4;
      } else if (length === 127) {
        if (data.length - at < 10) break;
        length = data.readUInt32BE(at + 6);
        start = at + 10;
      }
      const end = start + length;
      if (end > data.length) break;
      if (opcode === 1) {
        if (
          length >= MESSAGE_TYPE.length &&
          data.compare(MESSAGE_TYPE, 0, MESSAGE_TYPE.length, start, start + MESSAGE_TYPE.length) === 0
        ) {
          stream.messages++;
          handlers.onMessage?.(
            options.parse === true
              ? data.toString("utf8", start, end)
              : options.parse === "head"
                ? data.toString("latin1", start, Math.min(end, start + 120))
                : null,
          );
        } else {
          if (resolveReady !== null && awaitBytes !== null && data.subarray(start, end).includes(awaitBytes)) {
            resolveReady();
            resolveReady = null;
          }
          handlers.onText?.(data.toString("utf8", start, end));
        }
      } else if (opcode === 9) {
        socket.write(clientFrame(10, data.subarray(start, end)));
      } else if (opcode === 8) {
        const code = length >= 2 ? data.readUInt16BE(start) : 1005;
        finish(code, data.toString("utf8", start + 2, end));
        socket.end();
      }
      at = end;
    }
    if (at < data.length) pending = Buffer.from(data.subarray(at));
    data = Buffer.alloc(0);
  };
  socket.on("data", onData);
  socket.on("close", () => finish(1006, "connection lost"));
  socket.on("error", () => undefined);
  if (rest.length > 0) onData(rest);
  if (options.subscribeText !== undefined) socket.write(clientFrame(1, Buffer.from(options.subscribeText)));
  await ready;
  return stream;
}

const SSE_MESSAGE = "event: message\n";
const SSE_ID = "\nid: ";

/** An SSE client on `path` (GET, HTTP/1.1): resolves once the 200 response head arrived. */
export async function openSse(options: WireOptions & { path: string }): Promise<WireStream> {
  const { socket, head, rest } = await openSocket(
    options,
    `GET ${options.path} HTTP/1.1\r\nHost: ${options.host}:${options.port}\r\nAccept: text/event-stream\r\n\r\n`,
  );
  if (!head.startsWith("HTTP/1.1 200")) {
    socket.destroy();
    throw new Error(`SSE refused: ${head.split("\r\n")[0]}`);
  }
  const { handlers } = options;
  const stream: WireStream = { socket, messages: 0, closed: false, destroy: () => socket.destroy() };
  const parse = options.parse === true || handlers.onSseError !== undefined;
  let tail = "";
  let text = "";
  const onData = (chunk: Buffer) => {
    if (!parse && handlers.onOffset !== undefined) {
      // Every event's "id: N" line follows a newline (an event's blank line or the chunk framing's CRLF).
      const data = tail + chunk.toString("latin1");
      let keepFrom = Math.max(0, data.length - 5);
      let at = data.indexOf(SSE_ID);
      while (at >= 0) {
        const lineEnd = data.indexOf("\n", at + SSE_ID.length);
        if (lineEnd < 0) {
          keepFrom = at;
          break;
        }
        stream.messages++;
        handlers.onOffset(Number(data.slice(at + SSE_ID.length, lineEnd)));
        at = data.indexOf(SSE_ID, lineEnd);
        keepFrom = Math.max(lineEnd, data.length - 5);
      }
      tail = data.slice(keepFrom);
      return;
    }
    if (!parse) {
      // Count "event: message" lines; keep a tail shorter than the pattern across reads.
      const data = tail + chunk.toString("latin1");
      let at = data.indexOf(SSE_MESSAGE);
      while (at >= 0) {
        stream.messages++;
        handlers.onMessage?.(null);
        at = data.indexOf(SSE_MESSAGE, at + SSE_MESSAGE.length);
      }
      tail = data.slice(-(SSE_MESSAGE.length - 1));
      return;
    }
    text += chunk.toString("utf8");
    let end = text.indexOf("\n\n");
    let from = 0;
    while (end >= 0) {
      const block = text.slice(from, end);
      from = end + 2;
      end = text.indexOf("\n\n", from);
      const dataAt = block.indexOf("\ndata: ");
      if (dataAt < 0) continue;
      const data = block.slice(dataAt + 7);
      if (block.includes("\nevent: message\n") || block.startsWith("event: message\n")) {
        stream.messages++;
        handlers.onMessage?.(options.parse === true ? block : null);
      } else if (block.includes("event: error\n")) handlers.onSseError?.(data);
    }
    text = text.slice(from);
  };
  socket.on("data", onData);
  socket.on("close", () => {
    if (stream.closed) return;
    stream.closed = true;
    handlers.onClose?.(0, "connection closed");
  });
  socket.on("error", () => undefined);
  if (rest.length > 0) onData(rest);
  return stream;
}

/** The number in the `"data":"<base64>"` field of a message's JSON, decoded as ASCII (NaN if absent). */
export function sendTimeOf(json: string): number {
  const at = json.indexOf('"data":"');
  if (at < 0) return Number.NaN;
  // 24 base64 characters hold 18 bytes: enough for the "<ms>.<µs>|" prefix the publishers write.
  return Number.parseFloat(Buffer.from(json.slice(at + 8, at + 32), "base64").toString("latin1"));
}

/** The `"offset":"N"` of a message's JSON (NaN if absent). */
export function offsetOf(json: string): number {
  const at = json.indexOf('"offset":"');
  if (at < 0) return Number.NaN;
  return Number(json.slice(at + 10, json.indexOf('"', at + 10)));
}
