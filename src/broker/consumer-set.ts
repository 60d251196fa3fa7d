// The consumers of one subscription on this process (streams and waiting pulls) and the round-robin hand-out both engines use.
import type { StreamgateError } from "../errors/index.js";
import { DispatchStream } from "./delivery-stream.js";
import { PullWaiter } from "./pull-waiter.js";
import type { Consumer, TrackedMessage } from "./tracked-message.js";

/**
 * The open streams and waiting unary pulls of a subscription. {@link distribute} hands leases out
 * round-robin (each round starts one consumer later), so streams with room share the messages.
 */
export class ConsumerSet {
  private consumers: Consumer[] = [];
  private roundRobin = 0;

  get size(): number {
    return this.consumers.length;
  }

  /** The consumers, in arrival order (a copy). */
  list(): Consumer[] {
    return [...this.consumers];
  }

  add(consumer: Consumer): void {
    this.consumers.push(consumer);
  }

  remove(consumer: Consumer): void {
    const index = this.consumers.indexOf(consumer);
    if (index >= 0) this.consumers.splice(index, 1);
  }

  /**
   * Offers each consumer in turn what `take` leases it, round after round, until a whole round hands
   * out nothing. A waiting pull leaves the set once it got messages (a unary pull answers once).
   */
  distribute(take: (consumer: Consumer) => TrackedMessage[]): void {
    let progress = true;
    while (progress && this.consumers.length > 0) {
      progress = false;
      const start = this.roundRobin++ % this.consumers.length;
      const round = [...this.consumers.slice(start), ...this.consumers.slice(0, start)];
      for (const consumer of round) {
        if (!this.consumers.includes(consumer)) continue;
        const batch = take(consumer);
        if (batch.length === 0) continue;
        progress = true;
        consumer.accept(batch);
        if (consumer instanceof PullWaiter) this.remove(consumer);
      }
    }
  }

  /** Empties the set: streams end (with `reason` when given), waiting pulls answer with what they hold. */
  endAll(reason?: StreamgateError): void {
    const consumers = this.consumers;
    this.consumers = [];
    for (const consumer of consumers) {
      if (consumer instanceof DispatchStream) consumer.end(reason);
      else if (consumer instanceof PullWaiter) consumer.accept(consumer.taken ?? []);
    }
  }
}
