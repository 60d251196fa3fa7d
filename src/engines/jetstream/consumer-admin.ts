// A subscription's durable consumer: creation, deletion, its ack state (for seeks and snapshots) and its stats.
import { AckPolicy, DeliverPolicy, type JetStreamManager, ReplayPolicy } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { compileFilter } from "../../broker/filter.js";
import type { SubscriptionStats } from "../engine.js";
import type { SubscriptionRecord } from "./catalog.js";
import type { ConsumerProgress } from "./ordering-lease.js";
import { messageAtOrAfter, type Naming, streamStats } from "./topic-log.js";

/** Most stream messages scanned to count a filtered backlog. */
const MAX_BACKLOG_SCAN = 10_000;

/**
 * Creates the record's consumer generation, delivering from `startSequence`. Redelivery limits,
 * dead letters and outstanding caps are the worker's: JetStream's max_deliver and max_ack_pending
 * are off.
 */
export async function addConsumer(
  jsm: JetStreamManager,
  naming: Naming,
  record: SubscriptionRecord,
  startSequence: number,
): Promise<void> {
  await jsm.consumers.add(naming.stream(record.topicTag!), {
    durable_name: naming.consumer(record.id, record.generation),
    ack_policy: AckPolicy.Explicit,
    ack_wait: record.config.ackDeadlineSeconds * 1_000_000_000,
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: Math.max(1, startSequence),
    replay_policy: ReplayPolicy.Instant,
    max_deliver: -1,
    max_ack_pending: -1,
  });
}

/** Deletes the record's consumer generation; a missing one is fine. */
export async function deleteConsumer(jsm: JetStreamManager, naming: Naming, record: SubscriptionRecord): Promise<void> {
  if (record.topicTag === null) return;
  await jsm.consumers
    .delete(naming.stream(record.topicTag), naming.consumer(record.id, record.generation))
    .catch(() => false);
}

/** Where a snapshot or seek restarts: the first unacked sequence, and sequences after it known to be acked. */
export async function consumerAckState(
  jsm: JetStreamManager,
  naming: Naming,
  record: SubscriptionRecord,
  acked: Iterable<number>,
): Promise<{ start: number; skip: number[] }> {
  const info = await jsm.consumers.info(naming.stream(record.topicTag!), naming.consumer(record.id, record.generation));
  const start = Math.max(info.ack_floor.stream_seq + 1, info.config.opt_start_seq ?? 1);
  const skip = [...new Set([...record.skip, ...acked])].filter((sequence) => sequence >= start);
  return { start, skip: skip.sort((a, b) => a - b) };
}

/**
 * Backlog, outstanding and oldest unacked age from the consumer's info, adjusted for what the
 * instances hold without a client lease (`unleased`, summed over every instance that answered).
 */
export async function consumerStats(
  jsm: JetStreamManager,
  naming: Naming,
  record: SubscriptionRecord,
  held: { unleased: number; deadLettered: number },
): Promise<SubscriptionStats> {
  const empty = { backlog: 0, oldestUnackedAgeMs: 0, deadLettered: held.deadLettered, outstanding: 0 };
  if (record.topicTag === null || record.config.detached) return empty;
  const info = await jsm.consumers
    .info(naming.stream(record.topicTag), naming.consumer(record.id, record.generation))
    .catch(() => null);
  if (info === null) return empty;
  let backlog = info.num_pending + info.num_ack_pending;
  if (record.config.filter.trim() !== "" || record.skip.length > 0) {
    backlog = info.num_ack_pending + (await countUndelivered(jsm, naming, record, info.delivered.stream_seq + 1));
  }
  let oldestUnackedAgeMs = 0;
  if (backlog > 0) {
    const first = Math.max(info.ack_floor.stream_seq + 1, info.config.opt_start_seq ?? 1);
    const message = await messageAtOrAfter(jsm, naming, record.topicTag, first);
    if (message !== null) oldestUnackedAgeMs = Math.max(0, Date.now() - message.publishTimeMs);
  }
  return {
    backlog,
    oldestUnackedAgeMs,
    deadLettered: held.deadLettered,
    outstanding: Math.max(0, info.num_ack_pending - held.unleased),
  };
}

/** Counts undelivered messages from `from` that the subscription would deliver (filter, skip list). */
async function countUndelivered(
  jsm: JetStreamManager,
  naming: Naming,
  record: SubscriptionRecord,
  from: number,
): Promise<number> {
  const { nextOffset } = await streamStats(jsm, naming, record.topicTag!);
  const filter = record.config.filter.trim();
  const accept = filter === "" ? null : compileFilter(filter);
  const skip = new Set(record.skip);
  let count = 0;
  let scanned = 0;
  for (let sequence = from; sequence < nextOffset && scanned < MAX_BACKLOG_SCAN; scanned++) {
    const message = await messageAtOrAfter(jsm, naming, record.topicTag!, sequence);
    if (message === null) break;
    if (!skip.has(message.offset) && (accept === null || accept(message.attributes))) count++;
    sequence = message.offset + 1;
  }
  return count;
}

/**
 * A consumer's ack floor, last delivered stream sequence and pending count, from a raw
 * `CONSUMER.INFO` request (null when it fails or times out: callers treat that as unknown).
 */
export async function consumerProgress(
  connection: NatsConnection,
  stream: string,
  consumer: string,
): Promise<ConsumerProgress | null> {
  try {
    const answer = await connection.request(`$JS.API.CONSUMER.INFO.${stream}.${consumer}`, "", { timeout: 2_000 });
    const info = answer.json<{
      ack_floor?: { stream_seq?: number };
      delivered?: { stream_seq?: number };
      num_ack_pending?: number;
    }>();
    return {
      ackFloor: info.ack_floor?.stream_seq ?? 0,
      delivered: info.delivered?.stream_seq ?? 0,
      ackPending: info.num_ack_pending ?? 0,
    };
  } catch {
    return null;
  }
}
