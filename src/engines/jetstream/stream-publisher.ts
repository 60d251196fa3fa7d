// Publishing a batch to a topic's stream: every message sent back to back, PubAcks collected on one inbox.
import type { NatsConnection } from "@nats-io/nats-core";
import type { MessageInput, PublishedRef } from "../../broker/types.js";
import { ReplyInbox } from "./reply-inbox.js";
import { encodeHeaders } from "./topic-log.js";

/** How long a publish waits for JetStream's PubAck (the @nats-io client's default). */
const PUBLISH_TIMEOUT_MS = 5_000;

/** A PubAck, or JetStream's refusal. */
interface PubAckBody {
  stream?: string;
  seq?: number;
  error?: { code?: number; description?: string };
}

/**
 * Publishes to JetStream streams and resolves once every message is stored. Equivalent to one
 * `JetStreamClient.publish()` per message (messages without attributes or ordering key go without
 * headers), but a batch costs one promise rather than a request object, timer and Error each.
 */
export class StreamPublisher {
  private readonly inbox: ReplyInbox;

  constructor(connection: NatsConnection) {
    this.inbox = new ReplyInbox(connection, PUBLISH_TIMEOUT_MS);
  }

  /**
   * Publishes `messages` in order on `subject` (sent back to back on one connection, so the stream
   * assigns sequences in batch order) and resolves with each one's sequence.
   * @throws Error naming JetStream's refusal (e.g. "resource limits exceeded"), a missing stream, or no PubAck in time.
   */
  publish(subject: string, tag: string, messages: readonly MessageInput[]): Promise<PublishedRef[]> {
    return new Promise((resolve, reject) => {
      const refs = new Array<PublishedRef>(messages.length);
      let outstanding = messages.length;
      let failed = false;
      messages.forEach((message, index) => {
        this.inbox.send(
          subject,
          message.data,
          (answer) => {
            if (failed) return;
            // A 503 "no responders" status has no body: pubAckSequence names the missing stream.
            const sequence = answer === null ? new Error(noAnswer(subject)) : pubAckSequence(answer.data, subject);
            if (sequence instanceof Error) {
              failed = true;
              reject(sequence);
              return;
            }
            refs[index] = { offset: sequence, messageId: `${tag}-${sequence}` };
            if (--outstanding === 0) resolve(refs);
          },
          encodeHeaders(message),
        );
      });
      if (messages.length === 0) resolve([]);
    });
  }

  /** Lets the PubAck subscription go once no publish is in flight (a later publish subscribes again). */
  close(): void {
    this.inbox.close();
  }
}

function noAnswer(subject: string): string {
  return `no PubAck from JetStream for ${subject} within ${PUBLISH_TIMEOUT_MS} ms`;
}

/** The stored sequence of a PubAck, or JetStream's error. */
function pubAckSequence(data: Uint8Array, subject: string): number | Error {
  if (data.length === 0) return new Error(`no JetStream stream listens on ${subject}`);
  let body: PubAckBody;
  try {
    body = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8")) as PubAckBody;
  } catch {
    return new Error(`JetStream answered a publish to ${subject} with something other than a PubAck`);
  }
  if (body.error !== undefined) {
    return new Error(body.error.description ?? `JetStream refused a publish to ${subject} (code ${body.error.code})`);
  }
  if (typeof body.seq !== "number" || !body.stream) {
    return new Error(`JetStream answered a publish to ${subject} without a sequence`);
  }
  return body.seq;
}
