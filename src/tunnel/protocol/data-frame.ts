// Hand-written wire form of the one hot tunnel frame, TunnelFrame{request_id, trace_id, data: Data{data,
// end_stream}}: every body chunk of every proxied request is one. The reflective protobuf encoder and
// decoder cost more per chunk than the HTTP/2 write and read; these produce and accept the same bytes
// (checked against @bufbuild/protobuf in the tests). Every other frame goes through the schema.
import type { TunnelFrame } from "../../gen/streamgate/tunnel/v1/tunnel_pb.js";
import { PREFIX_BYTES } from "./frame-codec.js";

// Field numbers of streamgate.tunnel.v1.TunnelFrame and Data (tunnel.proto).
const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const TAG_REQUEST_ID = (1 << 3) | WIRE_LEN;
const TAG_TRACE_ID = (2 << 3) | WIRE_LEN;
const TAG_DATA = (13 << 3) | WIRE_LEN;
const TAG_DATA_BYTES = (1 << 3) | WIRE_LEN;
const TAG_DATA_END = (2 << 3) | WIRE_VARINT;

/** The encoded request_id and trace_id fields of a request's frames: made once, copied into each Data frame. */
export function encodeFrameIds(requestId: string, traceId: string): Uint8Array {
  // proto3 defaults (empty strings) are not on the wire.
  const idBytes = requestId === "" ? 0 : Buffer.byteLength(requestId, "utf8");
  const traceBytes = traceId === "" ? 0 : Buffer.byteLength(traceId, "utf8");
  const out = Buffer.allocUnsafe(
    (idBytes === 0 ? 0 : 1 + varintSize(idBytes) + idBytes) +
      (traceBytes === 0 ? 0 : 1 + varintSize(traceBytes) + traceBytes),
  );
  let at = 0;
  if (idBytes > 0) {
    out[at++] = TAG_REQUEST_ID;
    at = writeVarint(out, at, idBytes);
    at += out.write(requestId, at, "utf8");
  }
  if (traceBytes > 0) {
    out[at++] = TAG_TRACE_ID;
    at = writeVarint(out, at, traceBytes);
    out.write(traceId, at, "utf8");
  }
  return out;
}

/** One length-prefixed TunnelFrame with a Data kind, byte for byte what the schema encoder writes. */
export function encodeDataFrame(ids: Uint8Array, data: Uint8Array, endStream: boolean): Uint8Array {
  const inner = (data.length > 0 ? 1 + varintSize(data.length) + data.length : 0) + (endStream ? 2 : 0);
  const body = ids.length + 1 + varintSize(inner) + inner;
  const frame = Buffer.allocUnsafe(PREFIX_BYTES + body);
  frame[0] = 0;
  frame.writeUInt32BE(body, 1);
  let at = PREFIX_BYTES;
  frame.set(ids, at);
  at += ids.length;
  frame[at++] = TAG_DATA;
  at = writeVarint(frame, at, inner);
  if (data.length > 0) {
    frame[at++] = TAG_DATA_BYTES;
    at = writeVarint(frame, at, data.length);
    frame.set(data, at);
    at += data.length;
  }
  if (endStream) {
    frame[at++] = TAG_DATA_END;
    frame[at++] = 1;
  }
  return frame;
}

/**
 * Decodes `body` (one frame without its prefix) when it is a plain Data frame: only request_id,
 * trace_id and data, each once, Data holding only data and end_stream. Anything else (another kind,
 * unknown or repeated fields, odd encodings) returns null: the caller decodes it with the schema,
 * which also reports malformed bytes. The data is a view into `body`, as the schema decoder gives.
 */
export function decodeDataFrame(body: Uint8Array): TunnelFrame | null {
  let requestId = "";
  let traceId = "";
  let data: Uint8Array | null = null;
  let endStream = false;
  let seen = 0;
  let at = 0;
  while (at < body.length) {
    const tag = body[at++]!;
    if ((tag & 7) !== WIRE_LEN) return null;
    const length = readVarint(body, at);
    if (length === null) return null;
    at = length.next;
    const end = at + length.value;
    if (end > body.length) return null;
    if (tag === TAG_REQUEST_ID && (seen & 1) === 0) {
      const text = utf8(body, at, end);
      if (text === null) return null;
      requestId = text;
      seen |= 1;
    } else if (tag === TAG_TRACE_ID && (seen & 2) === 0) {
      const text = utf8(body, at, end);
      if (text === null) return null;
      traceId = text;
      seen |= 2;
    } else if (tag === TAG_DATA && (seen & 4) === 0) {
      seen |= 4;
      let inner = at;
      let innerSeen = 0;
      while (inner < end) {
        const innerTag = body[inner++]!;
        if (innerTag === TAG_DATA_BYTES && (innerSeen & 1) === 0) {
          const size = readVarint(body, inner);
          if (size === null || size.next + size.value > end) return null;
          data = body.subarray(size.next, size.next + size.value);
          inner = size.next + size.value;
          innerSeen |= 1;
        } else if (innerTag === TAG_DATA_END && (innerSeen & 2) === 0 && inner < end && body[inner]! <= 1) {
          endStream = body[inner++] === 1;
          innerSeen |= 2;
        } else {
          return null;
        }
      }
    } else {
      return null;
    }
    at = end;
  }
  if ((seen & 4) === 0) return null;
  // The same plain objects create()/fromBinary make for these proto3 messages, without the reflection.
  return {
    $typeName: "streamgate.tunnel.v1.TunnelFrame",
    requestId,
    traceId,
    kind: {
      case: "data",
      value: { $typeName: "streamgate.tunnel.v1.Data", data: data ?? new Uint8Array(0), endStream },
    },
  };
}

/** Bytes of `value` as a protobuf varint. */
function varintSize(value: number): number {
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

function writeVarint(target: Uint8Array, at: number, value: number): number {
  while (value >= 0x80) {
    target[at++] = (value & 0x7f) | 0x80;
    value = Math.floor(value / 128);
  }
  target[at++] = value;
  return at;
}

/** A varint of at most 5 bytes (lengths below 2^32), or null when it does not end inside `source`. */
function readVarint(source: Uint8Array, at: number): { value: number; next: number } | null {
  let value = 0;
  let scale = 1;
  for (let index = 0; index < 5 && at < source.length; index++) {
    const byte = source[at++]!;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return { value, next: at };
    scale *= 128;
  }
  return null;
}

const decoder = new TextDecoder("utf-8", { fatal: true });
/** node's native latin1 slice of any byte view: for ASCII bytes, the same string as UTF-8 decoding gives. */
const latin1Slice = (
  Buffer.prototype as unknown as { latin1Slice(this: Uint8Array, start: number, end: number): string }
).latin1Slice;

/** The UTF-8 text, or null for invalid UTF-8 (left to the schema decoder to judge). */
export function utf8(source: Uint8Array, start: number, end: number): string | null {
  // Ids and header names and values (a dozen or more per head frame) are short ASCII: one native latin1 slice,
  // about 3x cheaper than String.fromCharCode over a subarray and than the TextDecoder (bench/tunnel profiles).
  if (end - start <= 256) {
    let ascii = true;
    for (let index = start; index < end; index++) if (source[index]! >= 0x80) ascii = false;
    if (ascii) return latin1Slice.call(source, start, end);
  }
  try {
    return decoder.decode(source.subarray(start, end));
  } catch {
    return null;
  }
}
