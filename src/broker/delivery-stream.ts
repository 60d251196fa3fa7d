// A streaming consumer of a subscription: flow control, a bounded hand-off buffer and an async iterator.
import type { DeliveryOptions, DeliveryStream } from "../engines/engine.js";
import { errors, type StreamgateError } from "../errors/index.js";
import { FifoQueue } from "./fifo-queue.js";
import { validateRange } from "./resource-settings.js";
import { SUBSCRIPTION_LIMITS } from "./subscription-settings.js";
import { type Consumer, type ConsumerCapacity, type TrackedMessage, TrackedState } from "./tracked-message.js";
import type { ReceivedMessage } from "./types.js";

/** Most messages yielded in one batch (StreamingPull responses carry up to about 1000). */
export const MAX_DELIVERY_BATCH = 1000;

/**
 * Leased messages a stream buffers before its iterator takes them. Past this the stream has no
 * room, so a slow reader never makes the dispatcher lease (and hold) more.
 */
const MAX_PENDING = 2 * MAX_DELIVERY_BATCH;

/** What a stream needs from its dispatcher. */
export interface StreamHost {
  /** What the client sees for a leased message (ack id, attempt). */
  receivedMessage(message: TrackedMessage): ReceivedMessage;
  /** The stream ended: stop offering it messages and take back the leased ones it never yielded. */
  streamEnded(stream: DispatchStream, undelivered: TrackedMessage[]): void;
  /** Room was freed on a stream: try to deliver more. */
  wake(): void;
}

interface Pending {
  message: TrackedMessage;
  attempt: number;
}

/** A {@link DeliveryStream} fed by a subscription dispatcher. */
export class DispatchStream implements DeliveryStream, Consumer {
  leaseMs: number;
  readonly keyAffinity = true;
  /** Leased messages not yet acked, nacked or expired, and their bytes. */
  outstandingMessages = 0;
  outstandingBytes = 0;
  private maxOutstandingMessages = 0;
  private maxOutstandingBytes = 0;
  private readonly pending = new FifoQueue<Pending>();
  private ended = false;
  private failure: StreamgateError | null = null;
  private iterated = false;
  private wakeIterator: (() => void) | null = null;
  private readonly signal: AbortSignal;
  private readonly onAbort = () => this.end();

  constructor(
    private readonly host: StreamHost,
    options: DeliveryOptions,
  ) {
    this.leaseMs = validateAckDeadline(options.ackDeadlineSeconds) * 1000;
    this.setFlowControl(options.maxOutstandingMessages, options.maxOutstandingBytes);
    this.signal = options.signal;
    if (this.signal.aborted) this.ended = true;
    else this.signal.addEventListener("abort", this.onAbort, { once: true });
  }

  get isEnded(): boolean {
    return this.ended;
  }

  setFlowControl(maxOutstandingMessages: number, maxOutstandingBytes: number): void {
    this.maxOutstandingMessages = validateRange(
      maxOutstandingMessages,
      0,
      Number.MAX_SAFE_INTEGER,
      "max_outstanding_messages",
    );
    this.maxOutstandingBytes = validateRange(maxOutstandingBytes, 0, Number.MAX_SAFE_INTEGER, "max_outstanding_bytes");
    if (!this.ended) this.host.wake();
  }

  setAckDeadline(ackDeadlineSeconds: number): void {
    this.leaseMs = validateAckDeadline(ackDeadlineSeconds) * 1000;
  }

  capacity(): ConsumerCapacity {
    if (this.ended) return { messages: 0, bytes: 0, idle: false };
    const buffer = MAX_PENDING - this.pending.length;
    const messages =
      this.maxOutstandingMessages === 0
        ? buffer
        : Math.min(buffer, this.maxOutstandingMessages - this.outstandingMessages);
    const bytes =
      this.maxOutstandingBytes === 0 ? Number.POSITIVE_INFINITY : this.maxOutstandingBytes - this.outstandingBytes;
    return { messages: Math.max(0, messages), bytes: Math.max(0, bytes), idle: this.outstandingMessages === 0 };
  }

  accept(messages: TrackedMessage[]): void {
    for (const message of messages) {
      this.outstandingMessages++;
      this.outstandingBytes += message.size;
      this.pending.push({ message, attempt: message.attempt });
    }
    this.wakeIterator?.();
  }

  release(message: TrackedMessage): void {
    this.outstandingMessages--;
    this.outstandingBytes -= message.size;
    if (!this.ended) this.host.wake();
  }

  /** Ends the stream: the iterator finishes (throwing `failure` if given) once the buffer is drained. */
  end(failure?: StreamgateError): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = failure ?? null;
    this.signal.removeEventListener("abort", this.onAbort);
    const undelivered: TrackedMessage[] = [];
    for (let item = this.pending.shift(); item !== undefined; item = this.pending.shift()) {
      if (this.isCurrent(item)) undelivered.push(item.message);
    }
    this.host.streamEnded(this, undelivered);
    this.wakeIterator?.();
  }

  [Symbol.asyncIterator](): AsyncIterator<ReceivedMessage[]> {
    if (this.iterated)
      throw errors.failedPrecondition("STREAM_ALREADY_ITERATED", "a delivery stream can be iterated only once");
    this.iterated = true;
    return this.iterate();
  }

  private async *iterate(): AsyncGenerator<ReceivedMessage[]> {
    try {
      for (;;) {
        const batch = this.nextBatch();
        if (batch.length > 0) {
          yield batch;
          continue;
        }
        if (this.ended) {
          if (this.failure !== null) throw this.failure;
          return;
        }
        await new Promise<void>((resolve) => {
          this.wakeIterator = resolve;
        });
        this.wakeIterator = null;
      }
    } finally {
      this.end();
    }
  }

  private nextBatch(): ReceivedMessage[] {
    const batch: ReceivedMessage[] = [];
    while (batch.length < MAX_DELIVERY_BATCH) {
      const item = this.pending.shift();
      if (item === undefined) break;
      // Acked, expired or reset while buffered: the client must not see a dead lease.
      if (this.isCurrent(item)) batch.push(this.host.receivedMessage(item.message));
    }
    return batch;
  }

  private isCurrent(item: Pending): boolean {
    const { message } = item;
    return message.state === TrackedState.leased && message.holder === this && message.attempt === item.attempt;
  }
}

function validateAckDeadline(seconds: number): number {
  const { min, max } = SUBSCRIPTION_LIMITS.ackDeadlineSeconds;
  return validateRange(seconds, min, max, "stream_ack_deadline_seconds", " s");
}
