// The JetStream pull-consumer wire protocol one worker speaks: pull requests, and acks/naks/progress confirmed by the server.
import { createInbox, type Msg, type NatsConnection } from "@nats-io/nats-core";
import { NatsConnectionImpl } from "@nats-io/nats-core/internal";
import { isNoResponders, ReplyInbox } from "./reply-inbox.js";

/** Timeout of one ack/nak/progress round trip. */
const ACK_TIMEOUT_MS = 2_000;
/** How long after a pull request's own expiry the client gives up on its terminating status. */
const REQUEST_GRACE_MS = 5_000;

/** JetStream's ack-protocol bodies. */
export const AckBody = {
  /** Acknowledge: the message is done. */
  ack: "+ACK",
  /** Negative ack: redeliver now. */
  nak: "-NAK",
  /** Work in progress: restart the ack_wait timer. */
  progress: "+WPI",
} as const;

/** "+ACK" as bytes, encoded once (the client would encode a string body per publish). */
let ackBytes: Uint8Array | undefined;
function encodedAck(): Uint8Array {
  ackBytes ??= new TextEncoder().encode(AckBody.ack);
  return ackBytes;
}

/**
 * Writes "+ACK" publishes to the first `count` of `replies` as one protocol buffer, queued on the
 * connection's outbound buffer like `publish()` queues each (so anything published after goes out
 * after them). `publish()` costs per message a subject check (a regex), a protocol line encoded on
 * its own and three buffer entries: a tenth of a consumed message's CPU at 500 acks a call. Subjects
 * here are `$JS.ACK` replies the server sent, so they need no check. False when the connection is
 * not the client's own implementation, or is closed or draining (the caller then publishes each,
 * which reports those states as publish() does).
 */
export function writeAcks(connection: NatsConnection, replies: readonly string[], count: number): boolean {
  if (!(connection instanceof NatsConnectionImpl) || connection.isClosed() || connection.isDraining()) return false;
  if (count === 0) return true;
  let text = "";
  for (let index = 0; index < count; index++) text += `PUB ${replies[index]!} 4\r\n+ACK\r\n`;
  connection.protocol.sendCommand(Buffer.from(text, "utf8"));
  return true;
}

/** A negative ack that asks JetStream to wait `delayMs` before redelivering. */
export function nakWithDelay(delayMs: number): string {
  return delayMs > 0 ? `-NAK ${JSON.stringify({ delay: delayMs * 1_000_000 })}` : AckBody.nak;
}

/**
 * Raw pull requests (`$JS.API.CONSUMER.MSG.NEXT`) rather than the client library's fetch: a
 * no-wait request returns at once with what is available (Pub/Sub's return_immediately), and a
 * long poll can be sized to exactly the room the local consumers have.
 */
export class ConsumerChannel {
  private readonly openRequests = new Set<() => void>();
  /** Acks, naks and progress reports awaiting JetStream's confirmation. */
  private readonly confirmations: ReplyInbox;

  constructor(private readonly connection: NatsConnection) {
    this.confirmations = new ReplyInbox(connection, ACK_TIMEOUT_MS);
  }

  /**
   * One pull request for `batch` messages of `consumer` on `stream`, waiting up to `expiresMs`
   * (null = only what is available now) and stopping at `maxBytes` of messages when given (JetStream
   * ends the request with a 409 status instead of sending a message that would pass it). Calls
   * `onMessage` per delivery; resolves with how many arrived once the server ends the request (or
   * {@link cancelRequests} does).
   */
  pull(
    stream: string,
    consumer: string,
    batch: number,
    expiresMs: number | null,
    onMessage: (delivery: Msg) => void,
    maxBytes: number | null = null,
  ): Promise<number> {
    const body: { batch: number; no_wait?: boolean; expires?: number; max_bytes?: number } =
      expiresMs === null ? { batch, no_wait: true } : { batch, expires: Math.round(expiresMs * 1_000_000) };
    if (maxBytes !== null) body.max_bytes = Math.max(1, Math.floor(maxBytes));
    return new Promise<number>((resolve) => {
      let count = 0;
      const finish = () => {
        subscription.unsubscribe();
        clearTimeout(guard);
        this.openRequests.delete(finish);
        resolve(count);
      };
      const subscription = this.connection.subscribe(createInbox(), {
        callback: (error, message) => {
          if (error !== null) return finish();
          if (message.reply?.startsWith("$JS.ACK.")) {
            count++;
            onMessage(message);
            if (count >= batch) finish();
            return;
          }
          finish(); // a status: 404 no messages, 408 expired, 409 consumer deleted or limits
        },
      });
      const guard = setTimeout(finish, (expiresMs ?? 0) + REQUEST_GRACE_MS);
      this.openRequests.add(finish);
      this.connection.publish(`$JS.API.CONSUMER.MSG.NEXT.${stream}.${consumer}`, JSON.stringify(body), {
        reply: subscription.getSubject(),
      });
    });
  }

  /**
   * Sends an ack-protocol body to a delivery's reply subject; resolves true once JetStream confirmed
   * it, false when it did not in time (or nobody answers: the consumer is gone).
   */
  send(reply: string, body: string): Promise<boolean> {
    return new Promise((resolve) =>
      this.confirmations.send(reply, body, (answer) => resolve(answer !== null && !isNoResponders(answer))),
    );
  }

  /**
   * Acks every delivery of `replies` (one consumer's) with one confirmation for all: the first ones
   * go out without a reply subject, back to back, and only the last asks JetStream to confirm. A
   * consumer applies the acks of one connection in the order they arrive, and confirms an ack once
   * it has applied it, so that one answer means every ack before it is applied too: the guarantee
   * of a confirmed ack each, for one reply message per call instead of one per ack. Resolves false
   * when the confirmation did not come in time (the caller reports every ack of the call as failed).
   */
  ackAll(replies: readonly string[]): Promise<boolean> {
    if (replies.length === 0) return Promise.resolve(true);
    if (!writeAcks(this.connection, replies, replies.length - 1)) {
      const body = encodedAck();
      for (let index = 0; index < replies.length - 1; index++) this.connection.publish(replies[index]!, body);
    }
    return this.send(replies[replies.length - 1]!, AckBody.ack);
  }

  /** Waits until every body sent so far is confirmed (or timed out). */
  settle(): Promise<void> {
    return new Promise((resolve) => this.confirmations.whenIdle(resolve));
  }

  /** Ends pull requests and lets the confirmation inbox go once nothing is in flight (later sends still work). */
  close(): void {
    this.cancelRequests();
    this.confirmations.close();
  }

  /** Ends every open pull request now; messages the server still sends them expire after ack_wait. */
  cancelRequests(): void {
    for (const finish of [...this.openRequests]) finish();
  }
}
