// Where an SSE stream's pages go once its head is sent: straight to the HTTP/1.x socket (chunk-framed when the head
// said chunked), or through the response's own write() (HTTP/2, or a response not yet holding its socket).
import { ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { StoredMessage } from "../../broker/types.js";
import type { AnyResponse } from "../../http/index.js";
import { encodeMessageJson, type FeedEvent } from "../../streams/index.js";

/** The writing end of one SSE stream, after its head. */
export interface SseSink {
  /** Writes the bytes of `events` (one write). */
  writePage(events: readonly FeedEvent[]): void;
  /** Writes raw SSE text (the `retry:` line). */
  writeText(text: string): void;
  /** Bytes written but not yet taken by the kernel. */
  readonly buffered: number;
  /** True once nothing more can be written (client gone, stream ended). */
  readonly closed: boolean;
  /** Resolves once the buffered bytes left, or the stream closed (no listener is left behind). */
  drained(): Promise<void>;
}

/**
 * Picks the sink (sending the head now on HTTP/1.x). On HTTP/1.x a page is one `socket.write` of bytes shared by every client
 * (each message's event is framed once as its own chunk): `ServerResponse.write` costs per page a cork, a nextTick
 * uncork, four buffers through `writev` and its `OutgoingMessage` bookkeeping, which was most of the server's CPU
 * per SSE delivery. The response still ends the stream (`response.end`: the last chunk and the terminator go on the
 * same socket after ours, in order).
 */
export function openSseSink(response: AnyResponse): SseSink {
  if (response instanceof ServerResponse) {
    response.flushHeaders();
    // A response waiting behind a pipelined one has no socket yet: its bytes are queued by node:http, so ours must be.
    const socket = response.socket as Socket | null;
    if (socket !== null && !socket.destroyed) return new SocketSink(socket, response.chunkedEncoding);
  }
  return new ResponseSink(response);
}

class SocketSink implements SseSink {
  constructor(
    private readonly socket: Socket,
    private readonly chunked: boolean,
  ) {}

  get buffered(): number {
    return this.socket.writableLength;
  }

  get closed(): boolean {
    return this.socket.destroyed || !this.socket.writable;
  }

  writePage(events: readonly FeedEvent[]): void {
    if (this.closed) return;
    this.socket.write(encodePage(events, this.chunked));
  }

  writeText(text: string): void {
    if (this.closed) return;
    const bytes = Buffer.from(text);
    this.socket.write(this.chunked ? frameChunk(bytes) : bytes);
  }

  drained(): Promise<void> {
    return whenDrained(this.socket);
  }
}

class ResponseSink implements SseSink {
  constructor(private readonly response: AnyResponse) {}

  get buffered(): number {
    return this.response.writableLength;
  }

  get closed(): boolean {
    return this.response.destroyed || this.response.writableEnded;
  }

  writePage(events: readonly FeedEvent[]): void {
    if (!this.closed) this.response.write(encodePage(events, false));
  }

  writeText(text: string): void {
    if (!this.closed) this.response.write(text);
  }

  drained(): Promise<void> {
    return whenDrained(this.response);
  }
}

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

// The hub hands every subscriber of a topic the same StoredMessage object: its event is encoded once, as one HTTP/1.1
// chunk (`<hex length>\r\n<event>\r\n`); the unframed event is a view of the same bytes.
const messageChunks = new WeakMap<StoredMessage, Buffer>();
const HEARTBEAT = Buffer.from(formatSseEvent({ kind: "heartbeat" }));
const HEARTBEAT_CHUNK = frameChunk(HEARTBEAT);

/** `<hex length>\r\n<bytes>\r\n`. */
function frameChunk(bytes: Buffer): Buffer {
  const head = `${bytes.length.toString(16)}\r\n`;
  const framed = Buffer.allocUnsafe(head.length + bytes.length + 2);
  framed.write(head, 0, "latin1");
  bytes.copy(framed, head.length);
  framed[framed.length - 2] = 0x0d;
  framed[framed.length - 1] = 0x0a;
  return framed;
}

/** Header length of a chunk framed by {@link frameChunk}. */
function chunkHeadLength(framed: Buffer): number {
  return framed.indexOf(0x0a) + 1;
}

function eventBytes(event: FeedEvent, chunked: boolean): Buffer {
  switch (event.kind) {
    case "message": {
      let framed = messageChunks.get(event.message);
      if (framed === undefined) {
        framed = frameChunk(Buffer.from(formatSseEvent(event)));
        messageChunks.set(event.message, framed);
      }
      return chunked ? framed : framed.subarray(chunkHeadLength(framed), framed.length - 2);
    }
    case "heartbeat":
      return chunked ? HEARTBEAT_CHUNK : HEARTBEAT;
    case "gap": {
      const bytes = Buffer.from(formatSseEvent(event));
      return chunked ? frameChunk(bytes) : bytes;
    }
  }
}

/** The bytes of one page of hub events, each event's bytes shared by every client of the topic. */
function encodePage(events: readonly FeedEvent[], chunked: boolean): Buffer {
  if (events.length === 1) return eventBytes(events[0]!, chunked);
  const parts: Buffer[] = new Array(events.length);
  let total = 0;
  for (let index = 0; index < events.length; index++) {
    const part = eventBytes(events[index]!, chunked);
    parts[index] = part;
    total += part.length;
  }
  return Buffer.concat(parts, total);
}

/** Resolves on 'drain' or when the stream closes (no listener is left behind). */
function whenDrained(stream: Socket | AnyResponse): Promise<void> {
  if (stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
  });
}
