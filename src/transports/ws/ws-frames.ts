// The WebSocket protocol's JSON frames: a pure codec (no sockets), client frames parsed strictly.
import { expandTopicName } from "../../broker/names.js";
import type { MessageInput, StoredMessage } from "../../broker/types.js";
import { codeName, errors, httpStatusByCode, type StreamgateError } from "../../errors/index.js";
import { encodeMessageJson, type FeedEvent } from "../../streams/index.js";

/** What a client may send. */
export type ClientFrame =
  | { type: "subscribe"; id: string; topic: string; from: string; filter: string }
  | { type: "unsubscribe"; id: string }
  /** `traceparent`/`tracestate`: optional W3C trace context of this publish ("" when absent); it overrides the upgrade request's. */
  | { type: "publish"; ref: string; topic: string; messages: MessageInput[]; traceparent: string; tracestate: string }
  | { type: "ping" };

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2,3})?$/;
const MAX_ID_CHARS = 128;

/**
 * Parses one text frame.
 * @throws StreamgateError INVALID_ARGUMENT naming the field, for malformed JSON or a bad frame.
 */
export function parseClientFrame(text: string): ClientFrame {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw errors.invalidArgument("frame", "is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw errors.invalidArgument("frame", "must be a JSON object");
  }
  const frame = value as Record<string, unknown>;
  switch (frame.type) {
    case "subscribe":
      return {
        type: "subscribe",
        id: identifier(frame.id, "id"),
        topic: expandTopicName(requiredString(frame.topic, "topic")),
        from: optionalString(frame.from, "from"),
        filter: optionalString(frame.filter, "filter"),
      };
    case "unsubscribe":
      return { type: "unsubscribe", id: identifier(frame.id, "id") };
    case "publish": {
      if (!Array.isArray(frame.messages) || frame.messages.length === 0) {
        throw errors.invalidArgument("messages", "must be a non-empty array");
      }
      return {
        type: "publish",
        ref: frame.ref === undefined ? "" : identifier(frame.ref, "ref"),
        topic: expandTopicName(requiredString(frame.topic, "topic")),
        messages: frame.messages.map((message: unknown, index) => messageInput(message, `messages[${index}]`)),
        traceparent: optionalString(frame.traceparent, "traceparent"),
        tracestate: optionalString(frame.tracestate, "tracestate"),
      };
    }
    case "ping":
      return { type: "ping" };
    default:
      throw errors.invalidArgument(
        "type",
        `must be subscribe, unsubscribe, publish or ping, got ${JSON.stringify(frame.type)}`,
      );
  }
}

/** The `ref`/`id` an error frame should name, recovered from a frame that failed to parse fully. */
export function frameCorrelation(text: string): { id?: string; ref?: string } {
  try {
    const value = JSON.parse(text) as Record<string, unknown>;
    const out: { id?: string; ref?: string } = {};
    if (typeof value.id === "string" && value.id.length <= MAX_ID_CHARS) out.id = value.id;
    if (typeof value.ref === "string" && value.ref.length <= MAX_ID_CHARS) out.ref = value.ref;
    return out;
  } catch {
    return {};
  }
}

export function errorFrame(error: StreamgateError, correlation: { id?: string; ref?: string }): string {
  return JSON.stringify({
    type: "error",
    ...correlation,
    code: httpStatusByCode[error.code],
    status: codeName(error.code),
    reason: error.reason,
    message: error.message,
  });
}

/**
 * The part of a subscription's message frames that only depends on its id, `{"type":"message","id":…,"message":`,
 * encoded once per subscription. A frame is this prefix followed by {@link messageFrameTail}.
 */
export function messageFramePrefix(id: string): Buffer {
  return Buffer.from(`{"type":"message","id":${JSON.stringify(id)},"message":`);
}

// The hub hands every subscriber of a topic the same StoredMessage object: the bytes after the prefix are
// encoded once per message for all connections (JSON once, UTF-8 once), then only copied.
const tails = new WeakMap<StoredMessage, Buffer>();

/** The rest of a message frame after {@link messageFramePrefix}: the message JSON and the closing brace, memoized. */
export function messageFrameTail(message: StoredMessage): Buffer {
  let tail = tails.get(message);
  if (tail === undefined) {
    tail = Buffer.from(`${encodeMessageJson(message)}}`);
    tails.set(message, tail);
  }
  return tail;
}

/** Bytes of an unmasked server frame header (FIN + opcode, then 7, 7+16 or 7+64 bits of length). */
function headerBytes(payloadBytes: number): number {
  return payloadBytes < 126 ? 2 : payloadBytes < 65_536 ? 4 : 10;
}

/** Writes a final, unmasked text frame header for `payloadBytes` at `at`; returns the offset after it. */
function writeTextHeader(target: Buffer, at: number, payloadBytes: number): number {
  target[at] = 0x81;
  if (payloadBytes < 126) {
    target[at + 1] = payloadBytes;
    return at + 2;
  }
  if (payloadBytes < 65_536) {
    target[at + 1] = 126;
    target.writeUInt16BE(payloadBytes, at + 2);
    return at + 4;
  }
  target[at + 1] = 127;
  target.writeUInt32BE(Math.floor(payloadBytes / 2 ** 32), at + 2);
  target.writeUInt32BE(payloadBytes >>> 0, at + 6);
  return at + 10;
}

/**
 * One page of a subscription's events as complete WebSocket text frames (RFC 6455 §5.2, server to client:
 * unmasked, unfragmented) in one buffer, for one socket write. Message frames are `prefix` + the message's
 * shared tail, so the message is never re-encoded per client; gaps are encoded here (rare); heartbeats are
 * skipped (WebSocket pings keep the connection alive). Null when nothing is to be sent.
 */
export function encodeEventPage(id: string, prefix: Buffer, events: readonly FeedEvent[]): Buffer | null {
  const parts: Buffer[] = [];
  let total = 0;
  for (const event of events) {
    if (event.kind === "message") {
      const tail = messageFrameTail(event.message);
      parts.push(tail);
      const payload = prefix.length + tail.length;
      total += headerBytes(payload) + payload;
    } else if (event.kind === "gap") {
      const gap = Buffer.from(gapFrame(id, event));
      parts.push(gap);
      total += headerBytes(gap.length) + gap.length;
    }
  }
  if (parts.length === 0) return null;
  const page = Buffer.allocUnsafe(total);
  let at = 0;
  let part = 0;
  for (const event of events) {
    if (event.kind === "message") {
      const tail = parts[part++]!;
      at = writeTextHeader(page, at, prefix.length + tail.length);
      at += prefix.copy(page, at);
      at += tail.copy(page, at);
    } else if (event.kind === "gap") {
      const gap = parts[part++]!;
      at = writeTextHeader(page, at, gap.length);
      at += gap.copy(page, at);
    }
  }
  return page;
}

export function gapFrame(id: string, gap: { fromOffset: number; firstAvailable: number; lost: number }): string {
  return JSON.stringify({
    type: "gap",
    id,
    fromOffset: String(gap.fromOffset),
    firstAvailable: String(gap.firstAvailable),
    lost: gap.lost,
  });
}

function messageInput(value: unknown, field: string): MessageInput {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw errors.invalidArgument(field, "must be an object");
  }
  const message = value as Record<string, unknown>;
  const data = optionalString(message.data, `${field}.data`);
  if (!BASE64.test(data)) throw errors.invalidArgument(`${field}.data`, "must be base64");
  const attributes = message.attributes ?? {};
  if (typeof attributes !== "object" || attributes === null || Array.isArray(attributes)) {
    throw errors.invalidArgument(`${field}.attributes`, "must be an object of strings");
  }
  for (const [key, attribute] of Object.entries(attributes)) {
    if (typeof attribute !== "string") throw errors.invalidArgument(`${field}.attributes.${key}`, "must be a string");
  }
  return {
    data: new Uint8Array(Buffer.from(data, "base64")),
    attributes: attributes as Record<string, string>,
    orderingKey: optionalString(message.orderingKey, `${field}.orderingKey`),
  };
}

function identifier(value: unknown, field: string): string {
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_ID_CHARS) {
    throw errors.invalidArgument(field, `must be a string of 1 to ${MAX_ID_CHARS} characters`);
  }
  return value;
}

function requiredString(value: unknown, field: string): string {
  if (typeof value !== "string" || value.length === 0)
    throw errors.invalidArgument(field, "must be a non-empty string");
  return value;
}

function optionalString(value: unknown, field: string): string {
  if (value === undefined || value === null) return "";
  if (typeof value !== "string") throw errors.invalidArgument(field, "must be a string");
  return value;
}
