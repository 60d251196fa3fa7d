// A push-to-pull queue: callbacks (WebSocket events) feed an async iterator that a generator consumes.

export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiter: (() => void) | undefined;
  private finished = false;
  private failure: unknown;

  push(item: T): void {
    if (this.finished) return;
    this.items.push(item);
    this.wake();
  }

  /** Ends the iteration after the queued items; with an error, the iterator throws it then. */
  end(error?: unknown): void {
    if (this.finished) return;
    this.finished = true;
    this.failure = error;
    this.wake();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      const item = this.items.shift();
      if (item !== undefined) {
        yield item;
        continue;
      }
      if (this.finished) {
        if (this.failure !== undefined) throw this.failure;
        return;
      }
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
  }
}
