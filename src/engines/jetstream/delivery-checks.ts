// Whether an ack id still names the current delivery, wherever it was delivered: the lease book's verdicts and JetStream's ack floor.
import type { NatsConnection } from "@nats-io/nats-core";
import { type AckIdParts, ackSubject } from "./ack-id.js";
import type { SubscriptionRecord } from "./catalog.js";
import { consumerProgress } from "./consumer-admin.js";
import type { ConsumerChannel } from "./consumer-channel.js";
import type { BookVerdict, DeliveryBook } from "./delivery-book.js";
import type { Naming } from "./topic-log.js";

/** What the checks need of their engine. */
export interface DeliveryChecksHost {
  readonly connection: NatsConnection;
  readonly naming: Naming;
  readonly book: DeliveryBook;
}

/**
 * One subscription's deliveries as every instance sees them, addressed by the parts of an ack id.
 * A book that cannot be reached (NATS failing over) refuses nothing: the caller's local checks
 * still apply.
 */
export class DeliveryChecks {
  constructor(
    private readonly host: DeliveryChecksHost,
    private readonly channel: ConsumerChannel,
    private readonly record: () => SubscriptionRecord,
  ) {}

  /** Claims an ack ("a") or nack ("n") of `part`'s delivery in the book. */
  claim(part: AckIdParts, state: "a" | "n"): Promise<BookVerdict> {
    return this.host.book
      .claim(this.consumerName(part), part.sequence, part.deliveryCount, state)
      .catch(() => "current" as const);
  }

  /** Read-only: is `part`'s delivery still current (for a lease extension)? */
  check(part: AckIdParts): Promise<BookVerdict> {
    return this.host.book
      .check(this.consumerName(part), part.sequence, part.deliveryCount)
      .catch(() => "current" as const);
  }

  /** Records that JetStream confirmed `part`'s ack (best effort: an unconfirmed claim still refuses older ids). */
  confirmClaim(part: AckIdParts): Promise<void> {
    return this.host.book.confirm(this.consumerName(part), part.sequence, part.deliveryCount).catch(() => undefined);
  }

  /** True when JetStream's consumer has `part`'s message at or below its ack floor (acked already). */
  async ackedBefore(part: AckIdParts): Promise<boolean> {
    const stream = this.streamName();
    if (stream === null) return false;
    const progress = await consumerProgress(this.host.connection, stream, this.consumerName(part));
    return progress !== null && progress.ackFloor >= part.sequence;
  }

  /** Sends and resolves true once JetStream confirmed it (false: no answer in time, or no responder). */
  confirmed(reply: string, body: string): Promise<boolean> {
    return this.channel.send(reply, body);
  }

  /** The `$JS.ACK…` reply subject of `part`'s delivery, rebuilt (it may have been delivered elsewhere). */
  replyOf(part: AckIdParts): string {
    return ackSubject(this.streamName() ?? "_", this.consumerName(part), part);
  }

  /** The stream of the subscription's topic (null once detached or deleted). */
  streamName(): string | null {
    const tag = this.record().topicTag;
    return tag === null ? null : this.host.naming.stream(tag);
  }

  private consumerName(part: AckIdParts): string {
    return this.host.naming.consumer(this.record().id, part.generation);
  }
}
