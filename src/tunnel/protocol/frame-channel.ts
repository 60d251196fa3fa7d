// Tunnel frames over any byte Duplex (an HTTP/2 stream, or an in-memory pair in tests), with backpressure.
import { once } from "node:events";
import { Duplex } from "node:stream";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { Code, StreamgateError } from "../../errors/index.js";
import { readChunks } from "./chunk-reader.js";
import { DEFAULT_MAX_FRAME_BYTES, encodeFrame, FrameDecoder } from "./frame-codec.js";

/**
 * What `send` and `sendEncoded` return when the stream took the frame at once (the usual case): a caller that
 * compares against it skips the await, and so the turn of the event loop, that a resolved promise still costs.
 */
export const SENT: Promise<void> = Promise.resolve();

/** The channel's frames; `takeReady` hands out a frame already decoded without waiting (undefined when none is). */
export interface FrameIterator<In> extends AsyncIterableIterator<In> {
  takeReady(): In | undefined;
}

/** Frames in, frames out over one stream. Iterate it to receive; it ends when the peer half-closes. */
export interface FrameChannel<In, Out> extends AsyncIterable<In> {
  [Symbol.asyncIterator](): FrameIterator<In>;
  /** Sends one frame; resolves once the stream accepted it (after `drain` when its buffer is full). Rejects once closed. */
  send(frame: Out): Promise<void>;
  /** Sends one frame already encoded with its prefix (e.g. by encodeDataFrame), like `send`. */
  sendEncoded(frame: Uint8Array): Promise<void>;
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
  /** Decodes the frames it recognizes without the schema; null leaves a frame to the schema. */
  fastDecode?: (body: Uint8Array) => MessageShape<In> | null;
}

export function createFrameChannel<In extends DescMessage, Out extends DescMessage>(
  stream: Duplex,
  options: FrameChannelOptions<In, Out>,
): FrameChannel<MessageShape<In>, MessageShape<Out>> {
  return new StreamFrameChannel(stream, options);
}

const closedError = () =>
  new StreamgateError(Code.UNAVAILABLE, "tunnel stream is closed", { reason: "TUNNEL_STREAM_CLOSED" });

/** Swallows late errors: iteration and send() report them to their callers. */
const ignoreError = () => undefined;

/**
 * A class rather than an object of closures: a tunnel holds one channel per stream, thousands of them idle, and
 * the methods are shared. Frames written in one turn of the event loop (a RequestHead and the body behind it, a
 * ResponseHead, its message and the trailers) leave as one HTTP/2 DATA frame: the stream is corked at the first
 * write and uncorked once the turn's I/O callbacks have run, so node hands them to nghttp2 in one writev.
 */
class StreamFrameChannel<In extends DescMessage, Out extends DescMessage>
  implements FrameChannel<MessageShape<In>, MessageShape<Out>>
{
  private corked = false;
  private readonly uncork = () => {
    this.corked = false;
    const stream = this.stream;
    if (!stream.destroyed && stream.writableCorked > 0) stream.uncork();
  };

  constructor(
    private readonly stream: Duplex,
    private readonly options: FrameChannelOptions<In, Out>,
  ) {
    stream.on("error", ignoreError);
  }

  send(frame: MessageShape<Out>): Promise<void> {
    return this.sendEncoded(encodeFrame(this.options.send, frame));
  }

  sendEncoded(bytes: Uint8Array): Promise<void> {
    const stream = this.stream;
    if (stream.destroyed || stream.writableEnded) return Promise.reject(closedError());
    if (!this.corked) {
      this.corked = true;
      stream.cork();
      setImmediate(this.uncork);
    }
    if (stream.write(bytes)) return SENT;
    return this.drained();
  }

  private async drained(): Promise<void> {
    const stream = this.stream;
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
  }

  end(): void {
    if (!this.stream.destroyed && !this.stream.writableEnded) this.stream.end();
  }

  destroy(error?: Error): void {
    this.stream.destroy(error);
  }

  [Symbol.asyncIterator](): FrameIterator<MessageShape<In>> {
    const options = this.options;
    const decoder = new FrameDecoder(
      options.receive,
      options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      options.fastDecode ?? null,
    );
    return new FrameReader(readChunks(this.stream), decoder);
  }
}

/** The frames of a channel, hand-written rather than an async generator: one less promise chain per frame. */
class FrameReader<Message> implements FrameIterator<Message> {
  private readonly ready: Message[] = [];
  private done = false;

  constructor(
    private readonly chunks: AsyncIterableIterator<Uint8Array>,
    private readonly decoder: { push(chunk: Uint8Array): Message[]; end(): void },
  ) {}

  takeReady(): Message | undefined {
    return this.ready.shift();
  }

  next(): Promise<IteratorResult<Message>> {
    if (this.ready.length > 0) return Promise.resolve({ value: this.ready.shift()!, done: false });
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return this.pull().catch((error: unknown) => this.failed(error));
  }

  return(): Promise<IteratorResult<Message>> {
    this.done = true;
    this.ready.length = 0;
    return this.chunks.return!().then(() => ({ value: undefined, done: true }) as const);
  }

  [Symbol.asyncIterator](): FrameIterator<Message> {
    return this;
  }

  private async pull(): Promise<IteratorResult<Message>> {
    for (;;) {
      const chunk = await this.chunks.next();
      if (this.done) return { value: undefined, done: true };
      if (chunk.done) {
        this.done = true;
        this.decoder.end();
        return { value: undefined, done: true };
      }
      // Not destroyed on a decode error: the owner still answers on the stream (e.g. RESOURCE_EXHAUSTED trailers).
      const frames = this.decoder.push(chunk.value);
      if (frames.length === 0) continue;
      for (let index = 1; index < frames.length; index++) this.ready.push(frames[index]!);
      return { value: frames[0]!, done: false };
    }
  }

  /** A broken stream is UNAVAILABLE; decode errors (StreamgateError) pass as they are. */
  private failed(error: unknown): never {
    this.done = true;
    if (error instanceof StreamgateError) throw error;
    throw new StreamgateError(Code.UNAVAILABLE, `tunnel stream failed: ${(error as Error).message}`, {
      reason: "TUNNEL_STREAM_CLOSED",
      cause: error,
    });
  }
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
