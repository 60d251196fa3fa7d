// Group commit: publish calls arriving in the same event-loop turn share one SQLite transaction.

import type { MessageInput, PublishedRef } from "../../broker/types.js";
import { StreamgateError } from "../../errors/index.js";

/** One queued publish call. */
export interface PublishRequest<Target> {
  target: Target;
  messages: MessageInput[];
  resolve(refs: PublishedRef[]): void;
  reject(error: StreamgateError): void;
}

/**
 * Queues publish calls and commits them together on the next `setImmediate`, i.e. after every
 * I/O callback of the current turn has had its chance to publish: many concurrent publishers
 * share one transaction (and, with syncEveryCommit, one fsync).
 */
export class PublishBatcher<Target> {
  private queue: PublishRequest<Target>[] = [];
  private scheduled: NodeJS.Immediate | null = null;

  /** @param commit - stores every request in one transaction, then settles each. */
  constructor(private readonly commit: (requests: PublishRequest<Target>[]) => void) {}

  enqueue(target: Target, messages: MessageInput[]): Promise<PublishedRef[]> {
    return new Promise<PublishedRef[]>((resolve, reject) => {
      this.queue.push({ target, messages, resolve, reject });
      this.scheduled ??= setImmediate(() => this.flush());
    });
  }

  /** Commits everything queued now (also called by close, so no publish is left pending). */
  flush(): void {
    if (this.scheduled !== null) clearImmediate(this.scheduled);
    this.scheduled = null;
    const requests = this.queue;
    this.queue = [];
    if (requests.length === 0) return;
    try {
      this.commit(requests);
    } catch (error) {
      const failure = StreamgateError.from(error);
      for (const request of requests) request.reject(failure);
    }
  }
}
