// The one JSON form of a log message, shared by SSE, WebSocket, long poll, gRPC Events (JSON) and the dashboard.
import type { StoredMessage } from "../broker/types.js";

/**
 * A message as JSON, the same on every transport (DESIGN.md §2). `offset` is a decimal string (it
 * may exceed 2^53 one day; Pub/Sub REST also sends int64 as strings); `data` is base64 as in Pub/Sub REST.
 */
export interface MessageJson {
  offset: string;
  messageId: string;
  /** RFC 3339, UTC, millisecond precision. */
  publishTime: string;
  attributes: Record<string, string>;
  orderingKey: string;
  data: string;
}

/** Builds the JSON object of a message. */
export function messageToJson(message: StoredMessage): MessageJson {
  return {
    offset: String(message.offset),
    messageId: message.messageId,
    publishTime: new Date(message.publishTimeMs).toISOString(),
    attributes: message.attributes,
    orderingKey: message.orderingKey,
    data: Buffer.from(message.data.buffer, message.data.byteOffset, message.data.byteLength).toString("base64"),
  };
}

// The hub hands the same StoredMessage object to every subscriber of a topic, so fan-out to N clients
// serializes each message once, not N times.
const encoded = new WeakMap<StoredMessage, string>();

/** The message's JSON text, memoized per message object (fan-out encodes once). */
export function encodeMessageJson(message: StoredMessage): string {
  let text = encoded.get(message);
  if (text === undefined) {
    text = JSON.stringify(messageToJson(message));
    encoded.set(message, text);
  }
  return text;
}
