// The in-process dispatcher of one subscription: reads the log on demand, leases, redelivers, orders, dead-letters.
import { randomInt } from "node:crypto";
import type { DeliveryOptions, DeliveryStream } from "../engines/engine.js";
import { StreamgateError } from "../errors/index.js";
import { ackIdPrefix, decodeAckId, encodeAckId, invalidAckId } from "./ack-id.js";
import type { AckResult } from "./ack-result.js";
import { ConsumerSet } from "./consumer-set.js";
import { deadLetterMessage } from "./dead-letter.js";
import { DispatchStream, MAX_DELIVERY_BATCH, type StreamHost } from "./delivery-stream.js";
import { DeliveryTimers } from "./delivery-timers.js";
import type { AckChange, DispatchLog, SubscriptionAckState } from "./dispatch-log.js";
import { compileFilter } from "./filter.js";
import { type BufferLimits, DEFAULT_BUFFER_LIMITS, MessageBuffer } from "./message-buffer.js";
import { PullWaiter } from "./pull-waiter.js";
import { retryDelayMs } from "./retry-backoff.js";
import { type Consumer, type TrackedMessage, TrackedState } from "./tracked-message.js";
import type { ReceivedMessage, Subscription } from "./types.js";

/** How a dispatcher starts. */
export interface SubscriptionDispatcherOptions {
  /** The subscription's generation (unique per instance; ack ids carry it). */
  subscriptionId: number;
  subscription: Subscription;
  /** Persisted ack state to resume from. */
  ackState: SubscriptionAckState;
  /** The topic's next offset when the dispatcher starts; later ones arrive through {@link SubscriptionDispatcher.onAppend}. */
  topicEnd: number;
  /** The topic's log; null when the subscription is detached or its topic deleted. */
  log: DispatchLog | null;
  now: () => number;
  /** Memory bounds; default {@link DEFAULT_BUFFER_LIMITS}. */
  limits?: Partial<BufferLimits>;
}

/** Counters of {@link SubscriptionDispatcher.stats}. */
export interface DispatcherStats {
  backlog: number;
  oldestUnackedPublishTimeMs: number | null;
  deadLettered: number;
  outstanding: number;
}

/** Log reads per pump before yielding to the event loop (a long filtered-out stretch must not block it). */
const READS_PER_PUMP = 16;

/**
 * Delivers one subscription's messages to its consumers (streams and unary pulls) with Pub/Sub
 * semantics. Persistent state is the ack floor plus acked offsets above it, written once per
 * acknowledge call; leases, attempts and backoffs live only here, so a restart redelivers every
 * unacked message. Reads the log only when a consumer has room, so idle subscriptions cost nothing.
 */
export class SubscriptionDispatcher implements StreamHost {
  readonly subscriptionId: number;
  /** Messages forwarded to the dead-letter topic since the process started. */
  deadLettered = 0;
  /** Last pull, stream or creation (ms since the epoch), for the expiration policy. */
  lastActiveMs: number;

  private subscription: Subscription;
  private log: DispatchLog | null;
  private readonly now: () => number;
  private readonly buffer: MessageBuffer;

  private epoch = randomInt(1, 2 ** 31);
  private prefix = "";
  private prefixEpoch = 0;
  private persistedFloor: number;
  private readonly timers = new DeliveryTimers(() => this.pump());
  private readonly consumers = new ConsumerSet();
  private readBudget = READS_PER_PUMP;
  private pumpScheduled = false;
  private pumping = false;
  private closed = false;

  constructor(options: SubscriptionDispatcherOptions) {
    const { subscription, ackState } = options;
    this.subscriptionId = options.subscriptionId;
    this.subscription = subscription;
    this.log = options.log;
    this.now = options.now;
    this.persistedFloor = ackState.floor;
    const filter = subscription.filter.trim() === "" ? null : compileFilter(subscription.filter);
    const limits = { ...DEFAULT_BUFFER_LIMITS, ...options.limits };
    this.buffer = new MessageBuffer(filter, subscription.enableMessageOrdering, limits, ackState, options.topicEnd);
    this.lastActiveMs = this.now();
  }

  /** Applies an updated configuration (ack deadline, retry and dead-letter policies). */
  configure(subscription: Subscription): void {
    this.subscription = subscription;
    this.schedulePump();
  }

  /** The topic's log grew to `nextOffset`. */
  onAppend(nextOffset: number): void {
    if (nextOffset <= this.buffer.knownEnd) return;
    this.buffer.knownEnd = nextOffset;
    if (this.consumers.size > 0) this.schedulePump();
  }

  /** Records activity for the expiration policy. */
  touch(): void {
    this.lastActiveMs = this.now();
  }

  /** The persisted ack floor: every offset below it is acked or filtered out. */
  get ackFloor(): number {
    return this.persistedFloor;
  }

  /** True while a stream or a waiting pull is attached (an active subscription never expires). */
  get hasConsumers(): boolean {
    return this.consumers.size > 0;
  }

  /** Unary pull: what is deliverable now, else waits up to `waitMs` for at least one message. */
  async pull(options: { maxMessages: number; waitMs: number; signal: AbortSignal }): Promise<ReceivedMessage[]> {
    this.touch();
    this.processTimers();
    const waiter = new PullWaiter(options.maxMessages, this.subscription.ackDeadlineSeconds * 1000);
    this.readBudget = READS_PER_PUMP;
    const batch = this.take(waiter);
    if (batch.length > 0 || options.waitMs <= 0 || options.signal.aborted || this.closed) {
      return batch.map((message) => this.receivedMessage(message));
    }
    this.consumers.add(waiter);
    await waiter.wait(options.waitMs, options.signal);
    this.consumers.remove(waiter);
    return (waiter.taken ?? []).map((message) => this.receivedMessage(message));
  }

  /** Opens a streaming consumer with its own flow control and lease length. */
  openStream(options: DeliveryOptions): DeliveryStream {
    const stream = new DispatchStream(this, options);
    this.touch();
    if (this.closed) stream.end();
    else if (!stream.isEnded) this.consumers.add(stream);
    this.schedulePump();
    return stream;
  }

  /**
   * Acks the deliveries named by `ackIds`, persisting them in one (synchronous, durable) write
   * before returning, so a confirmed ack survives a crash. Stale ids are reported, not applied.
   * @throws StreamgateError INVALID_ARGUMENT for a malformed ack id or one of another subscription.
   */
  acknowledge(ackIds: string[]): AckResult {
    const { targets, stale } = this.resolveAckIds(ackIds, false);
    const result = this.ackResult(stale);
    if (targets.length === 0) return result;
    if (this.log === null) return this.ackResult(ackIds);
    const change = this.ackChange(targets);
    this.log.saveAcks(change);
    for (const message of targets) this.releaseLease(message);
    this.complete(targets, change.floor);
    return result;
  }

  /**
   * Extends the leases named by `ackIds` to `seconds` from now, or nacks them when `seconds` is 0.
   * Ids that name no current lease are reported, not applied.
   * @throws StreamgateError INVALID_ARGUMENT for a malformed ack id or one of another subscription.
   */
  modifyAckDeadline(ackIds: string[], seconds: number): AckResult {
    const { targets, stale } = this.resolveAckIds(ackIds, true);
    const result = this.ackResult(stale);
    if (targets.length === 0) return result;
    if (seconds === 0) {
      this.redeliver(targets);
    } else {
      const deadline = this.now() + seconds * 1000;
      for (const message of targets) {
        message.deadlineMs = deadline;
        message.version++;
        this.timers.lease(message);
      }
      this.timers.arm(this.now());
    }
    this.schedulePump();
    return result;
  }

  /** Counters for stats; scans unread messages when a filter or restored acks must be applied. */
  stats(): DispatcherStats {
    const unread = this.log === null ? { count: 0, firstPublishTimeMs: null } : this.buffer.countUnread(this.log);
    const first = this.buffer.first();
    return {
      backlog: this.buffer.size + unread.count,
      oldestUnackedPublishTimeMs: first === undefined ? unread.firstPublishTimeMs : first.message.publishTimeMs,
      deadLettered: this.deadLettered,
      outstanding: this.buffer.leasedCount,
    };
  }

  /**
   * Restarts delivery from a new persisted ack state (after a seek): every lease is dropped, and
   * ack ids issued before become stale.
   */
  reset(ackState: SubscriptionAckState): void {
    this.clearTracked(ackState);
    this.persistedFloor = ackState.floor;
    this.epoch = (this.epoch % (2 ** 31 - 1)) + 1;
    this.schedulePump();
  }

  /**
   * Messages below `offset` are gone (topic or subscription retention): forget them and move the
   * floor past them.
   */
  dropBefore(offset: number): void {
    const dropped = this.buffer.before(offset);
    for (const message of dropped) this.releaseLease(message);
    this.complete(dropped, this.persistFloor(this.ackChange(dropped).floor));
  }

  /** Persists the in-memory floor when it moved past filtered-out messages without an ack. */
  persistCurrentFloor(): void {
    this.persistFloor(this.ackChange([]).floor);
  }

  /**
   * Stops delivering: the subscription was detached or its topic deleted. Tracked messages are
   * dropped; open streams end with `reason` when given, else stay open and idle.
   */
  disconnect(reason?: StreamgateError): void {
    this.log = null;
    this.clearTracked({ floor: this.buffer.readCursor, acked: [] });
    if (reason !== undefined) this.consumers.endAll(reason);
  }

  /** Stops timers and ends every stream and waiting pull. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.timers.stop();
    this.consumers.endAll();
  }

  receivedMessage(message: TrackedMessage): ReceivedMessage {
    const ackId = encodeAckId(
      {
        subscriptionId: this.subscriptionId,
        epoch: this.epoch,
        offset: message.message.offset,
        attempt: message.attempt,
      },
      this.ackIdPrefix(),
    );
    return { ackId, message: message.message, deliveryAttempt: message.attempt };
  }

  streamEnded(stream: DispatchStream, undelivered: TrackedMessage[]): void {
    this.consumers.remove(stream);
    // Leased but never yielded: the client never saw them, so they go back without costing an attempt.
    const unseen = new Set(undelivered);
    for (const message of byOffset(undelivered)) {
      if (message.state !== TrackedState.leased) continue; // held back behind an earlier one of its key
      this.releaseLease(message);
      for (const later of this.revokeLater(message)) if (unseen.has(later)) later.attempt--;
      message.attempt--;
      message.version++;
      this.buffer.requeue(message);
    }
    if (undelivered.length > 0) this.schedulePump();
  }

  wake(): void {
    this.schedulePump();
  }

  /** The ack id prefix of this subscription and epoch (computed once per epoch; base-36 formatting is slow). */
  private ackIdPrefix(): string {
    if (this.prefixEpoch !== this.epoch) {
      this.prefix = ackIdPrefix(this.subscriptionId, this.epoch);
      this.prefixEpoch = this.epoch;
    }
    return this.prefix;
  }

  private schedulePump(): void {
    if (this.pumpScheduled || this.closed) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** Hands deliverable messages to consumers with room, round-robin, until none can take more. */
  private pump(): void {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    this.readBudget = READS_PER_PUMP;
    try {
      this.processTimers();
      this.consumers.distribute((consumer) => this.take(consumer));
    } catch (error) {
      this.consumers.endAll(StreamgateError.from(error));
    } finally {
      this.pumping = false;
    }
  }

  /** Leases up to a batch of deliverable messages to `consumer`, within its flow control. */
  private take(consumer: Consumer): TrackedMessage[] {
    const capacity = consumer.capacity();
    const limit = Math.min(capacity.messages, MAX_DELIVERY_BATCH);
    const taken: TrackedMessage[] = [];
    let bytes = capacity.bytes;
    const deadline = this.now() + consumer.leaseMs;
    // Ready messages of keys another stream holds: passed over, and put back for that stream.
    const passed: TrackedMessage[] = [];
    while (taken.length < limit) {
      const next = this.buffer.peekReady();
      if (next === undefined) {
        if (this.readMore()) continue;
        break;
      }
      if (this.buffer.boundElsewhere(next, consumer)) {
        this.buffer.shiftReady();
        passed.push(next);
        continue;
      }
      // Pub/Sub lets one oversized message through to a consumer with nothing outstanding.
      if (next.size > bytes && !(capacity.idle && taken.length === 0)) break;
      this.buffer.shiftReady();
      bytes -= next.size;
      next.attempt++;
      next.holder = consumer;
      next.deadlineMs = deadline;
      next.version++;
      this.buffer.setState(next, TrackedState.leased);
      this.buffer.leased(next);
      this.timers.lease(next);
      taken.push(next);
    }
    for (const message of passed) this.buffer.putBack(message);
    if (taken.length > 0) this.timers.arm(this.now());
    return taken;
  }

  /** Reads more of the log into the buffer; false when nothing more can be read now. */
  private readMore(): boolean {
    if (this.log === null || !this.buffer.canRead()) return false;
    if (this.readBudget <= 0) {
      // A long stretch of filtered-out messages must not hold the event loop: continue next turn.
      setImmediate(() => this.schedulePump());
      return false;
    }
    this.readBudget--;
    return this.buffer.readMore(this.log);
  }

  /** Expires due leases and ends due backoffs, then re-arms the timer. */
  private processTimers(): void {
    const now = this.now();
    const { expired, ready } = this.timers.due(now);
    if (expired.length > 0) this.redeliver(expired);
    for (const message of ready) this.buffer.requeue(message);
    this.timers.arm(now);
  }

  /**
   * Nacked or expired leases: dead-letter those out of attempts, back off or requeue the rest.
   * With ordering, the later leased messages of each key are taken back too, to be redelivered after it.
   */
  private redeliver(messages: TrackedMessage[]): void {
    const policy = this.subscription.deadLetterPolicy;
    const dead: TrackedMessage[] = [];
    for (const message of byOffset(messages)) {
      // Already taken back behind an earlier message of its key in this same call.
      if (message.state !== TrackedState.leased) continue;
      this.releaseLease(message);
      this.revokeLater(message);
      if (policy !== null && this.log !== null && message.attempt >= policy.maxDeliveryAttempts) {
        dead.push(message);
      } else {
        this.scheduleRetry(message);
      }
    }
    if (dead.length > 0) this.forwardToDeadLetter(dead);
  }

  private scheduleRetry(message: TrackedMessage): void {
    message.version++;
    const delay = retryDelayMs(this.subscription.retryPolicy, message.attempt);
    if (delay <= 0) {
      this.buffer.requeue(message);
      return;
    }
    message.deadlineMs = this.now() + delay;
    this.buffer.setState(message, TrackedState.delayed);
    this.timers.backoff(message);
    this.timers.arm(this.now());
  }

  /** Publishes copies to the dead-letter topic and acks the originals in one write. */
  private forwardToDeadLetter(dead: TrackedMessage[]): void {
    const { deadLetterPolicy, name } = this.subscription;
    const change = this.ackChange(dead);
    const copies = dead.map((message) => deadLetterMessage(message.message, name, message.attempt));
    try {
      this.log!.deadLetter(deadLetterPolicy!.deadLetterTopic, copies, change);
    } catch {
      // The dead-letter topic is missing (or unwritable): keep redelivering, as Pub/Sub does.
      for (const message of dead) this.scheduleRetry(message);
      return;
    }
    this.deadLettered += dead.length;
    this.complete(dead, change.floor);
  }

  /** Takes back the leases of the later messages of `message`'s key and holds them behind it; returns them. */
  private revokeLater(message: TrackedMessage): TrackedMessage[] {
    const later = this.buffer.revoke(message);
    for (const item of later) {
      this.releaseLease(item);
      this.buffer.hold(item);
    }
    return later;
  }

  private ackResult(invalidAckIds: string[]): AckResult {
    return { invalidAckIds, temporaryFailedAckIds: [], exactlyOnce: this.subscription.enableExactlyOnceDelivery };
  }

  /**
   * Looks up the tracked messages named by ack ids, after validating every id; ids naming no
   * current delivery are returned as stale.
   */
  private resolveAckIds(ackIds: string[], leasedOnly: boolean): { targets: TrackedMessage[]; stale: string[] } {
    const decoded = ackIds.map((ackId) => {
      const parts = decodeAckId(ackId);
      if (parts.subscriptionId !== this.subscriptionId) {
        throw invalidAckId(ackId, `does not belong to subscription ${this.subscription.name}`);
      }
      return parts;
    });
    const found = new Set<TrackedMessage>();
    const stale: string[] = [];
    decoded.forEach((parts, index) => {
      const message = parts.epoch === this.epoch ? this.buffer.get(parts.offset) : undefined;
      // Stale (acked, redelivered since, or reset): not applied; exactly-once clients are told.
      const current =
        message !== undefined &&
        message.attempt === parts.attempt &&
        (message.state === TrackedState.leased ||
          (!leasedOnly && (message.state === TrackedState.ready || message.state === TrackedState.delayed)));
      if (current) found.add(message);
      else stale.push(ackIds[index]!);
    });
    return { targets: [...found], stale };
  }

  /** The ack state after `finished` messages leave: the floor is the first unfinished tracked offset. */
  private ackChange(finished: TrackedMessage[]): AckChange {
    const floor = Math.max(this.buffer.floorWithout(finished), this.persistedFloor);
    const acked = finished.map((message) => message.message.offset).filter((offset) => offset >= floor);
    return { floor, previousFloor: this.persistedFloor, acked };
  }

  private persistFloor(floor: number): number {
    if (floor > this.persistedFloor && this.log !== null) {
      this.log.saveAcks({ floor, previousFloor: this.persistedFloor, acked: [] });
      this.persistedFloor = floor;
    }
    return this.persistedFloor;
  }

  /** Forgets finished messages (releasing the next message of their ordering keys) at the new floor. */
  private complete(messages: TrackedMessage[], floor: number): void {
    this.buffer.finish(messages);
    this.persistedFloor = Math.max(this.persistedFloor, floor);
    if (messages.length > 0) this.schedulePump();
  }

  private releaseLease(message: TrackedMessage): void {
    const holder = message.holder;
    message.holder = null;
    if (message.state === TrackedState.leased) this.buffer.setState(message, TrackedState.ready);
    holder?.release(message);
  }

  /** Drops every tracked message and lease, and restarts from `ackState`. */
  private clearTracked(ackState: SubscriptionAckState): void {
    for (const message of this.buffer.all()) this.releaseLease(message);
    this.buffer.reset(ackState);
    this.timers.clear();
  }
}

/** Messages in offset order (ordering keys are redelivered front to back). */
function byOffset(messages: TrackedMessage[]): TrackedMessage[] {
  return messages.length < 2 ? messages : [...messages].sort((a, b) => a.message.offset - b.message.offset);
}
