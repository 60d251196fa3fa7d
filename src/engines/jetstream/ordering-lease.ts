// Which instance delivers an ordered subscription: a lease in a KV bucket whose entries expire unless renewed.
import type { KV } from "@nats-io/kv";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";

/**
 * Leases of ordered subscriptions, one KV key per subscription holding the owning instance's id.
 * The bucket's max age is the lease: an owner renews (compare and set) well within it, and the
 * entry of an owner that died expires, so another instance can create it. Only the owner pulls
 * from the subscription's consumer, so every message of a key passes one ordering gate.
 */
export class OrderingLeases {
  private constructor(
    private readonly kv: KV,
    /** This instance's id (random per engine). */
    readonly instanceId: string,
    /** How long a lease lasts without renewal, in ms. */
    readonly leaseMs: number,
  ) {}

  /** Opens (creating if needed) the bucket `<namespace>-owners`, whose max age is `leaseMs`. */
  static async open(
    connection: NatsConnection,
    namespace: string,
    replicas: number,
    leaseMs: number,
    instanceId: string,
  ): Promise<OrderingLeases> {
    const kv = await new Kvm(connection).create(`${namespace}-owners`, { history: 1, replicas, ttl: leaseMs });
    return new OrderingLeases(kv, instanceId, leaseMs);
  }

  /** The bucket's stream name (for teardown). */
  static bucket(namespace: string): string {
    return `KV_${namespace}-owners`;
  }

  /** One subscription's lease as this instance sees it. */
  lease(subscriptionId: string): OrderingLease {
    return new OrderingLease(this.kv, `o.${subscriptionId}`, this.instanceId, this.leaseMs);
  }
}

/**
 * How long before the lease's end, as this instance counts it, it stops acting as the holder. The
 * bucket's max age runs from when the server stored the last renewal, which is after this instance
 * sent it; a pull request is made to end on the server within this margin too (see
 * {@link OrderingLease.remainingMs}), so nothing reaches this instance under a lease another took.
 */
export const LEASE_SAFETY_MARGIN_MS = 1_000;

/**
 * This instance's hold (or not) on one subscription's lease. The hold is bounded by the local
 * clock as well as by the last answer from the bucket: an instance that stalls (a long pause, a
 * slow or lost renewal) stops counting itself the holder before its entry can expire and another
 * instance create it, whether or not a renewal failed yet.
 */
export class OrderingLease {
  private revision = 0;
  /** performance.now() after which this instance no longer counts itself the holder. */
  private validUntil = 0;

  constructor(
    private readonly kv: KV,
    private readonly key: string,
    private readonly instanceId: string,
    private readonly leaseMs: number,
  ) {}

  /** True while this instance holds the lease: its last acquire or renew succeeded, recently enough. */
  get held(): boolean {
    return this.revision > 0 && performance.now() < this.validUntil;
  }

  /** True when the last write succeeded but its time ran out without a renewal: lost, whatever the bucket says now. */
  get lapsed(): boolean {
    return this.revision > 0 && performance.now() >= this.validUntil;
  }

  /** Milliseconds this instance may still act as the holder (0 when it does not hold the lease). */
  remainingMs(): number {
    return this.revision > 0 ? Math.max(0, this.validUntil - performance.now()) : 0;
  }

  /** Takes the lease if nobody holds it (or this instance already does). False when another instance holds it. */
  async acquire(): Promise<boolean> {
    const sentAt = performance.now();
    try {
      this.revision = await this.kv.create(this.key, this.instanceId);
      this.validUntil = sentAt + this.leaseMs - LEASE_SAFETY_MARGIN_MS;
      return true;
    } catch {
      const entry = await this.kv.get(this.key).catch(() => null);
      if (entry !== null && entry.operation === "PUT" && entry.string() === this.instanceId) {
        this.revision = entry.revision;
        return this.renew();
      }
      this.revision = 0;
      return false;
    }
  }

  /** Extends the lease (compare and set on the revision this instance wrote). False when it was lost. */
  async renew(): Promise<boolean> {
    if (this.revision === 0) return false;
    const sentAt = performance.now();
    try {
      this.revision = await this.kv.update(this.key, this.instanceId, this.revision);
      this.validUntil = sentAt + this.leaseMs - LEASE_SAFETY_MARGIN_MS;
      return true;
    } catch {
      this.revision = 0;
      return false;
    }
  }

  /** Forgets a hold whose time ran out (the entry may be another instance's by now). */
  drop(): void {
    this.revision = 0;
  }

  /** Gives the lease up now (another instance may take it at once). */
  async release(): Promise<void> {
    const revision = this.revision;
    this.revision = 0;
    if (revision === 0) return;
    await this.kv.delete(this.key, { previousSeq: revision }).catch(() => undefined);
  }
}

/** What the ownership needs of the subscription's consumer (JetStream's consumer info). */
export interface ConsumerProgress {
  /** Highest stream sequence below which everything is acked. */
  ackFloor: number;
  /** Highest stream sequence delivered so far (to any instance). */
  delivered: number;
  /** Deliveries not acked yet, on every instance. */
  ackPending: number;
}

/** What changed in one ownership step. */
export type OwnershipChange = "none" | "gained" | "lost" | "released" | "lifted";

/**
 * One ordered subscription's ownership on this instance. A new owner may inherit deliveries of a
 * previous owner that died (pending in JetStream until its ack_wait passes): until every one of
 * them is back here or acked, keyed messages are held back (the barrier) and then admitted in
 * sequence order, so no key's newer message overtakes an older one still out.
 */
export class OrderedOwnership {
  /** The last sequence the previous owner could have delivered (null: no barrier). */
  private barrier: number | null = null;
  /**
   * While the barrier is up: the ordering keys it holds, each with the sequences the previous
   * owner may still have out (null: every key, until known). Other keys flow at once.
   */
  private heldKeys: Map<string, Set<number>> | null = null;
  private stepping = false;

  /**
   * @param pendingKeys - the keys of the deliveries still pending at `progress` (those the
   *   previous owner may have out), with their sequences; null when they cannot be told.
   */
  constructor(
    private readonly lease: OrderingLease,
    private readonly progress: () => Promise<ConsumerProgress | null>,
    private readonly pendingKeys: (progress: ConsumerProgress) => Promise<Map<string, Set<number>> | null> = () =>
      Promise.resolve(null),
  ) {}

  /** True while this instance may pull the subscription's messages. */
  get owner(): boolean {
    return this.lease.held;
  }

  /** Milliseconds this instance may still act as the owner: a pull request must end on the server within them. */
  remainingMs(): number {
    return this.lease.remainingMs();
  }

  /**
   * True while keyed deliveries must wait for the previous owner's: all of them, since JetStream
   * redelivers those as each one's ack_wait runs out, not in sequence order. Once every pending
   * delivery is here (or acked), they go to the ordering gate in sequence order.
   */
  get holdsBack(): boolean {
    return this.barrier !== null;
  }

  /** True while deliveries of `key` must wait for the previous owner's (see {@link holdsBack}). */
  holdsBackKey(key: string): boolean {
    return this.barrier !== null && (this.heldKeys === null || this.heldKeys.has(key));
  }

  /**
   * Lets go of every held key whose pending sequences are all back (`back` says which are) and
   * lifts the barrier once no key is held. @returns true when it let go of anything.
   */
  releaseKeys(back: (sequence: number) => boolean): boolean {
    if (this.barrier === null || this.heldKeys === null) return false;
    let released = false;
    for (const [key, sequences] of this.heldKeys) {
      let all = true;
      for (const sequence of sequences) if (!back(sequence)) all = false;
      if (all) {
        this.heldKeys.delete(key);
        released = true;
      }
    }
    if (this.heldKeys.size === 0) this.clearBarrier();
    return released;
  }

  /** Forgets the barrier (a seek started a new consumer generation, with nothing pending). */
  clearBarrier(): void {
    this.barrier = null;
    this.heldKeys = null;
  }

  /**
   * One step (every second, and when a consumer arrives): renew or release a held lease, try to
   * take a free one when local consumers want messages, and lift the barrier once the previous
   * owner's deliveries are all back (`tracked`: deliveries this instance holds).
   */
  async step(wanted: boolean, releasable: boolean, tracked: number): Promise<OwnershipChange> {
    if (this.stepping) return "none";
    this.stepping = true;
    try {
      if (this.lease.lapsed) {
        // No renewal in time (a stall, a slow bucket): another instance may hold the lease already.
        this.clearBarrier();
        this.lease.drop();
        return "lost";
      }
      if (this.lease.held) {
        if (releasable && !wanted) {
          this.clearBarrier();
          await this.lease.release();
          return "released";
        }
        if (!(await this.lease.renew())) {
          this.clearBarrier();
          return "lost";
        }
        if (this.barrier === null) return "none";
        const progress = await this.progress();
        // Unknown (JetStream slow to answer) holds the barrier: lifting it early could deliver a
        // key's newer message before an older one the previous owner still has out.
        if (progress === null || (progress.ackFloor < this.barrier && progress.ackPending > tracked)) return "none";
        this.clearBarrier();
        return "lifted";
      }
      if (!wanted) return "none";
      // Held back from the moment the lease is ours until the consumer's state says how far the
      // previous holder got: a pull made meanwhile (a stream's wake-up) must not admit anything.
      this.barrier = Number.POSITIVE_INFINITY;
      this.heldKeys = null;
      if (!(await this.lease.acquire())) {
        this.clearBarrier();
        return "none";
      }
      const progress = await this.progress();
      // Unknown: wait until every pending delivery is back here, whatever was delivered before.
      if (progress === null) this.barrier = Number.POSITIVE_INFINITY;
      else this.barrier = progress.ackPending > 0 ? progress.delivered : null;
      if (progress !== null && this.barrier !== null) {
        // Only the keys of what may still be out wait; unknown (a read failed) holds them all.
        this.heldKeys = await this.pendingKeys(progress).catch(() => null);
        if (this.heldKeys?.size === 0) this.clearBarrier();
      }
      return "gained";
    } catch {
      return "none";
    } finally {
      this.stepping = false;
    }
  }

  /** Gives the lease up (the worker closes). */
  release(): Promise<void> {
    this.clearBarrier();
    return this.lease.release();
  }
}
