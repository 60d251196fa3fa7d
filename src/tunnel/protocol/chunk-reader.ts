// The chunks of a byte stream as an async iterator: what Readable.iterator({ destroyOnReturn: false })
// does, without its async generator and end-of-stream machinery (a tunnelled request reads one per hop).
import type { Readable } from "node:stream";

const prematureClose = () => Object.assign(new Error("Premature close"), { code: "ERR_STREAM_PREMATURE_CLOSE" });

/**
 * Reads `stream` in paused mode: each `next()` takes everything buffered (several small chunks come
 * as one), or waits for more. It ends when the stream ends; it rejects with the stream's error, or
 * "Premature close" when the stream closes without ending. Leaving early (`return()`) stops reading
 * and leaves the stream as it is (not destroyed), so its owner can still answer on it.
 */
export function readChunks(stream: Readable): AsyncIterableIterator<Uint8Array> {
  return new ChunkReader(stream);
}

/**
 * The reader behind readChunks: a class, so the thousands of idle streams a tunnel holds (two readers per
 * tunnelled request on the server) share its methods instead of carrying a dozen closures each; what is left
 * per reader is the four stream listeners and the Promise executor, made once.
 */
class ChunkReader implements AsyncIterableIterator<Uint8Array> {
  private failure: Error | null = null;
  private ended = false;
  private closed = false;
  /** Finished (ended, failed or left): every later next() is done. */
  private finished = false;
  /** The settle functions of the one waiting read (the iterator protocol allows one at a time). */
  private resolveWait: ((result: IteratorResult<Uint8Array>) => void) | null = null;
  private rejectWait: ((error: unknown) => void) | null = null;
  private readonly onReadable: () => void;
  private readonly onEnd: () => void;
  private readonly onError: (error: Error) => void;
  private readonly onClose: () => void;
  private readonly wait: (
    resolve: (result: IteratorResult<Uint8Array>) => void,
    reject: (error: unknown) => void,
  ) => void;

  constructor(private readonly stream: Readable) {
    this.onReadable = () => this.retry();
    this.onEnd = () => {
      this.ended = true;
      this.retry();
    };
    this.onError = (error: Error) => {
      this.failure ??= error;
      this.retry();
    };
    this.onClose = () => {
      this.closed = true;
      this.retry();
    };
    this.wait = (resolve, reject) => {
      this.resolveWait = resolve;
      this.rejectWait = reject;
    };
    stream.on("readable", this.onReadable);
    stream.on("end", this.onEnd);
    stream.on("error", this.onError);
    stream.on("close", this.onClose);
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    try {
      const now = this.take();
      if (now !== null) return Promise.resolve(now);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<IteratorResult<Uint8Array>>(this.wait);
  }

  return(): Promise<IteratorResult<Uint8Array>> {
    this.detach();
    this.retry();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Uint8Array> {
    return this;
  }

  private detach(): void {
    this.finished = true;
    const stream = this.stream;
    stream.off("readable", this.onReadable);
    stream.off("end", this.onEnd);
    stream.off("error", this.onError);
    stream.off("close", this.onClose);
  }

  private take(): IteratorResult<Uint8Array> | null {
    if (this.finished) return { value: undefined, done: true };
    if (this.failure !== null) {
      this.detach();
      throw this.failure;
    }
    const stream = this.stream;
    const chunk = stream.read() as Uint8Array | null;
    if (chunk !== null) return { value: chunk, done: false };
    if (this.ended || stream.readableEnded) {
      this.detach();
      return { value: undefined, done: true };
    }
    if (this.closed || stream.destroyed) {
      this.detach();
      throw (stream as { errored?: Error | null }).errored ?? prematureClose();
    }
    return null;
  }

  /** Settles the waiting read, if any, with what is there now (or leaves it waiting). */
  private retry(): void {
    const resolve = this.resolveWait;
    if (resolve === null) return;
    let now: IteratorResult<Uint8Array> | null;
    try {
      now = this.take();
    } catch (error) {
      const reject = this.rejectWait!;
      this.resolveWait = this.rejectWait = null;
      reject(error);
      return;
    }
    if (now === null) return;
    this.resolveWait = this.rejectWait = null;
    resolve(now);
  }
}
