// Decodes the documented message JSON (and gap JSON) into client types; base64 without Buffer so it runs in browsers.
import { StreamClientError } from "./stream-client-error.js";
import type { StreamGap, StreamMessage } from "./types.js";

/** The message JSON every transport sends (docs/protocol.md). */
export interface MessageJson {
  offset: string;
  messageId: string;
  publishTime: string;
  attributes?: Record<string, string>;
  orderingKey?: string;
  data?: string;
}

export function decodeMessage(json: MessageJson): StreamMessage {
  const offset = Number(json.offset);
  if (!Number.isSafeInteger(offset) || offset < 1) {
    throw new StreamClientError("INTERNAL", `server sent a message with a bad offset ${JSON.stringify(json.offset)}`);
  }
  return {
    offset,
    messageId: json.messageId,
    publishTime: new Date(json.publishTime),
    attributes: json.attributes ?? {},
    orderingKey: json.orderingKey ?? "",
    data: base64ToBytes(json.data ?? ""),
  };
}

export function decodeGap(json: {
  fromOffset: string | number;
  firstAvailable: string | number;
  lost: string | number;
}): StreamGap {
  return { fromOffset: Number(json.fromOffset), firstAvailable: Number(json.firstAvailable), lost: Number(json.lost) };
}

export function base64ToBytes(base64: string): Uint8Array {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let index = 0; index < binary.length; index++) bytes[index] = binary.charCodeAt(index);
  return bytes;
}

const CHUNK = 0x8000;

export function bytesToBase64(bytes: Uint8Array): string {
  let binary = "";
  // Chunked: String.fromCharCode with a huge spread overflows the call stack.
  for (let start = 0; start < bytes.length; start += CHUNK) {
    binary += String.fromCharCode(...bytes.subarray(start, start + CHUNK));
  }
  return btoa(binary);
}
