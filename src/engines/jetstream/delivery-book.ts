// The cluster-wide lease book: which delivery of a message is current, in a KV bucket every instance reads.
import type { KV, KvEntry } from "@nats-io/kv";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { KeyWrites } from "./key-writes.js";

/**
 * What the book says of one message of one consumer generation. Values are `<state><delivery
 * count>`, followed by `~<n>` once `n` of the message's deliveries went back to JetStream without
 * reaching a client (they are not delivery attempts). A message never redelivered and never acked,
 * nacked or released through the book has no entry.
 */
export const BookState = {
  /** Delivered with this count (written by the instance that received a redelivery, before handing it out). */
  delivered: "d",
  /** Acked with this count (written before the ack goes to JetStream). */
  acked: "a",
  /** Nacked with this count: that delivery is over. */
  nacked: "n",
  /** Acked with this count and confirmed by JetStream: any further ack of the message is stale. */
  confirmed: "c",
  /** Delivery with this count went back to JetStream unseen by any client (an instance released it). */
  released: "r",
} as const;
export type BookState = (typeof BookState)[keyof typeof BookState];

/** An ack or nack the book allows (`current`) or refuses (`stale`: it names an older or finished delivery). */
export type BookVerdict = "current" | "stale";

/** How many compare-and-set rounds a claim tries before giving up (each loses only to a concurrent writer). */
const MAX_ROUNDS = 8;

interface Entry {
  state: BookState;
  count: number;
  /** Deliveries of the message that went back unseen (not delivery attempts). */
  uncounted: number;
  revision: number;
}

/** What {@link DeliveryBook.recordDelivery} found. */
export interface DeliveryRecord {
  /** "acked": an ack of the previous delivery was claimed first (ack this one, do not hand it out). */
  verdict: "deliver" | "acked";
  /** Earlier deliveries that never reached a client: the delivery attempt is the count minus these. */
  uncounted: number;
}

/**
 * Ack ids carry the JetStream delivery count, but JetStream acks by sequence: an ack of delivery 1
 * sent after the message was redelivered (count 2) to another instance would ack that current
 * delivery. The book closes that gap across instances. An instance that receives a redelivery
 * records `delivered` with its count (compare and set) before handing it out; an ack or nack
 * through the book claims its own count (compare and set) before it reaches JetStream. Whichever
 * write comes second sees the first: a claim of an older count is stale, and a redelivery arriving
 * after a claim of the previous count is acked (or dropped) instead of handed out.
 *
 * Entries live for `ttlMs` after their last write (the bucket's max age): long enough for any ack
 * id a client may still hold, short enough that the bucket stays small.
 */
export class DeliveryBook {
  private constructor(
    private readonly kv: KV,
    private readonly counters: KV,
    private readonly writes: KeyWrites,
  ) {}

  /** Opens (creating if needed) the buckets `<namespace>-deliveries` and `<namespace>-counters`. */
  static async open(
    connection: NatsConnection,
    namespace: string,
    replicas: number,
    ttlMs: number,
  ): Promise<DeliveryBook> {
    const kvm = new Kvm(connection);
    const kv = await kvm.create(`${namespace}-deliveries`, { history: 1, replicas, ttl: ttlMs });
    const counters = await kvm.create(`${namespace}-counters`, { history: 1, replicas });
    return new DeliveryBook(kv, counters, new KeyWrites(connection, `${namespace}-deliveries`));
  }

  /** The names of the buckets (for teardown). */
  static buckets(namespace: string): string[] {
    return [`KV_${namespace}-deliveries`, `KV_${namespace}-counters`];
  }

  /**
   * Records that delivery `count` of a message is about to be handed out here, and says how many
   * earlier deliveries never reached a client.
   */
  async recordDelivery(consumer: string, sequence: number, count: number): Promise<DeliveryRecord> {
    const key = keyOf(consumer, sequence);
    let uncounted = 0;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const entry = await this.read(key);
      uncounted = entry?.uncounted ?? 0;
      if (entry !== null && (entry.state === BookState.acked || entry.state === BookState.confirmed)) {
        return { verdict: "acked", uncounted };
      }
      // Written already (ours, or a newer one).
      if (entry !== null && entry.count >= count) return { verdict: "deliver", uncounted };
      if (await this.write(key, entry, BookState.delivered, count)) return { verdict: "deliver", uncounted };
    }
    return { verdict: "deliver", uncounted };
  }

  /**
   * Records, before it goes back to JetStream, that delivery `count` reached no client: the next
   * delivery's attempt number does not count it. A message acked or delivered again meanwhile is left alone.
   */
  async release(consumer: string, sequence: number, count: number): Promise<void> {
    const key = keyOf(consumer, sequence);
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const entry = await this.read(key);
      if (entry !== null) {
        if (entry.count > count || entry.state === BookState.acked || entry.state === BookState.confirmed) return;
        // Released already, or nacked by a client through another instance (it saw it: an attempt).
        if (entry.count === count && entry.state !== BookState.delivered) return;
      }
      const uncounted = (entry?.uncounted ?? 0) + 1;
      if (await this.write(key, entry, BookState.released, count, uncounted)) return;
    }
  }

  /**
   * Claims an ack (or nack) of delivery `count`: current when no later delivery was recorded and the
   * message was not acked or nacked with another count; a repeated claim of the same ack is current
   * (a retried ack).
   */
  async claim(consumer: string, sequence: number, count: number, state: "a" | "n"): Promise<BookVerdict> {
    const key = keyOf(consumer, sequence);
    // Most messages are acked on their first delivery and have no entry: create it outright (the
    // compare and set a read finding nothing would do next), one round trip instead of two.
    if (await this.writes.createIfAbsent(key, `${state}${count}`)) return "current";
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const entry = await this.read(key);
      if (entry !== null) {
        if (entry.count > count || entry.state === BookState.confirmed) return "stale";
        if (entry.state !== BookState.delivered) {
          if (entry.count === count && entry.state === state) return "current";
          if (entry.count === count || entry.state === BookState.acked) return "stale";
        }
      }
      if (await this.write(key, entry, state, count, entry?.uncounted ?? 0)) return "current";
    }
    return "stale";
  }

  /** Marks a claimed ack as confirmed by JetStream (a repeated ack of it is then stale at once). */
  async confirm(consumer: string, sequence: number, count: number): Promise<void> {
    await this.writes.put(keyOf(consumer, sequence), `${BookState.confirmed}${count}`);
  }

  /**
   * Sequences of `consumer` whose ack the book holds (claimed or confirmed), whichever instance made
   * it: a seek or snapshot keeps them acked even when that instance has died since.
   */
  async ackedSequences(consumer: string): Promise<number[]> {
    const keys: string[] = [];
    for await (const key of await this.kv.keys(`${consumer}.*`)) keys.push(key);
    const acked: number[] = [];
    for (let start = 0; start < keys.length; start += 100) {
      const entries = await Promise.all(keys.slice(start, start + 100).map((key) => this.read(key)));
      entries.forEach((entry, index) => {
        if (entry !== null && (entry.state === BookState.acked || entry.state === BookState.confirmed)) {
          acked.push(Number(keys[start + index]!.slice(consumer.length + 1)));
        }
      });
    }
    return acked;
  }

  /** Read-only check for a lease extension of delivery `count`: stale once a later delivery, an ack or a nack is recorded. */
  async check(consumer: string, sequence: number, count: number): Promise<BookVerdict> {
    const entry = await this.read(keyOf(consumer, sequence));
    if (entry === null) return "current";
    if (entry.count > count || entry.state !== BookState.delivered) return "stale";
    return "current";
  }

  /** Adds one to a subscription's dead-lettered count (compare and set, so concurrent instances add up). */
  async countDeadLetter(subscriptionId: string): Promise<void> {
    const key = `dl.${subscriptionId}`;
    for (let round = 0; round < MAX_ROUNDS * 4; round++) {
      const entry = await this.counters.get(key);
      const value = entry === null || entry.operation !== "PUT" ? 0 : Number(entry.string());
      try {
        if (entry === null || entry.operation !== "PUT") await this.counters.create(key, String(value + 1));
        else await this.counters.update(key, String(value + 1), entry.revision);
        return;
      } catch (error) {
        if (!isConflict(error)) throw error;
      }
    }
  }

  /** A subscription's dead-lettered count, summed over every instance. */
  async deadLettered(subscriptionId: string): Promise<number> {
    const entry = await this.counters.get(`dl.${subscriptionId}`);
    return entry === null || entry.operation !== "PUT" ? 0 : Number(entry.string());
  }

  /** Forgets a deleted subscription's counters. */
  async forget(subscriptionId: string): Promise<void> {
    await this.counters.purge(`dl.${subscriptionId}`).catch(() => undefined);
  }

  private async read(key: string): Promise<Entry | null> {
    const entry: KvEntry | null = await this.kv.get(key);
    if (entry === null || entry.operation !== "PUT") return null; // absent, deleted or purged
    const text = entry.string();
    const tilde = text.indexOf("~");
    return {
      state: text.slice(0, 1) as BookState,
      count: Number(tilde === -1 ? text.slice(1) : text.slice(1, tilde)),
      uncounted: tilde === -1 ? 0 : Number(text.slice(tilde + 1)),
      revision: entry.revision,
    };
  }

  /**
   * Compare and set against `previous` (null: the key must not exist), keeping its count of unseen
   * deliveries unless given. False when another writer came first.
   */
  private async write(
    key: string,
    previous: Entry | null,
    state: BookState,
    count: number,
    uncounted = previous?.uncounted ?? 0,
  ): Promise<boolean> {
    const value = uncounted > 0 ? `${state}${count}~${uncounted}` : `${state}${count}`;
    try {
      if (previous === null) await this.kv.create(key, value);
      else await this.kv.update(key, value, previous.revision);
      return true;
    } catch (error) {
      if (isConflict(error)) return false;
      throw error;
    }
  }
}

function keyOf(consumer: string, sequence: number): string {
  return `${consumer}.${sequence}`;
}

function isConflict(error: unknown): boolean {
  return /wrong last sequence|key exists|exists/i.test(String(error));
}
