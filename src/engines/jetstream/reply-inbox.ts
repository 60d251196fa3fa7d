// Requests to JetStream without the client library's per-request cost: one inbox subscription, one sweep timer, no Error per request.
import { createInbox, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from "@nats-io/nats-core";

/** Called with the answer, or null when none came within the inbox's timeout (or the connection closed). */
type Answer = (message: Msg | null) => void;

interface Pending {
  readonly deadlineMs: number;
  readonly answer: Answer;
}

/**
 * Sends requests whose replies come back on one wildcard subscription (`<inbox>.<token>`), matched
 * by token. `NatsConnection.request` costs, per request, a timer, a deferred, a mux entry and an
 * Error built with its stack on completion (nats-core 3.3 `RequestOne.cancel`), which was the
 * largest single cost of publishing and acking through the engine; here a request is a map entry.
 * One timeout for every request lets a single interval expire them in insertion order.
 */
export class ReplyInbox {
  private readonly prefix = `${createInbox()}.`;
  private readonly pending = new Map<number, Pending>();
  private nextToken = 0;
  private subscription: Subscription | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private idleListeners: (() => void)[] = [];

  /** @param timeoutMs - how long a request waits for its answer before it resolves null. */
  constructor(
    private readonly connection: NatsConnection,
    private readonly timeoutMs: number,
  ) {}

  /** Requests in flight. */
  get size(): number {
    return this.pending.size;
  }

  /**
   * Publishes `data` to `subject` with a reply subject of this inbox; `answer` gets the reply (a
   * `503` status message when nobody listens on `subject`) or null after the timeout.
   */
  send(subject: string, data: Uint8Array | string, answer: Answer, headers?: MsgHdrs): void {
    if (this.connection.isClosed()) {
      answer(null);
      return;
    }
    this.subscription ??= this.connection.subscribe(`${this.prefix}*`, {
      callback: (_error, message) => this.receive(message),
    });
    const token = this.nextToken++;
    this.pending.set(token, { deadlineMs: Date.now() + this.timeoutMs, answer });
    this.sweepTimer ??= this.startSweep();
    try {
      this.connection.publish(subject, data, { reply: `${this.prefix}${token}`, headers });
    } catch {
      this.pending.delete(token);
      answer(null);
    }
  }

  /** {@link send} as a promise. */
  request(subject: string, data: Uint8Array | string, headers?: MsgHdrs): Promise<Msg | null> {
    return new Promise((resolve) => this.send(subject, data, resolve, headers));
  }

  /**
   * Ends the subscription once nothing is in flight (at once when nothing is). Requests still work
   * after it (an ack racing a subscription's deletion still goes out): each subscribes again for as
   * long as it waits.
   */
  close(): void {
    this.closed = true;
    this.stopWhenIdle();
  }

  /** Calls `listener` once no request is in flight (at once when none is). */
  whenIdle(listener: () => void): void {
    if (this.pending.size === 0) listener();
    else this.idleListeners.push(listener);
  }

  private receive(message: Msg | null): void {
    if (message === null) return;
    const token = Number(message.subject.slice(this.prefix.length));
    const pending = this.pending.get(token);
    if (pending === undefined) return; // answered after its timeout
    this.pending.delete(token);
    pending.answer(message);
    if (this.pending.size === 0) this.stopWhenIdle();
  }

  private startSweep(): NodeJS.Timeout {
    const timer = setInterval(
      () => {
        // A closed connection answers nothing more: fail what waits now rather than at its deadline.
        this.expire(this.connection.isClosed() ? Number.POSITIVE_INFINITY : Date.now());
        if (this.pending.size === 0) this.stopWhenIdle();
      },
      Math.max(10, Math.round(this.timeoutMs / 8)),
    );
    timer.unref();
    return timer;
  }

  /** Nothing in flight: stops the sweep, tells the idle listeners, and unsubscribes once closed. */
  private stopWhenIdle(): void {
    if (this.pending.size > 0) return;
    if (this.sweepTimer !== null) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = null;
    }
    const listeners = this.idleListeners;
    this.idleListeners = [];
    for (const listener of listeners) listener();
    if (this.closed && this.subscription !== null) {
      this.subscription.unsubscribe();
      this.subscription = null;
    }
  }

  /** Answers null to every request due by `nowMs`; requests are in deadline order (one timeout for all). */
  private expire(nowMs: number): void {
    for (const [token, pending] of this.pending) {
      if (pending.deadlineMs > nowMs) break;
      this.pending.delete(token);
      pending.answer(null);
    }
  }
}

/** True for the status message the server sends when no subscriber took a request. */
export function isNoResponders(message: Msg): boolean {
  return message.data.length === 0 && message.headers?.code === 503;
}
