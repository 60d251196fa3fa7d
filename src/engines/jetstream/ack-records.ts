// Durable records of the sequences acked on each consumer generation, in one JetStream stream: seeks and snapshots see every ack, whichever instance made it and whether it still runs.
import { AckPolicy, DeliverPolicy, type JetStreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { ConsumerChannel } from "./consumer-channel.js";
import { ReplyInbox } from "./reply-inbox.js";

/** How long a record write waits for its PubAck (the @nats-io client's default). */
const WRITE_TIMEOUT_MS = 5_000;
/**
 * Sequences per record subject. A subject holds the records of one range of sequences, so the
 * records the consumer's ack floor has passed go with one purge per range.
 */
export const SEQUENCES_PER_SUBJECT = 16_384;
/**
 * Records older than this are dropped by JetStream itself: Pub/Sub's longest subscription message
 * retention (7 days) plus a day. A message acked that long ago is past any subscription's retention,
 * so a seek that reaches it again acks it on arrival without delivering it.
 */
const RECORD_MAX_AGE_MS = 8 * 24 * 3_600_000;
/** Most records pulled per request when reading a generation's records. */
const READ_BATCH = 1_024;
/** A record that takes back acks written before JetStream confirmed them (it did not, in time). */
const RETRACTION_PREFIX = "-";

/**
 * One JetStream stream `<ns>-acks` holds, per consumer generation of a subscription, a record per
 * ack call: the sequences it acked, written beside the `+ACK`s and stored before the call is
 * answered. JetStream's consumer state says only where its ack floor is; the sequences acked above
 * it are known from these records alone, and a seek or snapshot reads them from whichever instance
 * runs it. Subjects are `<ns>.acks.<subscription id>.<generation>.<range>`, one range per
 * {@link SEQUENCES_PER_SUBJECT} sequences; a range below the ack floor is purged, and a
 * generation's records are purged once a seek replaced it.
 */
export class AckRecords {
  private readonly inbox: ReplyInbox;

  private constructor(
    private readonly connection: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly namespace: string,
  ) {
    this.inbox = new ReplyInbox(connection, WRITE_TIMEOUT_MS);
  }

  /** Opens (creating if needed) the stream `<namespace>-acks`. */
  static async open(
    connection: NatsConnection,
    jsm: JetStreamManager,
    namespace: string,
    replicas: number,
  ): Promise<AckRecords> {
    const name = AckRecords.stream(namespace);
    const exists = await jsm.streams.info(name).then(
      () => true,
      () => false,
    );
    if (!exists) {
      await jsm.streams
        .add({
          name,
          subjects: [`${namespace}.acks.>`],
          storage: StorageType.File,
          retention: RetentionPolicy.Limits,
          max_age: RECORD_MAX_AGE_MS * 1_000_000,
          num_replicas: replicas,
        })
        .catch(async (error: unknown) => {
          // Another instance created it meanwhile.
          if (
            !(await jsm.streams.info(name).then(
              () => true,
              () => false,
            ))
          )
            throw error;
        });
    }
    return new AckRecords(connection, jsm, namespace);
  }

  /** The stream's name (for teardown). */
  static stream(namespace: string): string {
    return `${namespace}-acks`;
  }

  /**
   * Records that `sequences` of the generation are acked (or, `retract`, that their ack did not
   * go through after all). Resolves true once JetStream stored every part of the record.
   */
  write(subscriptionId: string, generation: number, sequences: readonly number[], retract = false): Promise<boolean> {
    if (sequences.length === 0) return Promise.resolve(true);
    const prefix = `${this.prefix(subscriptionId, generation)}.`;
    const writes: Promise<boolean>[] = [];
    for (const [range, runs] of encodeByRange(sequences)) {
      writes.push(this.publish(`${prefix}${range}`, retract ? `${RETRACTION_PREFIX}${runs}` : runs));
    }
    return writes.length === 1 ? writes[0]! : Promise.all(writes).then((stored) => stored.every(Boolean));
  }

  /**
   * Every sequence recorded acked on the generation, whichever instance wrote it (retracted ones
   * excluded). @throws Error when the stream cannot be read.
   */
  async read(subscriptionId: string, generation: number): Promise<number[]> {
    const stream = AckRecords.stream(this.namespace);
    const consumer = await this.jsm.consumers.add(stream, {
      filter_subject: `${this.prefix(subscriptionId, generation)}.>`,
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.All,
      inactive_threshold: 10_000_000_000,
      mem_storage: true,
      num_replicas: 1,
    });
    const acked = new Set<number>();
    let remaining = consumer.num_pending;
    const channel = new ConsumerChannel(this.connection);
    try {
      while (remaining > 0) {
        const received = await channel.pull(stream, consumer.name, Math.min(remaining, READ_BATCH), null, (record) => {
          const text = record.string();
          const retract = text.startsWith(RETRACTION_PREFIX);
          for (const sequence of decodeSequences(retract ? text.slice(1) : text)) {
            if (retract) acked.delete(sequence);
            else acked.add(sequence);
          }
        });
        if (received === 0) break; // purged meanwhile
        remaining -= received;
      }
    } finally {
      channel.close();
      await this.jsm.consumers.delete(stream, consumer.name).catch(() => false);
    }
    return [...acked];
  }

  /** Purges the generation's record subjects whose every sequence is at or below `ackFloor` (acked for good). */
  async trim(subscriptionId: string, generation: number, ackFloor: number): Promise<void> {
    const stream = AckRecords.stream(this.namespace);
    const prefix = this.prefix(subscriptionId, generation);
    const info = await this.jsm.streams.info(stream, { subjects_filter: `${prefix}.>` });
    for (const subject of Object.keys(info.state.subjects ?? {})) {
      const range = Number(subject.slice(prefix.length + 1));
      if ((range + 1) * SEQUENCES_PER_SUBJECT - 1 <= ackFloor) {
        await this.jsm.streams.purge(stream, { filter: subject });
      }
    }
  }

  /** Purges the records of one generation (replaced by a seek) or, without one, of every generation (a deleted subscription). */
  async forget(subscriptionId: string, generation?: number): Promise<void> {
    const filter =
      generation === undefined
        ? `${this.namespace}.acks.${subscriptionId}.>`
        : `${this.prefix(subscriptionId, generation)}.>`;
    await this.jsm.streams.purge(AckRecords.stream(this.namespace), { filter });
  }

  /** Lets the PubAck subscription go once no write is in flight. */
  close(): void {
    this.inbox.close();
  }

  private prefix(subscriptionId: string, generation: number): string {
    return `${this.namespace}.acks.${subscriptionId}.${generation}`;
  }

  private async publish(subject: string, body: string): Promise<boolean> {
    const answer = await this.inbox.request(subject, body);
    if (answer === null || answer.data.length === 0) return false; // no PubAck in time, or no stream
    try {
      return answer.json<{ error?: unknown }>().error === undefined;
    } catch {
      return false;
    }
  }
}

/**
 * Sequences as decimal runs per record subject's range, in the order given: `5-9,12,3`. An ack
 * call's ids come mostly in delivery order, so runs are long without sorting (a sort of a 500-id
 * call cost more than the rest of its record).
 */
export function encodeByRange(sequences: readonly number[]): Map<number, string> {
  const byRange = new Map<number, string>();
  let index = 0;
  while (index < sequences.length) {
    const first = sequences[index++]!;
    const range = Math.floor(first / SEQUENCES_PER_SUBJECT);
    const rangeEnd = (range + 1) * SEQUENCES_PER_SUBJECT - 1;
    let last = first;
    while (index < sequences.length && sequences[index] === last + 1 && last < rangeEnd) {
      last++;
      index++;
    }
    const run = last === first ? String(first) : `${first}-${last}`;
    const text = byRange.get(range);
    byRange.set(range, text === undefined ? run : `${text},${run}`);
  }
  return byRange;
}

/** The sequences of {@link encodeByRange}'s text (malformed parts are skipped). */
export function decodeSequences(text: string): number[] {
  const sequences: number[] = [];
  for (const part of text.split(",")) {
    const dash = part.indexOf("-");
    const first = Number(dash === -1 ? part : part.slice(0, dash));
    const last = dash === -1 ? first : Number(part.slice(dash + 1));
    if (!Number.isSafeInteger(first) || !Number.isSafeInteger(last) || first < 1 || last < first) continue;
    for (let sequence = first; sequence <= last; sequence++) sequences.push(sequence);
  }
  return sequences;
}
