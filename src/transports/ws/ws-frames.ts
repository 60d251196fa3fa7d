// The WebSocket protocol's JSON frames: a pure codec (no sockets), client frames parsed strictly.
import { expandTopicName } from "../../broker/names.js";
import type { MessageInput } from "../../broker/types.js";
import { codeName, errors, httpStatusByCode, type StreamgateError } from "../../errors/index.js";

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

/** A message frame; `json` is the shared message JSON (encoded once per message for all clients). */
export function messageFrame(id: string, json: string): string {
  return `{"type":"message","id":${JSON.stringify(id)},"message":${json}}`;
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
