// One subscription's delivery on this instance: pulls from its durable JetStream consumer and adds Pub/Sub semantics on top.
import type { Msg, NatsConnection } from "@nats-io/nats-core";
import type { AckResult } from "../../broker/ack-result.js";
import { deadLetterMessage } from "../../broker/dead-letter.js";
import { DispatchStream, MAX_DELIVERY_BATCH, type StreamHost } from "../../broker/delivery-stream.js";
import { type AttributeFilter, compileFilter } from "../../broker/filter.js";
import { messageSize } from "../../broker/message-limits.js";
import { OrderingGate } from "../../broker/ordering-gate.js";
import { PullWaiter } from "../../broker/pull-waiter.js";
import { retryDelayMs } from "../../broker/retry-backoff.js";
import { type Consumer, type TrackedMessage, TrackedState } from "../../broker/tracked-message.js";
import type { MessageInput, ReceivedMessage, StoredMessage, TopicName } from "../../broker/types.js";
import type { StreamgateError } from "../../errors/index.js";
import type { DeliveryOptions, DeliveryStream } from "../engine.js";
import { type AckIdParts, ackSubject, decodeJetStreamAckId, encodeJetStreamAckId, parseAckSubject } from "./ack-id.js";
import type { SubscriptionRecord } from "./catalog.js";
import { AckBody, ConsumerChannel, nakWithDelay } from "./consumer-channel.js";
import { decodeMessage, type Naming } from "./topic-log.js";

/** What a worker needs from its engine. */
export interface WorkerHost {
  readonly connection: NatsConnection;
  readonly naming: Naming;
  /** The engine's clock (ms since the epoch), for the subscription's message retention. */
  now(): number;
  /** Publishes a dead-lettered copy. @throws StreamgateError NOT_FOUND when the topic is missing. */
  deadLetter(topic: TopicName, message: MessageInput): Promise<void>;
}

/**
 * A message this instance received from JetStream and has not seen acked. State `delayed` marks a
 * keyed message nacked to JetStream and awaited back: it keeps its place in its key's order.
 */
interface JetStreamTracked extends TrackedMessage {
  /** The stream sequence (the topic offset). */
  readonly sequence: number;
  /** The JetStream reply subject of the current delivery (acks, naks and progress go there). */
  reply: string;
  /** When JetStream itself will redeliver unless told the message is in progress. */
  jetStreamExpiryMs: number;
  timer: NodeJS.Timeout | null;
}

/** Largest batch asked of JetStream in one pull request. */
const MAX_REQUEST_BATCH = 256;
/** Upper bound of messages tracked (ready, held, leased) per subscription on one instance. */
const MAX_TRACKED = 10_000;
/** Assumed message size (bytes) before any has arrived, when sizing pulls for byte-limited consumers. */
const INITIAL_AVERAGE_SIZE = 1_024;
/** How long an idle long-poll pull request waits on the server when a stream is open. */
const STREAM_LONG_POLL_MS = 5_000;

/** A unary pull that knows when it gives up (long polls on JetStream last no longer). */
class TimedPullWaiter extends PullWaiter {
  constructor(
    maxMessages: number,
    leaseMs: number,
    readonly deadlineMs: number,
  ) {
    super(maxMessages, leaseMs);
  }
}

/**
 * Delivers one subscription on this instance. JetStream owns the shared state (which messages are
 * acked, delivery counts, redelivery after ack_wait, nak delays) so the instances of a cluster
 * share a subscription's messages; this worker adds what JetStream lacks: filters (non-matching
 * messages are acked on arrival), per-key ordering (held back within this instance), dead
 * lettering, flow control per stream and exact lease deadlines.
 */
export class SubscriptionWorker implements StreamHost {
  deadLettered = 0;
  private record: SubscriptionRecord;
  private filter: AttributeFilter | null = null;
  private consumers: Consumer[] = [];
  private readonly tracked = new Map<number, JetStreamTracked>();
  private ready: JetStreamTracked[] = [];
  private readonly gate = new OrderingGate();
  /** Sequences acked through this instance since the last seek (a later seek keeps them acked). */
  readonly acked = new Set<number>();
  private skip = new Set<number>();
  private fetching = false;
  private readonly channel: ConsumerChannel;
  private pumpScheduled = false;
  private roundRobin = 0;
  /** Moving average of delivered message sizes, to size pull requests for byte-limited consumers. */
  private averageSize = INITIAL_AVERAGE_SIZE;
  private idleTicks = 0;
  private closed = false;
  private readonly keepAlive: NodeJS.Timeout;

  constructor(
    private readonly host: WorkerHost,
    record: SubscriptionRecord,
  ) {
    this.record = record;
    this.channel = new ConsumerChannel(host.connection);
    this.applyConfig(record);
    this.keepAlive = setInterval(() => this.tick(), 1000);
    this.keepAlive.unref();
  }

  get subscriptionId(): string {
    return this.record.id;
  }

  /** True while the subscription reads a topic (not detached, topic not deleted). */
  get attached(): boolean {
    return this.record.topicTag !== null && !this.record.config.detached;
  }

  private get ackWaitMs(): number {
    return this.record.config.ackDeadlineSeconds * 1000;
  }

  /** Applies a changed record: a new generation (seek) or topic drops every tracked message. */
  configure(record: SubscriptionRecord, reason?: StreamgateError): void {
    const previous = this.record;
    this.record = record;
    this.applyConfig(record);
    if (previous.generation !== record.generation || previous.topicTag !== record.topicTag || !this.attached) {
      this.reset();
      if (!this.attached && reason !== undefined) this.endConsumers(reason);
    }
    this.schedulePump();
  }

  async pull(options: { maxMessages: number; waitMs: number; signal: AbortSignal }): Promise<ReceivedMessage[]> {
    // A client pulling in a loop is not idle, even between its pulls.
    this.idleTicks = 0;
    const waiter = new TimedPullWaiter(options.maxMessages, this.ackWaitMs, Date.now() + options.waitMs);
    if (!this.attached || this.closed) {
      if (options.waitMs > 0 && !this.closed) await waiter.wait(options.waitMs, options.signal);
      return [];
    }
    let batch = this.take(waiter);
    if (batch.length === 0) {
      await this.request(Math.min(options.maxMessages, MAX_REQUEST_BATCH), null);
      batch = this.take(waiter);
    }
    if (batch.length > 0 || options.waitMs <= 0 || options.signal.aborted || this.closed) {
      return batch.map((message) => this.receivedMessage(message));
    }
    this.consumers.push(waiter);
    this.schedulePump();
    await waiter.wait(options.waitMs, options.signal);
    this.removeConsumer(waiter);
    return (waiter.taken ?? []).map((message) => this.receivedMessage(message as JetStreamTracked));
  }

  openStream(options: DeliveryOptions): DeliveryStream {
    const stream = new DispatchStream(this, options);
    if (this.closed) stream.end();
    else if (!stream.isEnded) this.consumers.push(stream);
    this.schedulePump();
    return stream;
  }

  /**
   * Validates every ack id (INVALID_ARGUMENT for malformed or foreign ones) before acting on any;
   * ids of an older consumer generation are stale.
   */
  private resolve(ackIds: string[]): { current: { ackId: string; part: AckIdParts }[]; stale: string[] } {
    const parts = ackIds.map((ackId) => decodeJetStreamAckId(ackId, this.record.id, this.record.config.name));
    const current: { ackId: string; part: AckIdParts }[] = [];
    const stale: string[] = [];
    parts.forEach((part, index) => {
      if (part.generation === this.record.generation) current.push({ ackId: ackIds[index]!, part });
      else stale.push(ackIds[index]!);
    });
    return { current, stale };
  }

  /**
   * Acks through JetStream and waits for its confirmation (the ack is then stored in the stream's
   * consumer state). A delivery this instance tracks under another attempt was redelivered: stale.
   * An ack JetStream did not confirm is a temporary failure the client may retry.
   */
  async acknowledge(ackIds: string[]): Promise<AckResult> {
    const { current, stale } = this.resolve(ackIds);
    const work: Promise<void>[] = [];
    const temporaryFailed: string[] = [];
    const confirm = (ackId: string, sent: Promise<boolean>) =>
      work.push(
        sent.then((confirmed) => {
          if (!confirmed) temporaryFailed.push(ackId);
        }),
      );
    for (const { ackId, part } of current) {
      const tracked = this.tracked.get(part.sequence);
      if (tracked !== undefined) {
        const acceptable = tracked.state === TrackedState.leased || tracked.state === TrackedState.delayed;
        if (tracked.attempt !== part.deliveryCount || !acceptable) {
          stale.push(ackId);
          continue;
        }
        this.finish(tracked);
        confirm(ackId, this.confirmed(tracked.reply, AckBody.ack));
      } else if (this.acked.has(part.sequence)) {
        stale.push(ackId);
        continue;
      } else {
        // Leased through another instance (or expired here, or before a restart): JetStream acks by
        // sequence, and does not answer an ack of a message it no longer has pending.
        work.push(
          this.confirmed(this.replyOf(part), AckBody.ack).then(async (confirmed) => {
            if (confirmed) return;
            if (await this.ackedBefore(part)) stale.push(ackId);
            else temporaryFailed.push(ackId);
          }),
        );
      }
      this.acked.add(part.sequence);
    }
    await Promise.all(work);
    return this.ackResult(stale, temporaryFailed);
  }

  async modifyAckDeadline(ackIds: string[], seconds: number): Promise<AckResult> {
    const { current, stale } = this.resolve(ackIds);
    const work: Promise<unknown>[] = [];
    const now = Date.now();
    for (const { ackId, part } of current) {
      const tracked = this.tracked.get(part.sequence);
      if (tracked === undefined) {
        if (this.acked.has(part.sequence)) stale.push(ackId);
        else work.push(this.send(this.replyOf(part), seconds === 0 ? AckBody.nak : AckBody.progress));
        continue;
      }
      if (tracked.attempt !== part.deliveryCount || tracked.state !== TrackedState.leased) {
        stale.push(ackId);
        continue;
      }
      if (seconds === 0) {
        work.push(this.redeliver(tracked));
        continue;
      }
      tracked.deadlineMs = now + seconds * 1000;
      this.armLease(tracked);
      if (tracked.jetStreamExpiryMs < tracked.deadlineMs) {
        tracked.jetStreamExpiryMs = now + this.ackWaitMs;
        work.push(this.send(tracked.reply, AckBody.progress));
      }
    }
    await Promise.all(work);
    this.schedulePump();
    return this.ackResult(stale, []);
  }

  private ackResult(invalidAckIds: string[], temporaryFailedAckIds: string[]): AckResult {
    return { invalidAckIds, temporaryFailedAckIds, exactlyOnce: this.record.config.enableExactlyOnceDelivery };
  }

  /** Waits for every ack, nak and progress report sent so far to be confirmed by JetStream. */
  settle(): Promise<void> {
    return this.channel.settle();
  }

  /** True while a stream or a waiting pull is open on this instance (the subscription is in use). */
  get hasConsumers(): boolean {
    return this.consumers.length > 0;
  }

  /** Tracked messages not leased to a client (ready or held back): JetStream counts them as ack-pending. */
  get unleasedCount(): number {
    let count = 0;
    for (const tracked of this.tracked.values()) if (tracked.state !== TrackedState.leased) count++;
    return count;
  }

  /** Stops timers and requests and ends every stream and waiting pull. */
  close(reason?: StreamgateError): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepAlive);
    this.reset();
    this.endConsumers(reason);
  }

  receivedMessage(message: TrackedMessage): ReceivedMessage {
    const tracked = message as JetStreamTracked;
    const parsed = parseAckSubject(tracked.reply);
    return {
      ackId: encodeJetStreamAckId({ subscriptionId: this.record.id, generation: this.record.generation, ...parsed }),
      message: tracked.message,
      deliveryAttempt: tracked.attempt,
    };
  }

  streamEnded(stream: DispatchStream, undelivered: TrackedMessage[]): void {
    this.removeConsumer(stream);
    // Leased but never yielded: the same JetStream delivery goes to another local consumer.
    const unseen = new Set(undelivered);
    const bySequence = [...undelivered].sort((a, b) => a.message.offset - b.message.offset) as JetStreamTracked[];
    for (const tracked of bySequence) {
      if (tracked.state !== TrackedState.leased) continue; // held back behind an earlier one of its key
      this.releaseLease(tracked);
      this.revokeLater(tracked, unseen);
      this.makeReady(tracked);
    }
    if (undelivered.length > 0) this.schedulePump();
  }

  wake(): void {
    this.schedulePump();
  }

  private applyConfig(record: SubscriptionRecord): void {
    const expression = record.config.filter.trim();
    this.filter = expression === "" ? null : compileFilter(expression);
    this.skip = new Set(record.skip);
  }

  private schedulePump(): void {
    if (this.pumpScheduled || this.closed) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
      void this.fetchLoop();
    });
  }

  /** Hands ready messages to consumers with room, round-robin. */
  private pump(): void {
    let progress = true;
    while (progress && this.consumers.length > 0) {
      progress = false;
      const start = this.roundRobin++ % this.consumers.length;
      const round = [...this.consumers.slice(start), ...this.consumers.slice(0, start)];
      for (const consumer of round) {
        if (!this.consumers.includes(consumer)) continue;
        const batch = this.take(consumer);
        if (batch.length === 0) continue;
        progress = true;
        consumer.accept(batch);
        if (consumer instanceof PullWaiter) this.removeConsumer(consumer);
      }
    }
  }

  private take(consumer: Consumer): JetStreamTracked[] {
    const capacity = consumer.capacity();
    const limit = Math.min(capacity.messages, MAX_DELIVERY_BATCH);
    const taken: JetStreamTracked[] = [];
    let bytes = capacity.bytes;
    const now = Date.now();
    this.compactReady();
    let index = 0;
    // Ready messages of keys another stream holds stay ready for it (at most one per key).
    const passed: JetStreamTracked[] = [];
    while (taken.length < limit && index < this.ready.length) {
      const next = this.ready[index]!;
      if (this.isOrdered(next)) {
        const owner = this.gate.owner(next);
        if (owner !== null && owner !== consumer) {
          index++;
          passed.push(next);
          continue;
        }
      }
      if (next.size > bytes && !(capacity.idle && taken.length === 0)) break;
      index++;
      bytes -= next.size;
      next.holder = consumer;
      next.deadlineMs = now + consumer.leaseMs;
      next.version++;
      next.state = TrackedState.leased;
      this.armLease(next);
      taken.push(next);
      if (this.isOrdered(next)) {
        // The next message of its key may follow in this same batch.
        const following = this.gate.leased(next) as JetStreamTracked | undefined;
        if (following !== undefined) this.makeReady(following);
      }
    }
    // What was passed over sorts before everything not reached; what was taken left the ready state.
    if (passed.length > 0)
      this.ready = [...passed, ...this.ready.slice(index)].filter((m) => m.state === TrackedState.ready);
    else this.ready.splice(0, index);
    return taken;
  }

  /** Drops entries that left the ready state (acked, expired, reset) since they were queued. */
  private compactReady(): void {
    if (this.ready.some((message) => message.state !== TrackedState.ready)) {
      this.ready = this.ready.filter((message) => message.state === TrackedState.ready);
    }
  }

  /** Messages the local consumers could take now beyond those already ready. */
  private demand(): number {
    let demand = 0;
    for (const consumer of this.consumers) {
      const capacity = consumer.capacity();
      if (capacity.messages <= 0) continue;
      if (capacity.bytes === Number.POSITIVE_INFINITY) demand += capacity.messages;
      else if (capacity.bytes > 0 || capacity.idle) {
        // Byte-limited: ask for as many messages as fit at the average size seen so far.
        const fit = Math.floor(capacity.bytes / this.averageSize);
        demand += Math.max(1, Math.min(capacity.messages, fit));
      }
    }
    if (demand === 0) return 0;
    this.compactReady();
    return Math.min(demand - this.ready.length, MAX_TRACKED - this.tracked.size);
  }

  /** How long a long-poll request may wait: until the latest waiting pull gives up, or a while for streams. */
  private longPollMs(): number {
    let wait = 0;
    for (const consumer of this.consumers) {
      if (consumer instanceof DispatchStream) return STREAM_LONG_POLL_MS;
      // End a little before the pull gives up, so a message never lands after its puller left.
      if (consumer instanceof TimedPullWaiter) wait = Math.max(wait, consumer.deadlineMs - Date.now() - 50);
    }
    return Math.min(wait, STREAM_LONG_POLL_MS);
  }

  /** Pulls from JetStream while local consumers have room: what is there now, else a long poll for one. */
  private async fetchLoop(): Promise<void> {
    if (this.fetching || this.closed || !this.attached) return;
    this.fetching = true;
    try {
      for (;;) {
        const demand = this.demand();
        if (demand <= 0 || this.closed || !this.attached) break;
        const generation = this.record.generation;
        const received = await this.request(Math.min(demand, MAX_REQUEST_BATCH), null);
        if (generation !== this.record.generation) continue;
        this.pump();
        if (received > 0) continue;
        const wait = this.longPollMs();
        if (wait < 20) break;
        await this.request(1, wait);
        // Whatever arrived is pumped after the next no-wait request collects the rest.
      }
    } finally {
      this.fetching = false;
      this.pump();
    }
  }

  /** One pull request on the current consumer generation; deliveries of an older generation are dropped. */
  private request(batch: number, expiresMs: number | null): Promise<number> {
    const stream = this.streamName();
    if (stream === null || this.closed) return Promise.resolve(0);
    const generation = this.record.generation;
    const consumer = this.host.naming.consumer(this.record.id, generation);
    return this.channel.pull(stream, consumer, batch, expiresMs, (delivery) => {
      if (generation === this.record.generation) this.arrive(delivery);
    });
  }

  /** A delivery from JetStream: skip, filter, dead-letter, or track it as ready or held. */
  private arrive(delivery: Msg): void {
    const reply = delivery.reply!;
    const { sequence, deliveryCount, timestampNs } = parseAckSubject(reply);
    // Skipped by a seek, or acked here while JetStream's redelivery was already on its way.
    if (this.skip.has(sequence) || this.acked.has(sequence)) {
      void this.send(reply, AckBody.ack);
      return;
    }
    const message = decodeMessage(
      this.record.topicTag ?? "",
      sequence,
      Math.floor(Number(timestampNs) / 1_000_000),
      delivery.data,
      delivery.headers,
    );
    const expired = this.host.now() - message.publishTimeMs > this.record.config.messageRetentionDurationMs;
    if (expired || (this.filter !== null && !this.filter(message.attributes))) {
      // Past the subscription's message_retention_duration, or filtered out: done without delivery.
      const known = this.tracked.get(sequence);
      if (known !== undefined) this.finish(known);
      void this.send(reply, AckBody.ack);
      return;
    }
    const policy = this.record.config.deadLetterPolicy;
    if (policy !== null && deliveryCount > policy.maxDeliveryAttempts) {
      // Expired (not nacked) on its last attempt: forward it now.
      void this.forwardToDeadLetter(message, deliveryCount - 1, reply, this.tracked.get(sequence));
      return;
    }
    let tracked = this.tracked.get(sequence);
    if (tracked !== undefined) {
      this.releaseLease(tracked);
      tracked.reply = reply;
      tracked.attempt = deliveryCount;
      tracked.version++;
    } else {
      tracked = {
        sequence,
        reply,
        message,
        size: messageSize(message),
        state: TrackedState.ready,
        attempt: deliveryCount,
        version: 0,
        deadlineMs: 0,
        holder: null,
        jetStreamExpiryMs: 0,
        timer: null,
      };
      this.tracked.set(sequence, tracked);
      this.averageSize += (Math.max(1, tracked.size) - this.averageSize) / 16;
    }
    tracked.jetStreamExpiryMs = Date.now() + this.ackWaitMs;
    this.admit(tracked);
  }

  private isOrdered(tracked: JetStreamTracked): boolean {
    return this.record.config.enableMessageOrdering && tracked.message.orderingKey !== "";
  }

  /**
   * Per-key ordering: a keyed message is deliverable when every earlier one of its key seen here is
   * leased; one arriving below its key's frontier (a redelivery) sends the later ones back behind it.
   */
  private admit(tracked: JetStreamTracked): void {
    if (this.isOrdered(tracked)) {
      const { deliverable, displaced } = this.gate.admit(tracked);
      this.takeBack(displaced as JetStreamTracked[], new Set());
      if (!deliverable) {
        tracked.state = TrackedState.held;
        tracked.holder = null;
        return;
      }
    }
    this.makeReady(tracked);
  }

  /** Takes back the leases of the later messages of `tracked`'s key, to be redelivered after it. */
  private revokeLater(tracked: JetStreamTracked, unseen: Set<TrackedMessage>): void {
    if (!this.isOrdered(tracked)) return;
    this.takeBack(this.gate.revoke(tracked) as JetStreamTracked[], unseen);
  }

  /**
   * Messages that must wait behind an earlier one of their key: a leased one the client saw is
   * nacked to JetStream (its redelivery gets a new delivery count, so its old ack id goes stale)
   * and awaited; the others are simply held.
   */
  private takeBack(messages: JetStreamTracked[], unseen: Set<TrackedMessage>): void {
    for (const later of messages) {
      const seen = later.state === TrackedState.leased && !unseen.has(later);
      this.releaseLease(later);
      later.version++;
      if (seen) {
        later.state = TrackedState.delayed;
        void this.send(later.reply, AckBody.nak);
      } else {
        later.state = TrackedState.held;
      }
    }
  }

  private makeReady(tracked: JetStreamTracked): void {
    if (this.isOrdered(tracked) && !this.gate.isFrontier(tracked)) {
      tracked.state = TrackedState.held;
      tracked.holder = null;
      return;
    }
    tracked.state = TrackedState.ready;
    tracked.holder = null;
    // Arrivals are almost always in sequence order: append, else insert in place (binary search).
    const ready = this.ready;
    if (ready.length === 0 || ready[ready.length - 1]!.sequence < tracked.sequence) {
      ready.push(tracked);
      return;
    }
    let low = 0;
    let high = ready.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (ready[middle]!.sequence < tracked.sequence) low = middle + 1;
      else high = middle;
    }
    if (ready[low] !== tracked) ready.splice(low, 0, tracked);
  }

  /** Acked or dead-lettered: forget it and release the next message of its key. */
  private finish(tracked: JetStreamTracked): void {
    this.releaseLease(tracked);
    tracked.state = TrackedState.done;
    this.tracked.delete(tracked.sequence);
    if (!this.isOrdered(tracked)) return;
    const next = this.gate.finish(tracked) as JetStreamTracked | undefined;
    if (next !== undefined) this.makeReady(next);
    this.schedulePump();
  }

  /**
   * Nack or lease expiry: dead-letter on the last attempt, else nak with the retry policy's backoff.
   * With ordering, the later leased messages of its key are taken back too, and it stays tracked
   * (awaited) so they wait behind it until JetStream redelivers it.
   */
  private async redeliver(tracked: JetStreamTracked): Promise<void> {
    if (tracked.state !== TrackedState.leased) return; // taken back behind an earlier one of its key
    this.releaseLease(tracked);
    this.revokeLater(tracked, new Set());
    const policy = this.record.config.deadLetterPolicy;
    if (policy !== null && tracked.attempt >= policy.maxDeliveryAttempts) {
      tracked.state = TrackedState.delayed;
      await this.forwardToDeadLetter(tracked.message, tracked.attempt, tracked.reply, tracked);
      return;
    }
    if (this.isOrdered(tracked)) {
      tracked.state = TrackedState.delayed;
      tracked.version++;
    } else {
      tracked.state = TrackedState.done;
      this.tracked.delete(tracked.sequence);
    }
    await this.nak(tracked.reply, tracked.attempt);
  }

  private nak(reply: string, attempt: number): Promise<unknown> {
    const delayMs = retryDelayMs(this.record.config.retryPolicy, attempt);
    return this.send(reply, nakWithDelay(delayMs));
  }

  private async forwardToDeadLetter(
    message: StoredMessage,
    attempts: number,
    reply: string,
    tracked?: JetStreamTracked,
  ): Promise<void> {
    const policy = this.record.config.deadLetterPolicy!;
    try {
      await this.host.deadLetter(policy.deadLetterTopic, deadLetterMessage(message, this.record.config.name, attempts));
    } catch {
      // The dead-letter topic is missing: keep redelivering, as Pub/Sub does.
      if (tracked !== undefined && !this.isOrdered(tracked)) {
        tracked.state = TrackedState.done;
        this.tracked.delete(tracked.sequence);
      } else if (tracked !== undefined) {
        tracked.state = TrackedState.delayed;
      }
      await this.nak(reply, attempts);
      return;
    }
    this.deadLettered++;
    if (tracked !== undefined) this.finish(tracked);
    await this.send(reply, AckBody.ack);
  }

  private armLease(tracked: JetStreamTracked): void {
    if (tracked.timer !== null) clearTimeout(tracked.timer);
    const version = tracked.version;
    tracked.timer = setTimeout(
      () => {
        tracked.timer = null;
        if (tracked.state !== TrackedState.leased || tracked.version !== version) return;
        void this.redeliver(tracked).then(() => this.schedulePump());
      },
      Math.max(0, tracked.deadlineMs - Date.now()),
    );
    tracked.timer.unref();
  }

  private releaseLease(tracked: JetStreamTracked): void {
    if (tracked.timer !== null) {
      clearTimeout(tracked.timer);
      tracked.timer = null;
    }
    const holder = tracked.holder;
    tracked.holder = null;
    if (tracked.state === TrackedState.leased) tracked.state = TrackedState.ready;
    holder?.release(tracked);
  }

  /**
   * Every second: tells JetStream that messages held here (ready, held back, or leased for longer
   * than ack_wait) are in progress; and gives back what no local consumer wants.
   */
  private tick(): void {
    const now = Date.now();
    this.idleTicks = this.consumers.length === 0 ? this.idleTicks + 1 : 0;
    for (const tracked of [...this.tracked.values()]) {
      if (this.idleTicks >= 2 && tracked.state !== TrackedState.leased) {
        // Nobody here wants it: let another instance have it now rather than after ack_wait.
        const awaited = tracked.state === TrackedState.delayed; // already nacked
        tracked.state = TrackedState.done;
        this.tracked.delete(tracked.sequence);
        if (this.isOrdered(tracked)) this.gate.finish(tracked);
        if (!awaited) void this.send(tracked.reply, AckBody.nak);
        continue;
      }
      // Nacked and awaited back from JetStream: its old delivery must not be kept in progress.
      if (tracked.state === TrackedState.delayed) continue;
      const needed = tracked.state !== TrackedState.leased || tracked.deadlineMs > tracked.jetStreamExpiryMs;
      if (needed && tracked.jetStreamExpiryMs - now < this.ackWaitMs / 2) {
        tracked.jetStreamExpiryMs = now + this.ackWaitMs;
        void this.send(tracked.reply, AckBody.progress);
      }
    }
    if (this.idleTicks >= 2 && this.tracked.size === 0) this.gate.clear();
  }

  private send(reply: string, body: string): Promise<unknown> {
    return this.channel.send(reply, body);
  }

  /** True when JetStream's consumer has `part`'s message at or below its ack floor (acked already). */
  private async ackedBefore(part: AckIdParts): Promise<boolean> {
    const stream = this.streamName();
    if (stream === null) return false;
    const consumer = this.host.naming.consumer(this.record.id, part.generation);
    try {
      const answer = await this.host.connection.request(`$JS.API.CONSUMER.INFO.${stream}.${consumer}`, "", {
        timeout: 2_000,
      });
      const info = answer.json<{ ack_floor?: { stream_seq?: number } }>();
      return (info.ack_floor?.stream_seq ?? 0) >= part.sequence;
    } catch {
      return false;
    }
  }

  /** Sends and resolves true once JetStream confirmed it (false: no answer in time, or no responder). */
  private confirmed(reply: string, body: string): Promise<boolean> {
    return this.channel.send(reply, body).then((answer) => answer !== undefined);
  }

  private replyOf(part: AckIdParts): string {
    return ackSubject(this.streamName() ?? "_", this.host.naming.consumer(this.record.id, part.generation), part);
  }

  private streamName(): string | null {
    return this.record.topicTag === null ? null : this.host.naming.stream(this.record.topicTag);
  }

  /** Drops every tracked message and open request (after a seek, detach, topic deletion or close). */
  private reset(): void {
    this.channel.cancelRequests();
    for (const tracked of this.tracked.values()) {
      this.releaseLease(tracked);
      tracked.state = TrackedState.done;
    }
    this.tracked.clear();
    this.ready = [];
    this.gate.clear();
    this.acked.clear();
  }

  private removeConsumer(consumer: Consumer): void {
    const index = this.consumers.indexOf(consumer);
    if (index >= 0) this.consumers.splice(index, 1);
  }

  private endConsumers(reason?: StreamgateError): void {
    const consumers = this.consumers;
    this.consumers = [];
    for (const consumer of consumers) {
      if (consumer instanceof DispatchStream) consumer.end(reason);
      else if (consumer instanceof PullWaiter) consumer.accept(consumer.taken ?? []);
    }
  }
}
