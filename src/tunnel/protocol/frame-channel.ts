// Tunnel frames over any byte Duplex (an HTTP/2 stream, or an in-memory pair in tests), with backpressure.
import { once } from "node:events";
import { Duplex } from "node:stream";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { Code, StreamgateError } from "../../errors/index.js";
import { DEFAULT_MAX_FRAME_BYTES, encodeFrame, FrameDecoder } from "./frame-codec.js";

/** Frames in, frames out over one stream. Iterate it to receive; it ends when the peer half-closes. */
export interface FrameChannel<In, Out> extends AsyncIterable<In> {
  /** Sends one frame; resolves once the stream accepted it (after `drain` when its buffer is full). Rejects once closed. */
  send(frame: Out): Promise<void>;
  /** Half-closes the sending side (HTTP/2 END_STREAM). */
  end(): void;
  /** Destroys the underlying stream. */
  destroy(error?: Error): void;
}

export interface FrameChannelOptions<In extends DescMessage, Out extends DescMessage> {
  receive: In;
  send: Out;
  /** Largest frame accepted from the peer. Default {@link DEFAULT_MAX_FRAME_BYTES}. */
  maxFrameBytes?: number;
}

export function createFrameChannel<In extends DescMessage, Out extends DescMessage>(
  stream: Duplex,
  options: FrameChannelOptions<In, Out>,
): FrameChannel<MessageShape<In>, MessageShape<Out>> {
  const decoder = new FrameDecoder(options.receive, options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
  const closedError = () =>
    new StreamgateError(Code.UNAVAILABLE, "tunnel stream is closed", { reason: "TUNNEL_STREAM_CLOSED" });
  // Swallow late errors: iteration and send() report them to their callers.
  stream.on("error", () => undefined);

  return {
    async send(frame) {
      if (stream.destroyed || stream.writableEnded) throw closedError();
      if (stream.write(encodeFrame(options.send, frame))) return;
      const abort = new AbortController();
      try {
        await Promise.race([
          once(stream, "drain", { signal: abort.signal }),
          once(stream, "close", { signal: abort.signal }).then(() => {
            throw closedError();
          }),
        ]);
      } finally {
        abort.abort();
      }
    },
    end() {
      if (!stream.destroyed && !stream.writableEnded) stream.end();
    },
    destroy(error) {
      stream.destroy(error);
    },
    async *[Symbol.asyncIterator]() {
      try {
        // Not destroyed on a decode error: the owner still answers on the stream (e.g. RESOURCE_EXHAUSTED trailers).
        for await (const chunk of stream.iterator({ destroyOnReturn: false }) as AsyncIterable<Uint8Array>) {
          for (const frame of decoder.push(chunk)) yield frame;
        }
      } catch (error) {
        if (error instanceof StreamgateError) throw error;
        throw new StreamgateError(Code.UNAVAILABLE, `tunnel stream failed: ${(error as Error).message}`, {
          reason: "TUNNEL_STREAM_CLOSED",
          cause: error,
        });
      }
      decoder.end();
    },
  };
}

/**
 * Two connected in-memory Duplexes (what one writes, the other reads), with real backpressure:
 * a side's `write()` returns false once `highWaterMark` bytes wait unread on the other side.
 */
export function createMemoryDuplexPair(options: { highWaterMark?: number } = {}): [Duplex, Duplex] {
  const highWaterMark = options.highWaterMark ?? 16 * 1024;
  let left: Duplex;
  let right: Duplex;
  const waiting = new Map<Duplex, () => void>();
  const make = (peer: () => Duplex) =>
    new Duplex({
      highWaterMark,
      // A side that finished both ways must not destroy its peer, which may still hold unread bytes.
      autoDestroy: false,
      read() {
        // This side's reader wants more: release the peer's write that was waiting on it.
        const writer = peer();
        const pending = waiting.get(writer);
        if (pending !== undefined) {
          waiting.delete(writer);
          pending();
        }
      },
      write(chunk: Buffer, _encoding, callback) {
        const self = this as Duplex;
        if (peer().push(chunk)) callback();
        else waiting.set(self, callback);
      },
      final(callback) {
        peer().push(null);
        callback();
      },
      destroy(error, callback) {
        const other = peer();
        if (!other.destroyed) other.destroy(error ?? undefined);
        callback(error);
      },
    });
  left = make(() => right);
  right = make(() => left);
  return [left, right];
}
