// One row of the live tail from a streamgate/client message: offset, publish time, attributes, and the data as
// UTF-8 text when printable, a short base64 preview otherwise.
import { formatNumber, h } from "./dom.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Bytes shown in a binary message's base64 preview. */
const PREVIEW_BYTES = 36;

/** UTF-8 text when the bytes decode and are printable; otherwise a short base64 preview. */
function describeData(bytes) {
  if (bytes.length === 0) return { text: "(empty)", binary: true };
  try {
    const text = utf8.decode(bytes);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: detecting control characters is the point.
    if (!/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text)) return { text, binary: false };
  } catch {
    // not UTF-8: fall through to the binary preview
  }
  const preview = btoa(String.fromCharCode(...bytes.subarray(0, PREVIEW_BYTES)));
  return {
    text: `binary · ${formatNumber(bytes.length)} bytes · ${preview}${bytes.length > PREVIEW_BYTES ? "…" : ""}`,
    binary: true,
  };
}

/** One tail row from a client StreamMessage (offset number, publishTime Date, data bytes). */
export function renderMessage(message) {
  const data = describeData(message.data);
  const time = message.publishTime;
  const publishTime = time.toISOString();
  const attributes = Object.entries(message.attributes ?? {});
  if (message.orderingKey) attributes.unshift(["orderingKey", message.orderingKey]);
  return h(
    "li",
    { class: "tail-row fresh", "data-offset": message.offset },
    h("span", { class: "offset" }, `#${message.offset}`),
    h(
      "time",
      { class: "time", datetime: publishTime, title: publishTime },
      time.toLocaleTimeString(undefined, { hour12: false }) + `.${String(time.getMilliseconds()).padStart(3, "0")}`,
    ),
    h(
      "span",
      { class: "attrs" },
      attributes.length === 0
        ? h("span", { class: "muted" }, "–")
        : attributes.map(([key, value]) => h("span", { class: "attr" }, h("b", {}, key), `=${value}`)),
    ),
    h("span", { class: data.binary ? "data binary" : "data", title: data.text }, data.text),
  );
}
