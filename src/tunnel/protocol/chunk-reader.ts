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
  let failure: Error | null = null;
  let ended = false;
  let closed = false;
  /** Finished (ended, failed or left): every later next() is done. */
  let finished = false;
  let waiter: (() => void) | null = null;
  const wake = () => {
    const resume = waiter;
    waiter = null;
    resume?.();
  };
  const onEnd = () => {
    ended = true;
    wake();
  };
  const onError = (error: Error) => {
    failure ??= error;
    wake();
  };
  const onClose = () => {
    closed = true;
    wake();
  };
  stream.on("readable", wake);
  stream.on("end", onEnd);
  stream.on("error", onError);
  stream.on("close", onClose);
  const detach = () => {
    finished = true;
    stream.off("readable", wake);
    stream.off("end", onEnd);
    stream.off("error", onError);
    stream.off("close", onClose);
  };

  const take = (): IteratorResult<Uint8Array> | null => {
    if (finished) return { value: undefined, done: true };
    if (failure !== null) {
      detach();
      throw failure;
    }
    const chunk = stream.read() as Uint8Array | null;
    if (chunk !== null) return { value: chunk, done: false };
    if (ended || stream.readableEnded) {
      detach();
      return { value: undefined, done: true };
    }
    if (closed || stream.destroyed) {
      detach();
      throw (stream as { errored?: Error | null }).errored ?? prematureClose();
    }
    return null;
  };

  // One waiting read at a time (the iterator protocol): its settle functions, set without a closure per read.
  let resolveWait: ((result: IteratorResult<Uint8Array>) => void) | null = null;
  let rejectWait: ((error: unknown) => void) | null = null;
  function retry(): void {
    let now: IteratorResult<Uint8Array> | null;
    try {
      now = take();
    } catch (error) {
      const reject = rejectWait!;
      resolveWait = rejectWait = null;
      reject(error);
      return;
    }
    if (now === null) {
      waiter = retry;
      return;
    }
    const resolve = resolveWait!;
    resolveWait = rejectWait = null;
    resolve(now);
  }
  function wait(resolve: (result: IteratorResult<Uint8Array>) => void, reject: (error: unknown) => void): void {
    resolveWait = resolve;
    rejectWait = reject;
    waiter = retry;
  }

  const iterator: AsyncIterableIterator<Uint8Array> = {
    next() {
      try {
        const now = take();
        if (now !== null) return Promise.resolve(now);
      } catch (error) {
        return Promise.reject(error);
      }
      return new Promise<IteratorResult<Uint8Array>>(wait);
    },
    return() {
      detach();
      wake();
      return Promise.resolve({ value: undefined, done: true });
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
