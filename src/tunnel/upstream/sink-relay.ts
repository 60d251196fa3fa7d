// Serializes a forwarder's calls into a ResponseSink and enforces "exactly one terminal call".
import { StreamgateError } from "../../errors/index.js";
import type { HeaderEntry, ResponseHeadInit, ResponseSink } from "./exchange.js";

/**
 * Wraps a sink: calls run one after another in call order; after the terminal call (or a rejected
 * call) later calls are ignored. `done` resolves once the terminal call settled (or a call failed).
 * `onStop` runs once when the relay stops early because the sink rejected, so the caller aborts the backend.
 */
export class SinkRelay {
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;
  private finished = false;
  private resolveDone!: () => void;
  readonly done = new Promise<void>((resolve) => {
    this.resolveDone = resolve;
  });

  constructor(
    private readonly sink: ResponseSink,
    private readonly onStop: (error: unknown) => void,
  ) {}

  /** True once the terminal call was queued or the sink failed: nothing more will be delivered. */
  get closed(): boolean {
    return this.stopped;
  }

  head(head: ResponseHeadInit): Promise<void> {
    return this.enqueue(() => this.sink.head(head), head.endStream);
  }

  data(bytes: Uint8Array): Promise<void> {
    return this.enqueue(() => this.sink.data(bytes), false);
  }

  trailers(headers: HeaderEntry[]): Promise<void> {
    return this.enqueue(() => this.sink.trailers(headers), true);
  }

  error(error: unknown): Promise<void> {
    return this.enqueue(() => this.sink.error(StreamgateError.from(error)), true);
  }

  private enqueue(call: () => Promise<void>, terminal: boolean): Promise<void> {
    if (this.stopped) return this.chain;
    if (terminal) this.stopped = true;
    this.chain = this.chain.then(async () => {
      if (this.finished) return;
      try {
        await call();
      } catch (error) {
        this.finish();
        this.stopped = true;
        this.onStop(error);
        return;
      }
      if (terminal) this.finish();
    });
    return this.chain;
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.resolveDone();
  }
}
