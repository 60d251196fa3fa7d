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

  async push(chunk: Uint8Array): Promise<void> {
    if (this.closed) return;
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    this.wake();
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

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      const chunk = this.chunks.shift();
      if (chunk !== undefined) {
        this.bytes -= chunk.length;
        const writer = this.wakeWriter;
        this.wakeWriter = undefined;
        writer?.();
        yield chunk;
        continue;
      }
      if (this.failure !== undefined) throw this.failure;
      if (this.ended) return;
      await new Promise<void>((resolve) => {
        this.wakeReader = resolve;
      });
    }
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
