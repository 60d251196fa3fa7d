// One live subscription as stream telemetry sees it: counts what it sends, times the live tail, reports how it ended.
import type { FeedEvent, FeedSubscription } from "../streams/types.js";

/** `StreamCloseReason.ended` (stream-telemetry.ts, which imports this file): the feed ended on its own. */
const ENDED = "ended";

/** How an observed stream ended, for its "stream closed" line. */
export interface StreamOutcome {
  reason: string;
  durationMs: number;
  messagesSent: number;
}

/** What an {@link ObservedSubscription} reports to. */
export interface ObservedSubscriptionSink {
  /** The stream's sent-messages counter (a label child: one increment per page). */
  sent: { inc(value?: number): void };
  /** Publish-to-delivery latency in seconds, or null when this transport does not measure it (long poll). */
  latency: { observe(value: number): void } | null;
  /** The reason of a stream whose client left (closed, or shutdown while the server drains). */
  left(): string;
  /** Why a stream ended with `error`. */
  errorReason(error: unknown): string;
  onClose(outcome: StreamOutcome): void;
}

/**
 * A class rather than closures per stream: an idle stream holds one object here, not a dozen closures and their
 * contexts (issue 12: memory per idle stream).
 */
export class ObservedSubscription implements FeedSubscription {
  private readonly startedMs = Date.now();
  private live = false;
  private messagesSent = 0;
  private finished = false;
  private iterator: AsyncIterator<FeedEvent> | null = null;

  constructor(
    private readonly inner: FeedSubscription,
    private readonly signal: AbortSignal,
    private readonly sink: ObservedSubscriptionSink,
  ) {
    inner.caughtUp.then(
      () => {
        this.live = true;
      },
      () => undefined,
    );
  }

  get lastOffset(): number {
    return this.inner.lastOffset;
  }

  get caughtUp(): Promise<void> {
    return this.inner.caughtUp;
  }

  nextBatch(): Promise<readonly FeedEvent[] | null> {
    return this.inner.nextBatch().then(
      (batch) => {
        if (batch === null) this.finish(this.signal.aborted ? this.sink.left() : ENDED);
        else this.count(batch);
        return batch;
      },
      (error: unknown) => this.failed(error),
    );
  }

  /** One iterator per subscription (a hand-written one: one promise per event, not several), ended by `return()`. */
  [Symbol.asyncIterator](): AsyncIterator<FeedEvent> {
    this.iterator ??= this.iterate();
    return this.iterator;
  }

  private iterate(): AsyncIterator<FeedEvent> {
    const inner = this.inner[Symbol.asyncIterator]();
    return {
      next: () =>
        inner.next().then(
          (result) => {
            if (result.done === true) this.finish(this.signal.aborted ? this.sink.left() : ENDED);
            else this.count([result.value]);
            return result;
          },
          (error: unknown) => this.failed(error),
        ),
      // The consumer stopped iterating: its client left (or its loop failed).
      return: (value?: unknown) => {
        this.finish(this.sink.left());
        return inner.return === undefined
          ? Promise.resolve({ done: true, value: undefined })
          : inner.return(value).then(
              (result) => result,
              (error: unknown) => this.failed(error),
            );
      },
      throw: (error?: unknown) => {
        this.finish(this.sink.errorReason(error));
        return inner.throw === undefined ? Promise.reject(error) : inner.throw(error);
      },
    };
  }

  /** Counts the messages among `events`: one counter increment per page, not per message. */
  private count(events: readonly FeedEvent[]): void {
    let messages = 0;
    // History replayed on catch-up is old by design; only the live tail measures latency.
    const latency = this.live ? this.sink.latency : null;
    const nowMs = latency === null ? 0 : Date.now();
    for (const event of events) {
      if (event.kind !== "message") continue;
      messages++;
      latency?.observe(Math.max(0, nowMs - event.message.publishTimeMs) / 1000);
    }
    if (messages === 0) return;
    this.messagesSent += messages;
    this.sink.sent.inc(messages);
  }

  private failed(error: unknown): never {
    this.finish(this.sink.errorReason(error));
    throw error;
  }

  private finish(reason: string): void {
    if (this.finished) return;
    this.finished = true;
    this.sink.onClose({ reason, durationMs: Date.now() - this.startedMs, messagesSent: this.messagesSent });
  }
}
