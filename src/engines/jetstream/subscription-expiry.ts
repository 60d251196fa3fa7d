// Subscription expiration on the JetStream engine: shared last-activity times and the sweep every instance runs.
import type { SubscriptionName } from "../../broker/types.js";
import type { Catalog, SubscriptionRecord } from "./catalog.js";

/** What the expiry needs of its engine. */
export interface ExpiryHost {
  readonly catalog: Catalog;
  /** Least time between two activity writes of one subscription by this instance, in ms. */
  readonly activityWriteIntervalMs: number;
  now(): number;
  /** True once the engine is closed. */
  isClosed(): boolean;
  /** False while the client is reconnecting to NATS (no sweep then). */
  isConnected(): boolean;
  /** True while a stream or waiting pull of the subscription is open on this instance. */
  inUse(name: SubscriptionName): boolean;
  /** Removes the expired subscription's JetStream consumer. */
  deleteConsumer(record: SubscriptionRecord): Promise<void>;
}

/** Last-activity writes and the expiration sweep of one engine instance. */
export class SubscriptionExpiry {
  /** Subscriptions whose last-activity write is in flight. */
  private readonly activityWrites = new Set<SubscriptionName>();
  private sweeping = false;

  constructor(private readonly host: ExpiryHost) {}

  /**
   * Records activity on a subscription: writes `lastActiveMs` to its catalog record (compare and
   * set, so a concurrent update or seek wins) when the stored value is older than the activity
   * interval. The stored value is shared, so busy instances together write about once per interval.
   */
  touch(name: SubscriptionName): void {
    const record = this.host.catalog.get("subscription", name);
    if (record === undefined || this.activityWrites.has(name) || this.host.isClosed()) return;
    const now = this.host.now();
    if (now - (record.lastActiveMs ?? record.config.createTimeMs) < this.host.activityWriteIntervalMs) return;
    this.activityWrites.add(name);
    void this.host.catalog
      .putIfUnchanged("subscription", name, { ...record, lastActiveMs: now })
      .catch(() => false)
      .finally(() => this.activityWrites.delete(name));
  }

  /**
   * Deletes subscriptions idle past their expiration ttl (the sweep every instance runs). A
   * subscription with a stream or waiting pull on this instance counts as active. The delete is
   * compare-and-set on the record this instance saw, so a touch or an update on another instance
   * in between keeps the subscription, and concurrent sweeps delete it once.
   */
  async sweep(): Promise<void> {
    if (this.sweeping || this.host.isClosed() || !this.host.isConnected()) return;
    this.sweeping = true;
    try {
      const now = this.host.now();
      for (const record of this.host.catalog.all("subscription")) {
        if (this.host.isClosed()) return;
        const name = record.config.name;
        if (this.host.inUse(name)) {
          this.touch(name);
          continue;
        }
        const ttl = record.config.expirationTtlMs;
        if (ttl === null || now - (record.lastActiveMs ?? record.config.createTimeMs) < ttl) continue;
        if (await this.host.catalog.removeIfUnchanged("subscription", name).catch(() => false)) {
          await this.host.deleteConsumer(record);
        }
      }
    } finally {
      this.sweeping = false;
    }
  }
}
