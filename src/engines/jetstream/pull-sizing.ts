// How much a worker asks JetStream for, and for how long: pull sizes from its consumers' flow control.
import { DispatchStream } from "../../broker/delivery-stream.js";
import { PullWaiter } from "../../broker/pull-waiter.js";
import type { Consumer } from "../../broker/tracked-message.js";

/**
 * Largest batch asked of JetStream in one pull request: a StreamingPull's default
 * max_outstanding_messages (1,000) is then one request, not four.
 */
export const MAX_REQUEST_BATCH = 1_024;
/** Default upper bound of messages tracked (ready, held, leased) per subscription on one instance (the engine's maxTrackedMessages). */
export const MAX_TRACKED = 10_000;
/** Assumed message size (bytes) before any has arrived, when sizing pulls for byte-limited consumers. */
export const INITIAL_AVERAGE_SIZE = 1_024;
/** How long an idle long-poll pull request waits on the server when a stream is open. */
const STREAM_LONG_POLL_MS = 5_000;

/** A unary pull that knows when it gives up (long polls on JetStream last no longer). */
export class TimedPullWaiter extends PullWaiter {
  constructor(
    maxMessages: number,
    leaseMs: number,
    readonly deadlineMs: number,
  ) {
    super(maxMessages, leaseMs);
  }
}

/**
 * Messages the consumers could take now. A byte-limited one counts as room for its free bytes
 * divided by `averageSize` (at least one message while it has room or is idle).
 */
export function consumerDemand(consumers: readonly Consumer[], averageSize: number): number {
  let demand = 0;
  for (const consumer of consumers) {
    const capacity = consumer.capacity();
    if (capacity.messages <= 0) continue;
    if (capacity.bytes === Number.POSITIVE_INFINITY) demand += capacity.messages;
    else if (capacity.bytes > 0 || capacity.idle) {
      // Byte-limited: ask for as many messages as fit at the average size seen so far.
      const fit = Math.floor(capacity.bytes / averageSize);
      demand += Math.max(1, Math.min(capacity.messages, fit));
    }
  }
  return demand;
}

/** How long a long-poll request may wait: until the latest waiting pull gives up, or a while for streams. */
export function longPollMs(consumers: readonly Consumer[], now: number): number {
  let wait = 0;
  for (const consumer of consumers) {
    if (consumer instanceof DispatchStream) return STREAM_LONG_POLL_MS;
    // End a little before the pull gives up, so a message never lands after its puller left.
    if (consumer instanceof TimedPullWaiter) wait = Math.max(wait, consumer.deadlineMs - now - 50);
  }
  return Math.min(wait, STREAM_LONG_POLL_MS);
}

/**
 * The `max_bytes` of a pull request for these consumers, given `readyBytes` already waiting here:
 * their free bytes when every consumer with room is byte-limited, else null (no byte limit). An
 * idle consumer may take one message larger than its room, so it leaves the request unlimited.
 * JetStream then stops a batch at the bytes the consumers can take, whatever the messages' sizes.
 */
export function pullMaxBytes(consumers: readonly Consumer[], readyBytes: number): number | null {
  let room = 0;
  for (const consumer of consumers) {
    const capacity = consumer.capacity();
    if (capacity.messages <= 0) continue;
    if (capacity.bytes === Number.POSITIVE_INFINITY || capacity.idle) return null;
    room += capacity.bytes;
  }
  return Math.max(0, room - readyBytes);
}
