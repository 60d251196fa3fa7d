// Pub/Sub's limits on a published message, checked once before any engine stores it.
import { errors } from "../errors/index.js";
import { validateAttributes, validateOrderingKey } from "./labels.js";
import type { MessageInput } from "./types.js";

/** Data plus attributes plus ordering key of one message: 10 MB, Pub/Sub's limit. */
export const MAX_MESSAGE_BYTES = 10_000_000;

/** Bytes a message counts against flow control and retention: data plus attribute keys and values. */
export function messageSize(message: Pick<MessageInput, "data" | "attributes">): number {
  let size = message.data.byteLength;
  for (const key in message.attributes) size += Buffer.byteLength(key) + Buffer.byteLength(message.attributes[key]!);
  return size;
}

/**
 * Checks a publish batch: not empty; each message has data or attributes, valid attributes and
 * ordering key ({@link validateAttributes}), and fits {@link MAX_MESSAGE_BYTES}.
 * @throws StreamgateError INVALID_ARGUMENT naming `messages[i]` and the broken rule.
 */
export function validateMessages(messages: MessageInput[]): void {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw errors.invalidArgument("messages", "at least one message is required");
  }
  for (let index = 0; index < messages.length; index++) {
    const message = messages[index]!;
    const field = `messages[${index}]`;
    if (!(message.data instanceof Uint8Array)) throw errors.invalidArgument(`${field}.data`, "must be bytes");
    const attributes = message.attributes ?? {};
    validateAttributes(attributes, `${field}.attributes`);
    const orderingKey = message.orderingKey ?? "";
    if (typeof orderingKey !== "string") throw errors.invalidArgument(`${field}.ordering_key`, "must be a string");
    validateOrderingKey(orderingKey, `${field}.ordering_key`);
    const size = messageSize({ data: message.data, attributes });
    if (message.data.byteLength === 0 && Object.keys(attributes).length === 0) {
      throw errors.invalidArgument(field, "a message must contain non-empty data or at least one attribute");
    }
    if (size + Buffer.byteLength(orderingKey) > MAX_MESSAGE_BYTES) {
      throw errors.invalidArgument(
        field,
        `message is ${size + Buffer.byteLength(orderingKey)} bytes; the limit is ${MAX_MESSAGE_BYTES} bytes`,
      );
    }
  }
}
