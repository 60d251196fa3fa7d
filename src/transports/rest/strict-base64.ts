// Pub/Sub REST's rule for `bytes` fields: base64 in the standard or URL-safe alphabet, padded or not, nothing else.
import { errors } from "../../errors/index.js";

/** One alphabet per string (no mixing), padding only when complete: what proto3 JSON parsers accept. */
const STANDARD = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;
const URL_SAFE = /^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}(?:==)?|[A-Za-z0-9_-]{3}=?)?$/;

/** Whether `text` is base64 Pub/Sub's REST would decode. */
export function isStrictBase64(text: string): boolean {
  return STANDARD.test(text) || URL_SAFE.test(text);
}

/**
 * Checks `messages[i].data` of a publish body before the lenient JSON decoder sees it.
 * @throws StreamgateError INVALID_ARGUMENT naming `messages[i].data`, worded as Pub/Sub words it.
 */
export function checkPublishData(body: Record<string, unknown>): void {
  const messages = body.messages;
  if (!Array.isArray(messages)) return;
  messages.forEach((message: unknown, index) => {
    if (typeof message !== "object" || message === null) return;
    const data = (message as Record<string, unknown>).data;
    if (typeof data !== "string" || isStrictBase64(data)) return;
    const shown = data.length > 60 ? `${data.slice(0, 60)}…` : data;
    throw errors.invalidArgument(
      `messages[${index}].data`,
      `Invalid value (TYPE_BYTES), Base64 decoding failed for ${JSON.stringify(shown)}; data must be base64 (standard or URL-safe alphabet), e.g. "aGVsbG8gd29ybGQ=" for "hello world"`,
    );
  });
}
