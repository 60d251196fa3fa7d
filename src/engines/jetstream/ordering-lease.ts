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
    return new OrderingLease(this.kv, `o.${subscriptionId}`, this.instanceId);
  }
}

/** This instance's hold (or not) on one subscription's lease. */
export class OrderingLease {
  private revision = 0;

  constructor(
    private readonly kv: KV,
    private readonly key: string,
    private readonly instanceId: string,
  ) {}

  /** True while this instance holds the lease (as of its last acquire or renew). */
  get held(): boolean {
    return this.revision > 0;
  }

  /** Takes the lease if nobody holds it (or this instance already does). False when another instance holds it. */
  async acquire(): Promise<boolean> {
    try {
      this.revision = await this.kv.create(this.key, this.instanceId);
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
    try {
      this.revision = await this.kv.update(this.key, this.instanceId, this.revision);
      return true;
    } catch {
      this.revision = 0;
      return false;
    }
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
  private stepping = false;

  constructor(
    private readonly lease: OrderingLease,
    private readonly progress: () => Promise<ConsumerProgress | null>,
  ) {}

  /** True while this instance may pull the subscription's messages. */
  get owner(): boolean {
    return this.lease.held;
  }

  /**
   * True while keyed deliveries must wait for the previous owner's: all of them, since JetStream
   * redelivers those as each one's ack_wait runs out, not in sequence order. Once every pending
   * delivery is here (or acked), they go to the ordering gate in sequence order.
   */
  get holdsBack(): boolean {
    return this.barrier !== null;
  }

  /** Forgets the barrier (a seek started a new consumer generation, with nothing pending). */
  clearBarrier(): void {
    this.barrier = null;
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
      if (this.lease.held) {
        if (releasable && !wanted) {
          this.barrier = null;
          await this.lease.release();
          return "released";
        }
        if (!(await this.lease.renew())) {
          this.barrier = null;
          return "lost";
        }
        if (this.barrier === null) return "none";
        const progress = await this.progress();
        if (progress !== null && progress.ackFloor < this.barrier && progress.ackPending > tracked) return "none";
        this.barrier = null;
        return "lifted";
      }
      if (!wanted || !(await this.lease.acquire())) return "none";
      const progress = await this.progress();
      this.barrier = progress !== null && progress.ackPending > 0 ? progress.delivered : null;
      return "gained";
    } catch {
      return "none";
    } finally {
      this.stepping = false;
    }
  }

  /** Gives the lease up (the worker closes). */
  release(): Promise<void> {
    this.barrier = null;
    return this.lease.release();
  }
}
