// A bounded byte queue between the tunnel stream reader and a forwarder's request body: the reader waits when it is full.

/**
 * Chunks pushed by one producer and iterated once. `push()` resolves once the queue holds less
 * than `limitBytes` (a single chunk larger than the limit is still accepted), so the producer stops
 * reading the tunnel stream and HTTP/2 flow control stalls the sender.
 */
export class BodyQueue implements AsyncIterable<Uint8Array> {
  private readonly chunks: Uint8Array[] = [];
  private bytes = 0;
  private ended = false;
  private failure: Error | undefined;
  private wakeReader: (() => void) | undefined;
  private wakeWriter: (() => void) | undefined;

  constructor(private readonly limitBytes: number) {}

  /** True once `end()` or `fail()` was called. */
  get closed(): boolean {
    return this.ended || this.failure !== undefined;
  }

  /** Queues `chunk`; returns a promise to wait for when the queue is full, else undefined (no await needed). */
  push(chunk: Uint8Array): Promise<void> | undefined {
    if (this.closed) return undefined;
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    this.wake();
    return this.bytes >= this.limitBytes ? this.roomLeft() : undefined;
  }

  private async roomLeft(): Promise<void> {
    while (this.bytes >= this.limitBytes && !this.closed) {
      await new Promise<void>((resolve) => {
        this.wakeWriter = resolve;
      });
    }
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  /** Ends the body with an error: the iterating forwarder sees it thrown. */
  fail(error: Error): void {
    if (this.closed) return;
    this.failure = error;
    this.wake();
  }

  /**
   * Each read takes everything queued (several chunks joined into one), so the forwarder writes once
   * per read. Buffered bytes are delivered before a failure is thrown.
   */
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    const take = (): IteratorResult<Uint8Array> | null => {
      if (this.chunks.length > 0) {
        const chunk = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.bytes);
        this.chunks.length = 0;
        this.bytes = 0;
        const writer = this.wakeWriter;
        this.wakeWriter = undefined;
        writer?.();
        return { value: chunk, done: false };
      }
      if (this.failure !== undefined) throw this.failure;
      if (this.ended) return { value: undefined, done: true };
      return null;
    };
    const wait = (resolve: () => void) => {
      this.wakeReader = resolve;
    };
    return {
      next: async () => {
        for (;;) {
          const result = take();
          if (result !== null) return result;
          await new Promise<void>(wait);
        }
      },
    };
  }

  private wake(): void {
    const reader = this.wakeReader;
    this.wakeReader = undefined;
    reader?.();
    if (this.closed) {
      const writer = this.wakeWriter;
      this.wakeWriter = undefined;
      writer?.();
    }
  }
}
