// Hand-written wire form of the head frames every proxied request carries once: RequestHead (server → agent),
// ResponseHead and Trailers (agent → server). The reflective protobuf encoder and decoder were the largest single
// cost of a unary call in both processes after node's http2 (profiles in docs/benchmarks.md); these write the same
// bytes as toBinary (proto3: fields in number order, defaults left out) and read back the same values as fromBinary,
// checked against @bufbuild/protobuf in head-frame.test.ts. Anything unusual (unknown fields, repeated scalars,
// invalid UTF-8, a negative or huge timeout) is left to the schema: the encoder returns null, the decoder too.
import type { Protocol, RequestHead, TunnelFrame } from "../../gen/streamgate/tunnel/v1/tunnel_pb.js";
import { decodeDataFrame, utf8 } from "./data-frame.js";
import { PREFIX_BYTES } from "./frame-codec.js";

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
// streamgate.tunnel.v1.TunnelFrame (tunnel.proto)
const TAG_REQUEST_ID = (1 << 3) | WIRE_LEN;
const TAG_TRACE_ID = (2 << 3) | WIRE_LEN;
const TAG_REQUEST_HEAD = (11 << 3) | WIRE_LEN;
const TAG_DATA = (13 << 3) | WIRE_LEN;
const TAG_RESPONSE_HEAD = (12 << 3) | WIRE_LEN;
const TAG_TRAILERS = (14 << 3) | WIRE_LEN;
// Header
const TAG_NAME = (1 << 3) | WIRE_LEN;
const TAG_VALUE = (2 << 3) | WIRE_LEN;

/** A header as the frames carry it (a Header message, or any `{name, value}`). */
interface HeaderLike {
  name: string;
  value: string;
}

/** The fields of a RequestHead, as a message or a plain object. */
export type RequestHeadFields = Omit<RequestHead, "$typeName" | "$unknown" | "headers"> & {
  headers: readonly HeaderLike[];
};

// ---------------------------------------------------------------------------------------------- encoding

/** Sizes first, then one allocation: a field list of [tag, value] in wire order. */
class Writer {
  private readonly parts: (number | string | Uint8Array)[] = [];
  size = 0;

  string(tag: number, value: string): void {
    if (value === "") return;
    const bytes = Buffer.byteLength(value, "utf8");
    this.parts.push(tag, bytes, value);
    this.size += 1 + varintSize(bytes) + bytes;
  }

  varint(tag: number, value: number): void {
    if (value === 0) return;
    this.parts.push(tag, -1, value);
    this.size += 1 + varintSize(value);
  }

  raw(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.parts.push(-2, bytes.length, bytes);
    this.size += bytes.length;
  }

  /** Opens a length-delimited field whose content follows until `close`. */
  open(tag: number): number {
    this.parts.push(tag, -3, 0);
    return this.parts.length - 1;
  }

  close(slot: number, startSize: number): void {
    const length = this.size - startSize;
    this.parts[slot] = length;
    this.size += 1 + varintSize(length);
  }

  headers(tag: number, headers: readonly HeaderLike[]): void {
    for (const header of headers) {
      const slot = this.open(tag);
      const start = this.size;
      this.string(TAG_NAME, header.name);
      this.string(TAG_VALUE, header.value);
      this.close(slot, start);
    }
  }

  /** The length-prefixed frame. */
  finish(): Uint8Array {
    const frame = Buffer.allocUnsafe(PREFIX_BYTES + this.size);
    frame[0] = 0;
    frame.writeUInt32BE(this.size, 1);
    let at = PREFIX_BYTES;
    const parts = this.parts;
    for (let index = 0; index < parts.length; index += 3) {
      const tag = parts[index] as number;
      const kind = parts[index + 1] as number;
      const value = parts[index + 2]!;
      if (tag === -2) {
        frame.set(value as Uint8Array, at);
        at += kind;
        continue;
      }
      frame[at++] = tag;
      if (kind === -1) at = writeVarint(frame, at, value as number);
      else if (kind === -3) at = writeVarint(frame, at, value as number);
      else {
        at = writeVarint(frame, at, kind);
        at += frame.write(value as string, at, "utf8");
      }
    }
    return frame;
  }
}

/** TunnelFrame{ids, request_head}, byte for byte what the schema encoder writes; null when it must do it. */
export function encodeRequestHeadFrame(ids: Uint8Array, head: RequestHeadFields): Uint8Array | null {
  const timeout = head.timeoutMs;
  if (timeout < 0n || timeout > BigInt(Number.MAX_SAFE_INTEGER) || (head as { $unknown?: unknown }).$unknown)
    return null;
  const writer = new Writer();
  writer.raw(ids);
  const slot = writer.open(TAG_REQUEST_HEAD);
  const start = writer.size;
  if (head.protocol < 0) return null; // negative enums are 10-byte varints: the schema's job
  writer.varint((1 << 3) | WIRE_VARINT, head.protocol);
  writer.string((2 << 3) | WIRE_LEN, head.method);
  writer.string((3 << 3) | WIRE_LEN, head.scheme);
  writer.string((4 << 3) | WIRE_LEN, head.authority);
  writer.string((5 << 3) | WIRE_LEN, head.path);
  writer.headers((6 << 3) | WIRE_LEN, head.headers);
  writer.varint((7 << 3) | WIRE_VARINT, Number(timeout));
  writer.varint((8 << 3) | WIRE_VARINT, head.endStream ? 1 : 0);
  writer.string((9 << 3) | WIRE_LEN, head.rule);
  writer.string((10 << 3) | WIRE_LEN, head.group);
  writer.string((11 << 3) | WIRE_LEN, head.httpVersion);
  writer.close(slot, start);
  return writer.finish();
}

/** TunnelFrame{ids, response_head}, byte for byte what the schema encoder writes. */
export function encodeResponseHeadFrame(
  ids: Uint8Array,
  status: number,
  headers: readonly HeaderLike[],
  endStream: boolean,
): Uint8Array | null {
  if (!Number.isInteger(status) || status < 0 || status > 0xffff_ffff) return null;
  const writer = new Writer();
  writer.raw(ids);
  const slot = writer.open(TAG_RESPONSE_HEAD);
  const start = writer.size;
  writer.varint((1 << 3) | WIRE_VARINT, status);
  writer.headers((2 << 3) | WIRE_LEN, headers);
  writer.varint((3 << 3) | WIRE_VARINT, endStream ? 1 : 0);
  writer.close(slot, start);
  return writer.finish();
}

/** TunnelFrame{ids, trailers}, byte for byte what the schema encoder writes. */
export function encodeTrailersFrame(ids: Uint8Array, headers: readonly HeaderLike[]): Uint8Array {
  const writer = new Writer();
  writer.raw(ids);
  const slot = writer.open(TAG_TRAILERS);
  const start = writer.size;
  writer.headers((1 << 3) | WIRE_LEN, headers);
  writer.close(slot, start);
  return writer.finish();
}

// ---------------------------------------------------------------------------------------------- decoding

/** A reader over one message's bytes; every read returns null (or -1) when the bytes are not plain. */
class Reader {
  at: number;
  constructor(
    readonly bytes: Uint8Array,
    start: number,
    readonly end: number,
  ) {
    this.at = start;
  }

  /** A varint below 2^53, or -1. */
  varint(): number {
    let value = 0;
    let scale = 1;
    const bytes = this.bytes;
    for (let index = 0; index < 8 && this.at < this.end; index++) {
      const byte = bytes[this.at++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value <= Number.MAX_SAFE_INTEGER ? value : -1;
      scale *= 128;
    }
    return -1;
  }

  /** The end of a length-delimited field's content, or -1. */
  length(): number {
    const length = this.varint();
    if (length < 0 || this.at + length > this.end) return -1;
    return this.at + length;
  }

  string(): string | null {
    const end = this.length();
    if (end < 0) return null;
    const text = utf8(this.bytes, this.at, end);
    this.at = end;
    return text;
  }

  headers(into: TunnelHeader[]): boolean {
    const end = this.length();
    if (end < 0) return false;
    let name = "";
    let value = "";
    let seen = 0;
    while (this.at < end) {
      const tag = this.bytes[this.at++]!;
      const bit = tag === TAG_NAME ? 1 : tag === TAG_VALUE ? 2 : 0;
      if (bit === 0 || (seen & bit) !== 0) return false;
      seen |= bit;
      const read = this.stringUntil(end);
      if (read === null) return false;
      if (bit === 1) name = read;
      else value = read;
    }
    if (this.at !== end) return false;
    into.push({ $typeName: "streamgate.tunnel.v1.Header", name, value });
    return true;
  }

  private stringUntil(limit: number): string | null {
    const length = this.varint();
    if (length < 0 || this.at + length > limit) return null;
    const text = utf8(this.bytes, this.at, this.at + length);
    this.at += length;
    return text;
  }
}

type TunnelHeader = { $typeName: "streamgate.tunnel.v1.Header"; name: string; value: string };

/**
 * Decodes `body` (one frame without its prefix) when it is a plain RequestHead, ResponseHead or Trailers frame
 * (each field at most once, no unknown fields); anything else returns null for the schema decoder.
 */
export function decodeHeadFrame(body: Uint8Array): TunnelFrame | null {
  let requestId = "";
  let traceId = "";
  let kind: TunnelFrame["kind"] | null = null;
  const reader = new Reader(body, 0, body.length);
  let seen = 0;
  while (reader.at < body.length) {
    const tag = body[reader.at++]!;
    if (tag === TAG_REQUEST_ID && (seen & 1) === 0) {
      const text = reader.string();
      if (text === null) return null;
      requestId = text;
      seen |= 1;
    } else if (tag === TAG_TRACE_ID && (seen & 2) === 0) {
      const text = reader.string();
      if (text === null) return null;
      traceId = text;
      seen |= 2;
    } else if (kind === null && (tag === TAG_REQUEST_HEAD || tag === TAG_RESPONSE_HEAD || tag === TAG_TRAILERS)) {
      const end = reader.length();
      if (end < 0) return null;
      const inner = new Reader(body, reader.at, end);
      kind =
        tag === TAG_REQUEST_HEAD
          ? readRequestHead(inner)
          : tag === TAG_RESPONSE_HEAD
            ? readResponseHead(inner)
            : readTrailers(inner);
      if (kind === null || inner.at !== end) return null;
      reader.at = end;
    } else {
      return null;
    }
  }
  if (kind === null) return null;
  return { $typeName: "streamgate.tunnel.v1.TunnelFrame", requestId, traceId, kind };
}

/** The frame decoder's fast path on both ends: Data, RequestHead, ResponseHead and Trailers without the schema. */
export function decodeHotFrame(body: Uint8Array): TunnelFrame | null {
  // The kind's tag follows the ids (fields 1 and 2, in that order as encoders write them): one look at it picks the
  // decoder, so a head frame's ids are not decoded twice (once by a Data attempt that fails on the kind).
  let at = 0;
  while (at < body.length && (body[at] === TAG_REQUEST_ID || body[at] === TAG_TRACE_ID)) {
    // One-byte lengths only (ids are short); anything longer goes through the full decoders below.
    const length = body[at + 1];
    if (length === undefined || length >= 0x80) break;
    at += 2 + length;
  }
  return body[at] === TAG_DATA ? decodeDataFrame(body) : (decodeHeadFrame(body) ?? decodeDataFrame(body));
}

function readRequestHead(reader: Reader): TunnelFrame["kind"] | null {
  const value: RequestHead = {
    $typeName: "streamgate.tunnel.v1.RequestHead",
    protocol: 0 as Protocol,
    method: "",
    scheme: "",
    authority: "",
    path: "",
    headers: [],
    timeoutMs: 0n,
    endStream: false,
    rule: "",
    group: "",
    httpVersion: "",
  };
  let seen = 0;
  while (reader.at < reader.end) {
    const tag = reader.bytes[reader.at++]!;
    const field = tag >>> 3;
    if (field === 6 && tag === ((6 << 3) | WIRE_LEN)) {
      if (!reader.headers(value.headers as TunnelHeader[])) return null;
      continue;
    }
    const bit = 1 << field;
    if (field < 1 || field > 11 || (seen & bit) !== 0) return null;
    seen |= bit;
    if (field === 1 || field === 7 || field === 8) {
      if ((tag & 7) !== WIRE_VARINT) return null;
      const number = reader.varint();
      // Enums are int32 (a value above it is a negative one, 10 bytes: left to the schema); bools are 0 or 1.
      if (number < 0 || (field === 1 && number > 0x7fff_ffff) || (field === 8 && number > 1)) return null;
      if (field === 1) value.protocol = number as Protocol;
      else if (field === 7) value.timeoutMs = BigInt(number);
      else value.endStream = number === 1;
      continue;
    }
    if ((tag & 7) !== WIRE_LEN) return null;
    const text = reader.string();
    if (text === null) return null;
    if (field === 2) value.method = text;
    else if (field === 3) value.scheme = text;
    else if (field === 4) value.authority = text;
    else if (field === 5) value.path = text;
    else if (field === 9) value.rule = text;
    else if (field === 10) value.group = text;
    else value.httpVersion = text;
  }
  return { case: "requestHead", value };
}

function readResponseHead(reader: Reader): TunnelFrame["kind"] | null {
  let status = 0;
  let endStream = false;
  const headers: TunnelHeader[] = [];
  let seen = 0;
  while (reader.at < reader.end) {
    const tag = reader.bytes[reader.at++]!;
    if (tag === ((2 << 3) | WIRE_LEN)) {
      if (!reader.headers(headers)) return null;
    } else if (tag === ((1 << 3) | WIRE_VARINT) && (seen & 1) === 0) {
      seen |= 1;
      status = reader.varint();
      if (status < 0 || status > 0xffff_ffff) return null;
    } else if (tag === ((3 << 3) | WIRE_VARINT) && (seen & 2) === 0) {
      seen |= 2;
      const flag = reader.varint();
      if (flag < 0 || flag > 1) return null;
      endStream = flag === 1;
    } else {
      return null;
    }
  }
  return {
    case: "responseHead",
    value: { $typeName: "streamgate.tunnel.v1.ResponseHead", status, headers, endStream },
  };
}

function readTrailers(reader: Reader): TunnelFrame["kind"] | null {
  const headers: TunnelHeader[] = [];
  while (reader.at < reader.end) {
    const tag = reader.bytes[reader.at++]!;
    if (tag !== ((1 << 3) | WIRE_LEN) || !reader.headers(headers)) return null;
  }
  return { case: "trailers", value: { $typeName: "streamgate.tunnel.v1.Trailers", headers } };
}

// ---------------------------------------------------------------------------------------------- varints

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
    target[at++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  target[at++] = value;
  return at;
}
