// Serializes a forwarder's calls into a ResponseSink and enforces "exactly one terminal call".
import { StreamgateError } from "../../errors/index.js";
import {
  type HeaderEntry,
  type ResponseHeadInit,
  type ResponseSink,
  remainingMs,
  type UpstreamExchange,
  WRITTEN,
} from "./exchange.js";
import { upstreamCancelled, upstreamDeadline } from "./upstream-errors.js";

/** Most bytes one coalesced data call carries. */
const COALESCE_BYTES = 64 * 1024;

interface DataBatch {
  chunks: Uint8Array[];
  bytes: number;
  sent: Promise<void>;
  /** The sink call began: no chunk may join any more. */
  started: boolean;
}

/**
 * Wraps a sink: calls run one after another in call order; after the terminal call (or a rejected
 * call) later calls are ignored. `done` resolves once the terminal call settled (or a call failed).
 * `onStop` runs once when the relay stops early because the sink rejected, so the caller aborts the backend.
 */
export class SinkRelay {
  private chain: Promise<void> = Promise.resolve();
  /** Calls handed to the sink whose promise has not settled yet (queued ones included). */
  private unsettled = 0;
  private stopped = false;
  private finished = false;
  /** The data call queued and not yet started, which later chunks may join. */
  private waitingData: DataBatch | null = null;
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

  /**
   * Chunks that arrive while an earlier call is still running join the data call waiting behind it (up
   * to COALESCE_BYTES): under load one tunnel frame and one write carry several backend chunks; with
   * nothing in flight each chunk goes on its own at once.
   */
  data(bytes: Uint8Array): Promise<void> {
    if (this.stopped) return this.chain;
    const waiting = this.waitingData;
    if (waiting !== null && waiting.bytes + bytes.length <= COALESCE_BYTES) {
      waiting.chunks.push(bytes);
      waiting.bytes += bytes.length;
      return waiting.sent;
    }
    const batch: DataBatch = { chunks: [bytes], bytes: bytes.length, sent: WRITTEN, started: false };
    batch.sent = this.enqueue(() => {
      batch.started = true;
      if (this.waitingData === batch) this.waitingData = null;
      return this.sink.data(batch.chunks.length === 1 ? batch.chunks[0]! : Buffer.concat(batch.chunks, batch.bytes));
    }, false);
    // (After enqueue, which clears it: a call queued behind another runs on a later turn, so chunks of this turn
    // can still join; one that ran at once cannot.)
    if (!batch.started) this.waitingData = batch;
    return batch.sent;
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
    // What is queued after this call must not join a data call queued before it.
    this.waitingData = null;
    if (this.unsettled === 0 && !this.finished) {
      // Nothing ahead of it: the call runs now. A sink that took it at once (WRITTEN, e.g. a tunnel frame the
      // stream accepted) needs no promise chain at all: the common case of every chunk on a fast path.
      let result: Promise<void>;
      try {
        result = call();
      } catch (error) {
        result = Promise.reject(error);
      }
      if (result === WRITTEN) {
        if (terminal) this.finish();
        return WRITTEN;
      }
      this.unsettled++;
      this.chain = result.then(
        () => {
          this.unsettled--;
          if (terminal) this.finish();
        },
        (error: unknown) => {
          this.unsettled--;
          this.failed(error);
        },
      );
      return this.chain;
    }
    this.unsettled++;
    this.chain = this.chain.then(async () => {
      try {
        if (this.finished) return;
        try {
          await call();
        } catch (error) {
          this.failed(error);
          return;
        }
        if (terminal) this.finish();
      } finally {
        this.unsettled--;
      }
    });
    return this.chain;
  }

  private failed(error: unknown): void {
    this.finish();
    this.stopped = true;
    this.onStop(error);
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.resolveDone();
  }
}

/** What a forwarder starts with: see startForwardRelay. */
export interface ForwardRelay {
  relay: SinkRelay;
  /** Relays `error` as the terminal call (unless one was made already) and cancels the backend. */
  fail(error: StreamgateError): void;
  /** Milliseconds left of the exchange's deadline; undefined when it has none. */
  remaining: number | undefined;
  /** The deadline had passed or the signal was aborted before the forward began: that error is relayed, do not forward. */
  settled: boolean;
}

/**
 * The start both forwarders share: a relay to `sink` that calls `cancel` when the sink fails, a `fail`
 * for every later error, and the pre-flight checks (deadline already passed, request already cancelled).
 */
export function startForwardRelay(
  exchange: UpstreamExchange,
  sink: ResponseSink,
  target: string,
  cancel: () => void,
): ForwardRelay {
  const startedAt = Date.now();
  const relay = new SinkRelay(sink, () => cancel());
  const fail = (error: StreamgateError) => {
    if (relay.closed) return;
    void relay.error(error);
    cancel();
  };
  const remaining = remainingMs(exchange, startedAt);
  const early =
    remaining !== undefined && remaining <= 0
      ? upstreamDeadline(target, true)
      : exchange.signal.aborted
        ? upstreamCancelled(target)
        : undefined;
  if (early !== undefined) void relay.error(early);
  return { relay, fail, remaining, settled: early !== undefined };
}
