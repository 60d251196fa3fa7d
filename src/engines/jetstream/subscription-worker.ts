// One subscription's delivery on this instance: pulls from its durable JetStream consumer and adds Pub/Sub semantics on top.
import type { JetStreamManager } from "@nats-io/jetstream";
import type { Msg, NatsConnection } from "@nats-io/nats-core";
import type { AckResult } from "../../broker/ack-result.js";
import { ConsumerSet } from "../../broker/consumer-set.js";
import { deadLetterMessage } from "../../broker/dead-letter.js";
import { DispatchStream, MAX_DELIVERY_BATCH, type StreamHost } from "../../broker/delivery-stream.js";
import { DeliveryTimers } from "../../broker/delivery-timers.js";
import { type AttributeFilter, compileFilter } from "../../broker/filter.js";
import { messageSize } from "../../broker/message-limits.js";
import { OrderingGate } from "../../broker/ordering-gate.js";
import { retryDelayMs } from "../../broker/retry-backoff.js";
import { type Consumer, type TrackedMessage, TrackedState } from "../../broker/tracked-message.js";
import type { MessageInput, ReceivedMessage, StoredMessage, TopicName } from "../../broker/types.js";
import type { StreamgateError } from "../../errors/index.js";
import type { DeliveryOptions, DeliveryStream } from "../engine.js";
import { type AckIdParts, decodeJetStreamAckId, parseAckSubject } from "./ack-id.js";
import { AckRecorder } from "./ack-recorder.js";
import type { AckRecords } from "./ack-records.js";
import type { SubscriptionRecord } from "./catalog.js";
import { consumerProgress } from "./consumer-admin.js";
import { AckBody, ConsumerChannel, nakWithDelay } from "./consumer-channel.js";
import { BookState, type DeliveryBook } from "./delivery-book.js";
import { DeliveryChecks } from "./delivery-checks.js";
import { type DeliveryReply, parseDeliveryReply, readCurrentAckId } from "./delivery-reply.js";
import { serveWorkerState, stateSubject } from "./instance-state.js";
import { type ConsumerProgress, OrderedOwnership, type OrderingLeases } from "./ordering-lease.js";
import {
  consumerDemand,
  INITIAL_AVERAGE_SIZE,
  longPollMs,
  MAX_REQUEST_BATCH,
  pullMaxBytes,
  TimedPullWaiter,
} from "./pull-sizing.js";
import { ReadyQueue } from "./ready-queue.js";
import { pendingKeys } from "./takeover-keys.js";
import { decodeMessage, type Naming } from "./topic-log.js";

/** What a worker needs from its engine. */
export interface WorkerHost {
  readonly connection: NatsConnection;
  readonly jsm: JetStreamManager;
  readonly naming: Naming;
  /** The engine's clock (ms since the epoch), for the subscription's message retention. */
  now(): number;
  /** Publishes a dead-lettered copy. @throws StreamgateError NOT_FOUND when the topic is missing. */
  deadLetter(topic: TopicName, message: MessageInput): Promise<void>;
  /** The cluster-wide lease book (current deliveries, claimed acks, dead-letter counts). */
  readonly book: DeliveryBook;
  /** Durable records of the sequences acked on each consumer generation (seeks and snapshots read them). */
  readonly records: AckRecords;
  /** Leases of ordered subscriptions (one delivering instance each). */
  readonly leases: OrderingLeases;
  /** Most messages a worker holds (the engine's maxTrackedMessages). */
  readonly maxTracked: number;
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
  /** The current delivery's part of its ack id (see DeliveryReply.ackIdTail). */
  ackIdTail: string;
  /** When JetStream itself will redeliver unless told the message is in progress. */
  jetStreamExpiryMs: number;
  /** Earlier deliveries that went back to JetStream unseen by any client: `attempt` minus these is the delivery attempt. */
  uncounted: number;
}

/**
 * Delivers one subscription on this instance. JetStream owns the shared state (which messages are
 * acked, delivery counts, redelivery after ack_wait, nak delays) so the instances of a cluster
 * share a subscription's messages; this worker adds what JetStream lacks: filters (non-matching
 * messages are acked on arrival), per-key ordering (held back within this instance), dead
 * lettering, flow control per stream and exact lease deadlines.
 */
export class SubscriptionWorker implements StreamHost {
  private record: SubscriptionRecord;
  private filter: AttributeFilter | null = null;
  private readonly consumers = new ConsumerSet();
  private readonly tracked = new Map<number, JetStreamTracked>();
  private readonly ready = new ReadyQueue<JetStreamTracked>();
  private readonly gate = new OrderingGate();
  /** Sequences acked through this instance since the last seek (a later seek keeps them acked). */
  readonly acked = new Set<number>();
  private skip = new Set<number>();
  private fetching = false;
  private readonly channel: ConsumerChannel;
  private readonly checks: DeliveryChecks;
  private readonly recorder: AckRecorder;
  private pumpScheduled = false;
  /** Lease deadlines of what clients hold: one heap and one timer per worker, not a timer per message. */
  private readonly leaseTimers = new DeliveryTimers(() => this.expireLeases());
  /** Moving average of delivered message sizes, to size pull requests for byte-limited consumers. */
  private averageSize = INITIAL_AVERAGE_SIZE;
  private idleTicks = 0;
  private closed = false;
  private readonly keepAlive: NodeJS.Timeout;
  private readonly stopServingState: () => void;
  /** Ordered subscriptions: whether this instance is the one that delivers (null: unordered). */
  private readonly ownership: OrderedOwnership | null;
  /** Settles once a closed worker gave up its ordering lease (so another instance takes over at once). */
  released: Promise<void> = Promise.resolve();

  /** Keyed deliveries held until the previous owner's deliveries are back (see OrderedOwnership). */
  private barrierHeld: JetStreamTracked[] = [];
  /** Size of the next pull made behind a full barrier (see probeBehindBarrier). */
  private probeBatch = 1;

  constructor(
    private readonly host: WorkerHost,
    record: SubscriptionRecord,
  ) {
    this.record = record;
    this.channel = new ConsumerChannel(host.connection);
    this.checks = new DeliveryChecks(host, this.channel, () => this.record);
    this.recorder = new AckRecorder({
      records: host.records,
      current: () => this.record,
      ackFloor: () => this.progress().then((progress) => progress?.ackFloor ?? null),
    });
    this.applyConfig(record);
    this.keepAlive = setInterval(() => this.tick(), 1000);
    this.keepAlive.unref();
    this.ownership = record.config.enableMessageOrdering
      ? new OrderedOwnership(
          host.leases.lease(record.id),
          () => this.progress(),
          (progress) => pendingKeys(host, this.record, progress, this.filter, this.acked),
        )
      : null;
    this.stopServingState = serveWorkerState(
      host.connection,
      stateSubject(host.naming.namespace, record.id),
      async (settle) => {
        if (settle) await this.settle();
        return { generation: this.record.generation, acked: [...this.acked], unleased: this.unleasedCount };
      },
    );
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
      if (!this.attached && reason !== undefined) this.consumers.endAll(reason);
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
      if (this.mayFetch) await this.request(Math.min(options.maxMessages, MAX_REQUEST_BATCH), null);
      else void this.stepOwnership();
      batch = this.take(waiter);
    }
    if (batch.length > 0 || options.waitMs <= 0 || options.signal.aborted || this.closed) {
      return batch.map((message) => this.receivedMessage(message));
    }
    this.consumers.add(waiter);
    this.schedulePump();
    await waiter.wait(options.waitMs, options.signal);
    this.consumers.remove(waiter);
    return (waiter.taken ?? []).map((message) => this.receivedMessage(message as JetStreamTracked));
  }

  openStream(options: DeliveryOptions): DeliveryStream {
    const stream = new DispatchStream(this, options);
    if (this.closed) stream.end();
    else if (!stream.isEnded) this.consumers.add(stream);
    if (!this.mayFetch) void this.stepOwnership();
    this.schedulePump();
    return stream;
  }

  /**
   * Validates every ack id (INVALID_ARGUMENT for malformed or foreign ones) before acting on any;
   * ids of an older consumer generation are stale.
   */
  private resolve(ackIds: string[]): { current: { ackId: string; part: AckIdParts }[]; stale: string[] } {
    const { id, generation } = this.record;
    const prefix = `${id}-${generation}.`;
    const current: { ackId: string; part: AckIdParts }[] = [];
    const stale: string[] = [];
    for (const ackId of ackIds) {
      // The current generation's ids read by hand; anything else through the pattern (or its error).
      const part =
        readCurrentAckId(ackId, prefix, id, generation) ?? decodeJetStreamAckId(ackId, id, this.record.config.name);
      if (part.generation === generation) current.push({ ackId, part });
      else stale.push(ackId);
    }
    return { current, stale };
  }

  /**
   * Acks through JetStream: on an exactly-once subscription each ack waits for JetStream's
   * confirmation (the ack is then stored in the stream's consumer state); otherwise the call's acks
   * go out back to back and only the last asks for confirmation, which JetStream sends once it has
   * applied every ack before it (see ConsumerChannel.ackAll). A delivery this instance tracks under
   * another attempt was redelivered: stale. An ack JetStream did not confirm is a temporary failure
   * the client may retry.
   */
  async acknowledge(ackIds: string[]): Promise<AckResult> {
    const { current, stale } = this.resolve(ackIds);
    const work: Promise<void>[] = [];
    const temporaryFailed: string[] = [];
    const posted: { ackId: string; reply: string; sequence: number }[] = [];
    /** Acks JetStream confirmed one by one (through the book): recorded once all are in. */
    const confirmedOneByOne: number[] = [];
    const generation = this.record.generation;
    const exactlyOnce = this.record.config.enableExactlyOnceDelivery;
    for (const { ackId, part } of current) {
      const tracked = this.tracked.get(part.sequence);
      if (tracked !== undefined) {
        const acceptable = tracked.state === TrackedState.leased || tracked.state === TrackedState.delayed;
        if (tracked.attempt !== part.deliveryCount || !acceptable) {
          stale.push(ackId);
          continue;
        }
        if (!exactlyOnce) {
          // At-least-once: the acks go out back to back, and one confirmed ack covers them all (below).
          this.finish(tracked);
          posted.push({ ackId, reply: tracked.reply, sequence: part.sequence });
          this.acked.add(part.sequence);
          continue;
        }
        // Exactly-once: the delivery may have moved to another instance (a stalled lease); ask the book.
        // Counted acked here only once the book allowed it: a redelivery arriving meanwhile is the
        // book's to decide (see arrive), and one after a stale claim must still be handed out.
        work.push(
          this.checks.claim(part, BookState.acked).then(async (verdict) => {
            this.finish(tracked);
            if (verdict === "stale") {
              stale.push(ackId);
              return;
            }
            this.acked.add(part.sequence);
            if (await this.checks.confirmed(tracked.reply, AckBody.ack)) {
              confirmedOneByOne.push(part.sequence);
              await this.checks.confirmClaim(part);
            } else if (await this.checks.ackedBefore(part)) stale.push(ackId);
            else temporaryFailed.push(ackId);
          }),
        );
      } else if (this.acked.has(part.sequence)) {
        stale.push(ackId);
      } else {
        // Leased through another instance (or expired here, or before a restart): JetStream acks by
        // sequence, so the book decides whether this id still names the current delivery; JetStream
        // does not answer an ack of a message it no longer has pending.
        work.push(
          this.checks.claim(part, BookState.acked).then(async (verdict) => {
            if (verdict === "stale") {
              stale.push(ackId);
              return;
            }
            this.acked.add(part.sequence);
            if (await this.checks.confirmed(this.checks.replyOf(part), AckBody.ack)) {
              confirmedOneByOne.push(part.sequence);
              return this.checks.confirmClaim(part);
            }
            if (await this.checks.ackedBefore(part)) stale.push(ackId);
            else temporaryFailed.push(ackId);
          }),
        );
      }
    }
    if (posted.length > 0) {
      // The record goes out beside the acks (its PubAck and their confirmation are awaited together);
      // acks JetStream then fails to confirm are retracted (a later seek delivers them again).
      const sequences = posted.map((ack) => ack.sequence);
      const recorded = this.recorder.record(generation, sequences);
      work.push(
        recorded,
        this.channel.ackAll(posted.map((ack) => ack.reply)).then(async (confirmed) => {
          if (confirmed) return;
          temporaryFailed.push(...posted.map((ack) => ack.ackId));
          await recorded;
          await this.recorder.retract(generation, sequences);
        }),
      );
    }
    await Promise.all(work);
    await this.recorder.record(generation, confirmedOneByOne);
    return this.ackResult(stale, temporaryFailed);
  }

  async modifyAckDeadline(ackIds: string[], seconds: number): Promise<AckResult> {
    const { current, stale } = this.resolve(ackIds);
    const work: Promise<unknown>[] = [];
    const now = Date.now();
    for (const { ackId, part } of current) {
      const tracked = this.tracked.get(part.sequence);
      if (tracked === undefined) {
        if (this.acked.has(part.sequence)) {
          stale.push(ackId);
          continue;
        }
        // Leased through another instance: the book says whether the id still names the current delivery.
        const verdict = seconds === 0 ? this.checks.claim(part, BookState.nacked) : this.checks.check(part);
        work.push(
          verdict.then(async (answer) => {
            if (answer === "stale") stale.push(ackId);
            else await this.send(this.checks.replyOf(part), seconds === 0 ? AckBody.nak : AckBody.progress);
          }),
        );
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
    return this.consumers.size > 0;
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
    this.stopServingState();
    // What no client holds goes to the other instances now rather than after ack_wait.
    const givenBack: Promise<void>[] = [];
    for (const tracked of this.tracked.values()) {
      if (tracked.state === TrackedState.ready || tracked.state === TrackedState.held) {
        givenBack.push(this.giveBack(tracked.reply));
      }
    }
    const lease = this.ownership?.release().catch(() => undefined) ?? Promise.resolve();
    this.released = Promise.all([lease, ...givenBack]).then(() => undefined);
    this.reset();
    this.leaseTimers.stop();
    this.channel.close();
    this.consumers.endAll(reason);
  }

  receivedMessage(message: TrackedMessage): ReceivedMessage {
    const tracked = message as JetStreamTracked;
    return {
      // encodeJetStreamAckId's format, from the delivery's part read once on arrival.
      ackId: `${this.record.id}-${this.record.generation}.${tracked.ackIdTail}`,
      message: tracked.message,
      deliveryAttempt: tracked.attempt - tracked.uncounted,
    };
  }

  streamEnded(stream: DispatchStream, undelivered: TrackedMessage[]): void {
    this.consumers.remove(stream);
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
    this.consumers.distribute((consumer) => this.take(consumer));
  }

  private take(consumer: Consumer): JetStreamTracked[] {
    // An ordered subscription whose lease ran out hands out nothing more (its next step resets it).
    if (!this.mayFetch) return [];
    const capacity = consumer.capacity();
    const limit = Math.min(capacity.messages, MAX_DELIVERY_BATCH);
    const taken: JetStreamTracked[] = [];
    let bytes = capacity.bytes;
    const now = Date.now();
    this.ready.compact();
    let index = 0;
    // Ready messages of keys another stream holds stay ready for it (at most one per key).
    const passed: JetStreamTracked[] = [];
    while (taken.length < limit && index < this.ready.length) {
      const next = this.ready.at(index)!;
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
    this.ready.consumed(index, passed);
    return taken;
  }

  /** Messages the local consumers could take now beyond those already ready. */
  private demand(): number {
    const demand = consumerDemand(this.consumers.list(), this.averageSize);
    if (demand === 0) return 0;
    this.ready.compact();
    return Math.min(demand - this.ready.length, this.host.maxTracked - this.tracked.size);
  }

  /** Pulls from JetStream while local consumers have room: what is there now, else a long poll for one. */
  private async fetchLoop(): Promise<void> {
    if (this.fetching || this.closed || !this.attached || !this.mayFetch) return;
    this.fetching = true;
    try {
      for (;;) {
        const demand = this.demand();
        // An ordered subscription's lease may run out between two requests: only its holder pulls.
        if (demand <= 0 || this.closed || !this.attached || !this.mayFetch) break;
        const generation = this.record.generation;
        const maxBytes = this.maxBytes();
        if (maxBytes === 0) break; // what is ready here fills the consumers' bytes
        const received = await this.request(Math.min(demand, MAX_REQUEST_BATCH), null, maxBytes);
        if (generation !== this.record.generation) continue;
        this.pump();
        if (received > 0) continue;
        const wait = longPollMs(this.consumers.list(), Date.now());
        if (wait < 20) break;
        await this.request(1, wait);
        // Whatever arrived is pumped after the next no-wait request collects the rest.
      }
    } finally {
      this.fetching = false;
      this.pump();
    }
  }

  /** The byte limit of a pull for the local consumers (null: none), net of what is ready here. */
  private maxBytes(): number | null {
    let readyBytes = 0;
    for (let index = 0; index < this.ready.length; index++) readyBytes += this.ready.at(index)!.size;
    return pullMaxBytes(this.consumers.list(), readyBytes);
  }

  /**
   * One pull request on the current consumer generation; deliveries of an older generation are
   * dropped. An ordered subscription's long poll ends while this instance still holds the lease (by
   * its own clock, with the lease's safety margin), so no delivery reaches it after another
   * instance could have taken over and read where delivery stood.
   */
  private request(
    batch: number,
    expiresMs: number | null,
    maxBytes: number | null = null,
    observe?: (deliveryCount: number) => void,
  ): Promise<number> {
    const stream = this.streamName();
    if (stream === null || this.closed || !this.mayFetch) return Promise.resolve(0);
    if (expiresMs !== null && this.ownership !== null) {
      expiresMs = Math.min(expiresMs, this.ownership.remainingMs());
      if (expiresMs < 20) return Promise.resolve(0);
    }
    const generation = this.record.generation;
    const consumer = this.host.naming.consumer(this.record.id, generation);
    const onMessage = (delivery: Msg) => {
      const parsed = parseDeliveryReply(delivery.reply!);
      if (parsed === null) return; // not a JetStream delivery (the channel passes only `$JS.ACK` replies)
      observe?.(parsed.deliveryCount);
      if (generation === this.record.generation) this.arrive(delivery, parsed);
    };
    return this.channel.pull(stream, consumer, batch, expiresMs, onMessage, maxBytes);
  }

  /** A delivery from JetStream: skip, filter, dead-letter, or track it as ready or held. */
  private arrive(delivery: Msg, parsed: DeliveryReply): void {
    const reply = delivery.reply!;
    if (!this.mayFetch) {
      // Ordered, and this instance's lease ran out while the request was open: the holder delivers it.
      void this.giveBack(reply);
      return;
    }
    const { sequence, deliveryCount, timestampNs } = parsed;
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
    if (deliveryCount > 1) {
      // A redelivery: record it in the book before handing it out, so an ack of an older delivery
      // sent to any instance is refused; one claimed acked first is done.
      const generation = this.record.generation;
      void this.host.book
        .recordDelivery(this.host.naming.consumer(this.record.id, generation), sequence, deliveryCount)
        .catch(() => ({ verdict: "deliver" as const, uncounted: 0 }))
        .then(({ verdict, uncounted }) => {
          if (this.closed || generation !== this.record.generation) return;
          if (!this.mayFetch) {
            void this.giveBack(reply); // the lease ran out meanwhile: the holder delivers it
            return;
          }
          // Acked here while the book was being written (an at-least-once ack of the previous
          // delivery, which JetStream applies by sequence): this delivery is done too. Handing it
          // out would deliver a message JetStream no longer has pending, and a nack of it would
          // then wait for a redelivery that never comes, holding its key's later messages for good.
          if (verdict === "acked" || this.acked.has(sequence)) {
            const known = this.tracked.get(sequence);
            if (known !== undefined) this.finish(known);
            void this.send(reply, AckBody.ack);
            return;
          }
          this.track(message, parsed, reply, uncounted);
          this.schedulePump();
        });
      return;
    }
    this.track(message, parsed, reply, 0);
  }

  /** Dead-letters a delivery past its last attempt, else tracks it as ready or held. */
  private track(message: StoredMessage, delivery: DeliveryReply, reply: string, uncounted: number): void {
    const { sequence, deliveryCount } = delivery;
    const policy = this.record.config.deadLetterPolicy;
    if (policy !== null && deliveryCount - uncounted > policy.maxDeliveryAttempts) {
      // Expired (not nacked) on its last attempt: forward it now.
      void this.forwardToDeadLetter(message, deliveryCount - uncounted - 1, reply, this.tracked.get(sequence));
      return;
    }
    let tracked = this.tracked.get(sequence);
    if (tracked !== undefined) {
      this.releaseLease(tracked);
      tracked.reply = reply;
      tracked.ackIdTail = delivery.ackIdTail;
      tracked.attempt = deliveryCount;
      tracked.uncounted = uncounted;
      tracked.version++;
    } else {
      tracked = {
        sequence,
        reply,
        ackIdTail: delivery.ackIdTail,
        message,
        size: messageSize(message),
        state: TrackedState.ready,
        attempt: deliveryCount,
        version: 0,
        deadlineMs: 0,
        holder: null,
        jetStreamExpiryMs: 0,
        uncounted,
      };
      this.tracked.set(sequence, tracked);
      this.averageSize += (Math.max(1, tracked.size) - this.averageSize) / 16;
    }
    tracked.jetStreamExpiryMs = Date.now() + this.ackWaitMs;
    if (this.isOrdered(tracked) && this.ownership?.holdsBackKey(tracked.message.orderingKey) === true) {
      // A previous owner's deliveries are not all back yet: a newer message of a key waits for them.
      tracked.state = TrackedState.held;
      tracked.holder = null;
      if (!this.barrierHeld.includes(tracked)) this.barrierHeld.push(tracked);
      return;
    }
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
    this.ready.insert(tracked);
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
    const attempt = tracked.attempt - tracked.uncounted;
    if (policy !== null && attempt >= policy.maxDeliveryAttempts) {
      tracked.state = TrackedState.delayed;
      await this.forwardToDeadLetter(tracked.message, attempt, tracked.reply, tracked);
      return;
    }
    if (this.isOrdered(tracked)) {
      tracked.state = TrackedState.delayed;
      tracked.version++;
    } else {
      tracked.state = TrackedState.done;
      this.tracked.delete(tracked.sequence);
    }
    await this.nak(tracked.reply, attempt);
  }

  /**
   * Sends a delivery no client saw back to JetStream for another instance (or a later consumer
   * here), after recording in the book that it was no delivery attempt: JetStream counts every
   * delivery, Pub/Sub only those a subscriber received.
   */
  private async giveBack(reply: string): Promise<void> {
    const { sequence, deliveryCount } = parseAckSubject(reply);
    const consumer = this.host.naming.consumer(this.record.id, this.record.generation);
    await this.host.book.release(consumer, sequence, deliveryCount).catch(() => undefined);
    await this.send(reply, AckBody.nak);
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
    void this.host.book.countDeadLetter(this.record.id).catch(() => undefined);
    if (tracked !== undefined) this.finish(tracked);
    // Forwarded counts as acked, for seeks and snapshots too (as on the embedded engine).
    const generation = this.record.generation;
    const { sequence } = parseAckSubject(reply);
    this.acked.add(sequence);
    if (await this.send(reply, AckBody.ack)) await this.recorder.record(generation, [sequence]);
  }

  /** (Re)schedules the lease's expiry at `deadlineMs`; the new version makes any earlier schedule stale. */
  private armLease(tracked: JetStreamTracked): void {
    tracked.version++;
    this.leaseTimers.lease(tracked);
    this.leaseTimers.arm(Date.now());
  }

  /** Leases past their deadline (still leased, at the version they were armed for) are redelivered. */
  private expireLeases(): void {
    const now = Date.now();
    const { expired } = this.leaseTimers.due(now);
    for (const tracked of expired) void this.redeliver(tracked as JetStreamTracked).then(() => this.schedulePump());
    this.leaseTimers.arm(now);
  }

  /** Ends a lease (a stale schedule stays in the heap until due or swept: its state or version no longer match). */
  private releaseLease(tracked: JetStreamTracked): void {
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
    this.recorder.tick();
    const now = Date.now();
    this.idleTicks = this.consumers.size === 0 ? this.idleTicks + 1 : 0;
    if (!this.mayFetch) {
      // An ordered subscription whose lease ran out keeps nothing alive: its step below resets it.
      void this.stepOwnership();
      return;
    }
    for (const tracked of [...this.tracked.values()]) {
      if (this.idleTicks >= 2 && tracked.state !== TrackedState.leased) {
        // Nobody here wants it: let another instance have it now rather than after ack_wait.
        const awaited = tracked.state === TrackedState.delayed; // already nacked
        tracked.state = TrackedState.done;
        this.tracked.delete(tracked.sequence);
        if (this.isOrdered(tracked) && !this.barrierHeld.includes(tracked)) this.gate.finish(tracked);
        if (!awaited) void this.giveBack(tracked.reply);
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
    this.barrierHeld = this.barrierHeld.filter((tracked) => tracked.state !== TrackedState.done);
    void this.probeBehindBarrier();
    if (this.ownership !== null) void this.stepOwnership();
  }

  private send(reply: string, body: string): Promise<unknown> {
    return this.channel.send(reply, body);
  }

  private streamName(): string | null {
    return this.checks.streamName();
  }

  /** May this instance pull from JetStream? Always for unordered subscriptions; for ordered ones, while it owns the lease. */
  private get mayFetch(): boolean {
    return this.ownership === null || this.ownership.owner;
  }

  /** Renews, takes, releases or loses the ordering lease, and lifts the takeover barrier when it can. */
  private async stepOwnership(): Promise<void> {
    if (this.ownership === null || this.closed) return;
    const releasable = this.idleTicks >= 2 && this.tracked.size === 0;
    const change = await this.ownership.step(this.consumers.size > 0 && this.attached, releasable, this.tracked.size);
    if (this.closed) return;
    if (change === "lost") {
      // Another instance may own the subscription now: what no client holds goes back to JetStream
      // at once (the next holder's barrier admits it in order); what a client holds comes back
      // after its ack_wait unless the client acks it, since nothing here keeps it in progress.
      for (const tracked of this.tracked.values()) {
        if (tracked.state === TrackedState.ready || tracked.state === TrackedState.held) {
          void this.giveBack(tracked.reply);
        }
      }
      this.reset();
    } else {
      // A held key whose pending deliveries are all back (or acked here) goes on before the rest.
      const keysReleased = this.ownership.releaseKeys(
        (sequence) => this.tracked.has(sequence) || this.acked.has(sequence),
      );
      if (keysReleased || change !== "none") this.admitReleased();
      if (keysReleased) this.schedulePump();
    }
    if (change !== "none") this.schedulePump();
  }

  /**
   * Admits, in sequence order, whatever a pull brought in while the barrier held its key (on a
   * gain, until the consumer's state showed what a previous holder may still have out).
   */
  private admitReleased(): void {
    const held = this.barrierHeld.sort((a, b) => a.sequence - b.sequence);
    this.barrierHeld = [];
    for (const tracked of held) {
      if (tracked.state !== TrackedState.held) continue;
      if (this.ownership?.holdsBackKey(tracked.message.orderingKey) === true) this.barrierHeld.push(tracked);
      else this.admit(tracked);
    }
  }

  /**
   * A new holder that filled up with newer messages while the previous holder's deliveries are
   * still out would stop pulling and never get those back (the barrier would hold for good). So,
   * once a second, it pulls anyway: JetStream hands out redeliveries before new messages, so a
   * batch of only redeliveries is followed by a full-size one, and a batch with a first delivery
   * (nothing more was waiting) by a single message: holding one message a second past the limit.
   */
  private async probeBehindBarrier(): Promise<void> {
    if (this.ownership?.holdsBack !== true || this.fetching || this.closed || !this.attached) return;
    if (this.tracked.size < this.host.maxTracked || this.consumers.size === 0) return;
    this.fetching = true;
    try {
      let firstDeliveries = 0;
      const received = await this.request(this.probeBatch, null, null, (deliveryCount) => {
        if (deliveryCount === 1) firstDeliveries++;
      });
      this.probeBatch = received > 0 && firstDeliveries === 0 ? MAX_REQUEST_BATCH : 1;
    } finally {
      this.fetching = false;
    }
  }

  /** The current consumer's ack floor, last delivered sequence and pending count (null when unreachable). */
  private progress(): Promise<ConsumerProgress | null> {
    const stream = this.streamName();
    if (stream === null) return Promise.resolve(null);
    return consumerProgress(
      this.host.connection,
      stream,
      this.host.naming.consumer(this.record.id, this.record.generation),
    );
  }

  /** Drops every tracked message and open request (after a seek, detach, topic deletion or close). */
  private reset(): void {
    this.channel.cancelRequests();
    for (const tracked of this.tracked.values()) {
      this.releaseLease(tracked);
      tracked.state = TrackedState.done;
    }
    this.tracked.clear();
    this.leaseTimers.clear();
    this.ready.clear();
    this.gate.clear();
    this.acked.clear();
    this.recorder.reset();
    this.barrierHeld = [];
    this.ownership?.clearBarrier();
  }
}
