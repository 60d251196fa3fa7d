// Which ordering keys a new holder of an ordered subscription must hold back: those of the deliveries the previous holder may still have out.
import type { JetStreamManager } from "@nats-io/jetstream";
import type { AttributeFilter } from "../../broker/filter.js";
import type { AckRecords } from "./ack-records.js";
import type { SubscriptionRecord } from "./catalog.js";
import type { ConsumerProgress } from "./ordering-lease.js";
import { type Naming, readStream } from "./topic-log.js";

/**
 * Most sequences between the ack floor and the last delivery read to tell the keys apart; past
 * this every key waits, as when the keys cannot be read. The previous holder had at most its
 * tracked messages (`maxTrackedMessages`) out, so the span is usually far smaller.
 */
export const MAX_TAKEOVER_SCAN = 10_000;

/** What the scan needs of its worker. */
export interface TakeoverKeysHost {
  readonly jsm: JetStreamManager;
  readonly naming: Naming;
  readonly records: AckRecords;
  /** The engine's clock (the subscription's message retention). */
  now(): number;
}

/**
 * The keyed messages of the current generation that may still be pending with the previous
 * holder, by ordering key: every sequence above the ack floor up to the last delivery that no
 * ack record holds and that the worker would not have acked on arrival (skipped by a seek,
 * filtered out, past the subscription's retention). JetStream does not list a consumer's pending
 * sequences; these are a superset of them (a pending unkeyed message holds no key).
 * @returns null when the span is too long or the stream or records cannot be read (hold every key).
 */
export async function pendingKeys(
  host: TakeoverKeysHost,
  record: SubscriptionRecord,
  progress: ConsumerProgress,
  filter: AttributeFilter | null,
  ackedHere: ReadonlySet<number>,
): Promise<Map<string, Set<number>> | null> {
  const keys = new Map<string, Set<number>>();
  const span = progress.delivered - progress.ackFloor;
  if (record.topicTag === null) return null;
  if (span <= 0) return keys;
  if (span > MAX_TAKEOVER_SCAN) return null;
  const acked = new Set(await host.records.read(record.id, record.generation));
  const messages = await readStream(
    host.jsm,
    host.naming,
    record.topicTag,
    progress.ackFloor + 1,
    { maxMessages: span, maxBytes: Number.MAX_SAFE_INTEGER },
    progress.delivered + 1,
  );
  const skip = new Set(record.skip);
  const now = host.now();
  for (const message of messages) {
    const sequence = message.offset;
    if (message.orderingKey === "" || acked.has(sequence) || ackedHere.has(sequence) || skip.has(sequence)) continue;
    if (filter !== null && !filter(message.attributes)) continue;
    if (now - message.publishTimeMs > record.config.messageRetentionDurationMs) continue;
    const sequences = keys.get(message.orderingKey);
    if (sequences === undefined) keys.set(message.orderingKey, new Set([sequence]));
    else sequences.add(sequence);
  }
  return keys;
}
