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
    // Field names are built only for an error or a message that has attributes: a publish batch is
    // checked per message, and most messages have neither.
    if (!(message.data instanceof Uint8Array)) throw errors.invalidArgument(`messages[${index}].data`, "must be bytes");
    const attributes = message.attributes ?? {};
    let attributeCount = 0;
    for (const _ in attributes) attributeCount++;
    if (attributeCount > 0) validateAttributes(attributes, `messages[${index}].attributes`);
    const orderingKey = message.orderingKey ?? "";
    if (typeof orderingKey !== "string") {
      throw errors.invalidArgument(`messages[${index}].ordering_key`, "must be a string");
    }
    if (orderingKey !== "") validateOrderingKey(orderingKey, `messages[${index}].ordering_key`);
    if (message.data.byteLength === 0 && attributeCount === 0) {
      throw errors.invalidArgument(
        `messages[${index}]`,
        "a message must contain non-empty data or at least one attribute",
      );
    }
    const size = attributeCount === 0 ? message.data.byteLength : messageSize({ data: message.data, attributes });
    if (size + (orderingKey === "" ? 0 : Buffer.byteLength(orderingKey)) > MAX_MESSAGE_BYTES) {
      const total = size + Buffer.byteLength(orderingKey);
      throw errors.invalidArgument(
        `messages[${index}]`,
        `message is ${total} bytes; the limit is ${MAX_MESSAGE_BYTES} bytes`,
      );
    }
  }
}
