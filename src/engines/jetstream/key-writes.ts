// Writes to a KV bucket's keys as raw JetStream publishes on one reply inbox: the lease book's per-ack writes without a client request each.
import { type NatsConnection, headers as natsHeaders } from "@nats-io/nats-core";
import { ReplyInbox } from "./reply-inbox.js";

/** How long a write waits for its PubAck (the @nats-io client's default). */
const WRITE_TIMEOUT_MS = 5_000;
/** JetStream's compare-and-set header: the subject's last sequence must be this (0: no message at all). */
const EXPECTED_LAST_SUBJECT_SEQUENCE = "Nats-Expected-Last-Subject-Sequence";
/** JetStream's error code for a failed compare and set ("wrong last sequence"). */
const WRONG_LAST_SEQUENCE = 10071;

interface PubAckBody {
  seq?: number;
  error?: { code?: number; err_code?: number; description?: string };
}

/**
 * The two writes an exactly-once ack makes to the lease book, as the KV client would send them
 * (`$KV.<bucket>.<key>` publishes, compare and set by JetStream's expected-sequence header) but
 * answered on one inbox: a batch of acks is one socket write each way, and no request costs a
 * timer and an Error. Reads and the contended rounds stay with the KV client.
 */
export class KeyWrites {
  private readonly inbox: ReplyInbox;
  private readonly prefix: string;

  constructor(connection: NatsConnection, bucket: string) {
    this.inbox = new ReplyInbox(connection, WRITE_TIMEOUT_MS);
    this.prefix = `$KV.${bucket}.`;
  }

  /**
   * Writes `value` if the key has never been written (no value, no delete marker).
   * @returns false when the key has a message of any kind (the caller reads it and decides).
   * @throws Error on any other failure (no answer in time, no bucket).
   */
  async createIfAbsent(key: string, value: string): Promise<boolean> {
    const expectNothing = natsHeaders();
    expectNothing.set(EXPECTED_LAST_SUBJECT_SEQUENCE, "0");
    const answer = await this.write(key, value, expectNothing);
    if (answer.error?.err_code === WRONG_LAST_SEQUENCE) return false;
    if (answer.error !== undefined) throw new Error(answer.error.description ?? `write of ${key} refused`);
    return true;
  }

  /** Writes `value` whatever the key holds. @throws Error when JetStream did not store it. */
  async put(key: string, value: string): Promise<void> {
    const answer = await this.write(key, value);
    if (answer.error !== undefined) throw new Error(answer.error.description ?? `write of ${key} refused`);
  }

  private async write(key: string, value: string, headers?: ReturnType<typeof natsHeaders>): Promise<PubAckBody> {
    const subject = `${this.prefix}${key}`;
    const message = await this.inbox.request(subject, value, headers);
    if (message === null) throw new Error(`no PubAck for ${subject} within ${WRITE_TIMEOUT_MS} ms`);
    if (message.data.length === 0) throw new Error(`no JetStream stream listens on ${subject}`);
    return message.json<PubAckBody>();
  }
}
