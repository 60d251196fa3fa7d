// Start-time checks of the NATS server and account the engine runs on, each failing with the fix named.
import type { JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { Code, StreamgateError } from "../../errors/index.js";

/**
 * Refuses to start when nats-server's `max_payload` is below the largest message streamgate accepts
 * (`maxMessageBytes`, when given): such a publish would be accepted by the API and then fail.
 * @throws StreamgateError FAILED_PRECONDITION (NATS_MAX_PAYLOAD_TOO_SMALL) naming both values and both fixes.
 */
export function checkMaxPayload(connection: NatsConnection, natsUrl: string, maxMessageBytes: number | null): void {
  const maxPayload = connection.info?.max_payload;
  if (maxMessageBytes === null || maxPayload === undefined || maxPayload >= maxMessageBytes) return;
  throw new StreamgateError(
    Code.FAILED_PRECONDITION,
    `nats-server at ${natsUrl} has max_payload ${maxPayload} bytes, lower than streamgate's maximum message size of ` +
      `${maxMessageBytes} bytes: raise max_payload to at least ${maxMessageBytes} in nats-server.conf ` +
      `(e.g. "max_payload: ${Math.ceil(maxMessageBytes / 1_048_576)}MB", at most 64MB) or lower --max-message-bytes ` +
      `to ${maxPayload} or less`,
    {
      reason: "NATS_MAX_PAYLOAD_TOO_SMALL",
      details: { maxPayload: String(maxPayload), maxMessageBytes: String(maxMessageBytes) },
    },
  );
}

/**
 * Reads the account's JetStream limits: an account without JetStream, or whose file storage limit
 * is zero, cannot hold a topic.
 * @throws StreamgateError FAILED_PRECONDITION (NATS_NO_JETSTREAM or NATS_NO_STORAGE) with the fix.
 */
export async function checkAccount(jsm: JetStreamManager, natsUrl: string): Promise<void> {
  let limits: { max_storage: number };
  try {
    limits = (await jsm.getAccountInfo()).limits;
  } catch (error) {
    throw noJetStream(natsUrl, error);
  }
  if (limits.max_storage === 0) {
    throw new StreamgateError(
      Code.FAILED_PRECONDITION,
      `the NATS account at ${natsUrl} has JetStream but no file storage (its max_file limit is 0): ` +
        "topics are file-backed streams; give the account file storage in nats-server.conf " +
        "(e.g. jetstream { max_file: 10G } in the account's block)",
      { reason: "NATS_NO_STORAGE" },
    );
  }
}

/** The error for a server or account without JetStream (a failed JetStream API call at start). */
export function noJetStream(natsUrl: string, cause: unknown): StreamgateError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new StreamgateError(
    Code.FAILED_PRECONDITION,
    `NATS at ${natsUrl} offers no JetStream to this connection (${detail}): start nats-server with -js ` +
      "(or jetstream {} in nats-server.conf) and, with accounts, enable jetstream in this account's block",
    { reason: "NATS_NO_JETSTREAM", cause },
  );
}

/**
 * Maps a publish failure caused by the account's storage limits to RESOURCE_EXHAUSTED with the fix;
 * null for any other failure.
 */
export function storageExhausted(topic: string, cause: unknown): StreamgateError | null {
  const detail = cause instanceof Error ? cause.message : String(cause);
  if (!/resource limits exceeded|insufficient (storage )?resources/i.test(detail)) return null;
  return new StreamgateError(
    Code.RESOURCE_EXHAUSTED,
    `publish to ${topic} failed: the NATS account's JetStream storage is full (${detail}); raise the account's ` +
      "max_file (or the server's jetstream max_file_store) or shorten topic retention",
    { reason: "NATS_STORAGE_FULL", cause },
  );
}
