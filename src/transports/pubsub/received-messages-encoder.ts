// StreamingPullResponse.received_messages written in protobuf binary by hand, for the binary protocols' hot path.
import { create } from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";
import type { ReceivedMessage } from "../../broker/types.js";
import { type StreamingPullResponse, StreamingPullResponseSchema } from "../../gen/google/pubsub/v1/pubsub_pb.js";

// Field numbers of google/pubsub/v1/pubsub.proto.
const RESPONSE_RECEIVED_MESSAGES = 1;
const RESPONSE_SUBSCRIPTION_PROPERTIES = 4;
const PROPERTIES_EXACTLY_ONCE = 1;
const PROPERTIES_ORDERING = 2;
const RECEIVED_ACK_ID = 1;
const RECEIVED_MESSAGE = 2;
const RECEIVED_DELIVERY_ATTEMPT = 3;
const MESSAGE_DATA = 1;
const MESSAGE_ATTRIBUTES = 2;
const MESSAGE_ID = 3;
const MESSAGE_PUBLISH_TIME = 4;
const MESSAGE_ORDERING_KEY = 5;
const TIMESTAMP_SECONDS = 1;
const TIMESTAMP_NANOS = 2;
const MAP_KEY = 1;
const MAP_VALUE = 2;

const tag = (field: number, wireType: WireType) => (field << 3) | wireType;
const LENGTH_DELIMITED = (field: number) => tag(field, WireType.LengthDelimited);

/** Bytes of `value` as a varint (a non-negative safe integer). */
function varintSize(value: number): number {
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

/** Size of a length-delimited field of `length` bytes, tag included (tags here fit one byte). */
const delimitedSize = (length: number) => 1 + varintSize(length) + length;

/** The subscription's flags, sent with every batch. */
export interface SubscriptionProperties {
  exactlyOnceDeliveryEnabled: boolean;
  messageOrderingEnabled: boolean;
}

/** Sizes of one ReceivedMessage's parts, measured once and written in a second pass. */
interface Measured {
  ackIdBytes: number;
  messageIdBytes: number;
  orderingKeyBytes: number;
  seconds: number;
  nanos: number;
  timestampBytes: number;
  attributesBytes: number;
  messageBytes: number;
  receivedBytes: number;
}

function measure(received: ReceivedMessage, attempt: number): Measured {
  const { message } = received;
  const ackIdBytes = Buffer.byteLength(received.ackId);
  const messageIdBytes = Buffer.byteLength(message.messageId);
  const orderingKeyBytes = Buffer.byteLength(message.orderingKey ?? "");
  const seconds = Math.floor(message.publishTimeMs / 1000);
  const nanos = (message.publishTimeMs % 1000) * 1e6;
  const timestampBytes = (seconds === 0 ? 0 : 1 + varintSize(seconds)) + (nanos === 0 ? 0 : 1 + varintSize(nanos));
  let attributesBytes = 0;
  const attributes = message.attributes ?? {};
  for (const key in attributes) {
    const entry = delimitedSize(Buffer.byteLength(key)) + delimitedSize(Buffer.byteLength(attributes[key]!));
    attributesBytes += delimitedSize(entry);
  }
  const messageBytes =
    (message.data.byteLength === 0 ? 0 : delimitedSize(message.data.byteLength)) +
    attributesBytes +
    (messageIdBytes === 0 ? 0 : delimitedSize(messageIdBytes)) +
    delimitedSize(timestampBytes) +
    (orderingKeyBytes === 0 ? 0 : delimitedSize(orderingKeyBytes));
  const receivedBytes =
    (ackIdBytes === 0 ? 0 : delimitedSize(ackIdBytes)) +
    delimitedSize(messageBytes) +
    (attempt === 0 ? 0 : 1 + varintSize(attempt));
  return {
    ackIdBytes,
    messageIdBytes,
    orderingKeyBytes,
    seconds,
    nanos,
    timestampBytes,
    attributesBytes,
    messageBytes,
    receivedBytes,
  };
}

/** Writes into a buffer sized exactly beforehand. */
class Writer {
  position = 0;
  constructor(readonly buffer: Buffer) {}

  varint(value: number): void {
    const { buffer } = this;
    while (value >= 0x80) {
      buffer[this.position++] = (value % 128) | 0x80;
      value = Math.floor(value / 128);
    }
    buffer[this.position++] = value;
  }

  string(field: number, value: string, bytes: number): void {
    if (bytes === 0) return;
    this.buffer[this.position++] = LENGTH_DELIMITED(field);
    this.varint(bytes);
    this.position += this.buffer.write(value, this.position, bytes, "utf8");
  }

  bytes(field: number, value: Uint8Array): void {
    if (value.byteLength === 0) return;
    this.buffer[this.position++] = LENGTH_DELIMITED(field);
    this.varint(value.byteLength);
    this.buffer.set(value, this.position);
    this.position += value.byteLength;
  }

  header(field: number, length: number): void {
    this.buffer[this.position++] = LENGTH_DELIMITED(field);
    this.varint(length);
  }
}

function writeReceived(writer: Writer, received: ReceivedMessage, attempt: number, sizes: Measured): void {
  const { message } = received;
  writer.header(RESPONSE_RECEIVED_MESSAGES, sizes.receivedBytes);
  writer.string(RECEIVED_ACK_ID, received.ackId, sizes.ackIdBytes);
  writer.header(RECEIVED_MESSAGE, sizes.messageBytes);
  writer.bytes(MESSAGE_DATA, message.data);
  const attributes = message.attributes ?? {};
  for (const key in attributes) {
    const value = attributes[key]!;
    const keyBytes = Buffer.byteLength(key);
    const valueBytes = Buffer.byteLength(value);
    writer.header(MESSAGE_ATTRIBUTES, delimitedSize(keyBytes) + delimitedSize(valueBytes));
    // Map entries carry key and value even when empty.
    writer.header(MAP_KEY, keyBytes);
    writer.position += writer.buffer.write(key, writer.position, keyBytes, "utf8");
    writer.header(MAP_VALUE, valueBytes);
    writer.position += writer.buffer.write(value, writer.position, valueBytes, "utf8");
  }
  writer.string(MESSAGE_ID, message.messageId, sizes.messageIdBytes);
  writer.header(MESSAGE_PUBLISH_TIME, sizes.timestampBytes);
  if (sizes.seconds !== 0) {
    writer.buffer[writer.position++] = tag(TIMESTAMP_SECONDS, WireType.Varint);
    writer.varint(sizes.seconds);
  }
  if (sizes.nanos !== 0) {
    writer.buffer[writer.position++] = tag(TIMESTAMP_NANOS, WireType.Varint);
    writer.varint(sizes.nanos);
  }
  writer.string(MESSAGE_ORDERING_KEY, message.orderingKey ?? "", sizes.orderingKeyBytes);
  if (attempt !== 0) {
    writer.buffer[writer.position++] = tag(RECEIVED_DELIVERY_ATTEMPT, WireType.Varint);
    writer.varint(attempt);
  }
}

/**
 * The binary encoding of a StreamingPullResponse carrying `received` and `properties`: the same bytes
 * protobuf-es's `toBinary` writes for the message `receivedToProto` builds (fields in number order,
 * proto3 defaults left out, map entries with key and value), in one pass over an exactly sized buffer.
 * `deliveryAttempt` is written only when `reportAttempts` (the subscription has a dead-letter policy).
 */
export function encodeStreamingPullResponse(
  received: readonly ReceivedMessage[],
  reportAttempts: boolean,
  properties: SubscriptionProperties,
): Buffer {
  return encodeInto(received, reportAttempts, properties, 0);
}

/**
 * {@link encodeStreamingPullResponse}'s bytes as one gRPC message frame: the 5-byte prefix (uncompressed, length)
 * then the message, in one buffer, so a gRPC writer sends it without another copy.
 */
export function encodeStreamingPullFrame(
  received: readonly ReceivedMessage[],
  reportAttempts: boolean,
  properties: SubscriptionProperties,
): Buffer {
  const frame = encodeInto(received, reportAttempts, properties, GRPC_FRAME_PREFIX_BYTES);
  frame[0] = 0;
  frame.writeUInt32BE(frame.length - GRPC_FRAME_PREFIX_BYTES, 1);
  return frame;
}

/** A gRPC message frame's prefix: one flags byte and a 4-byte big-endian length. */
const GRPC_FRAME_PREFIX_BYTES = 5;

/** Encodes into a buffer with `headroom` bytes left free in front of the message. */
function encodeInto(
  received: readonly ReceivedMessage[],
  reportAttempts: boolean,
  properties: SubscriptionProperties,
  headroom: number,
): Buffer {
  const sizes: Measured[] = new Array(received.length);
  let total = 0;
  for (let index = 0; index < received.length; index++) {
    const item = received[index]!;
    const measured = measure(item, reportAttempts ? item.deliveryAttempt : 0);
    sizes[index] = measured;
    total += delimitedSize(measured.receivedBytes);
  }
  const propertiesBytes = (properties.exactlyOnceDeliveryEnabled ? 2 : 0) + (properties.messageOrderingEnabled ? 2 : 0);
  total += delimitedSize(propertiesBytes);
  const writer = new Writer(Buffer.allocUnsafe(headroom + total));
  writer.position = headroom;
  for (let index = 0; index < received.length; index++) {
    const item = received[index]!;
    writeReceived(writer, item, reportAttempts ? item.deliveryAttempt : 0, sizes[index]!);
  }
  writer.header(RESPONSE_SUBSCRIPTION_PROPERTIES, propertiesBytes);
  if (properties.exactlyOnceDeliveryEnabled) {
    writer.buffer[writer.position++] = tag(PROPERTIES_EXACTLY_ONCE, WireType.Varint);
    writer.buffer[writer.position++] = 1;
  }
  if (properties.messageOrderingEnabled) {
    writer.buffer[writer.position++] = tag(PROPERTIES_ORDERING, WireType.Varint);
    writer.buffer[writer.position++] = 1;
  }
  if (writer.position !== headroom + total)
    throw new Error(`StreamingPullResponse encoding: wrote ${writer.position - headroom} of ${total}`);
  return writer.buffer;
}

/**
 * A StreamingPullResponse message whose whole content is `encoded` (from {@link encodeStreamingPullResponse}),
 * held as the message's unknown fields: a binary serializer (protobuf-es `toBinary`, on the lean gRPC path and
 * on connect's) writes them back verbatim, one field at a time, so the client reads exactly those fields.
 * Only for binary protocols: a JSON serializer drops unknown fields.
 */
export function preEncodedStreamingPullResponse(encoded: Buffer): StreamingPullResponse {
  const response = create(StreamingPullResponseSchema);
  response.$unknown = unknownFieldsOf(encoded);
  return response;
}

/**
 * Where a response made by {@link preFramedStreamingPullResponse} carries its gRPC frame. A registered symbol: the
 * gRPC writer (transports/grpc) that sends the frame as is must not import this transport.
 */
export const GRPC_FRAME = Symbol.for("streamgate.grpc.frame");

/**
 * A StreamingPullResponse for a frame from {@link encodeStreamingPullFrame}: the lean gRPC path sends the frame
 * itself (found under {@link GRPC_FRAME}) when it does not compress; any other serializer reads the message from
 * its unknown fields as with {@link preEncodedStreamingPullResponse}, split from the frame only when first read.
 */
export function preFramedStreamingPullResponse(frame: Buffer): StreamingPullResponse {
  const response = create(StreamingPullResponseSchema);
  let unknown: StreamingPullResponse["$unknown"] | undefined;
  Object.defineProperty(response, "$unknown", {
    configurable: true,
    enumerable: true,
    get: () => {
      unknown ??= unknownFieldsOf(frame.subarray(5));
      return unknown;
    },
    set: (value: StreamingPullResponse["$unknown"]) => {
      unknown = value;
    },
  });
  Object.defineProperty(response, GRPC_FRAME, { value: frame });
  return response;
}

/** The top-level fields of an encoded StreamingPullResponse (all length-delimited) as protobuf-es unknown fields. */
function unknownFieldsOf(encoded: Buffer): NonNullable<StreamingPullResponse["$unknown"]> {
  const unknown: NonNullable<StreamingPullResponse["$unknown"]> = [];
  let position = 0;
  while (position < encoded.length) {
    const field = encoded[position]! >>> 3;
    let cursor = position + 1;
    let length = 0;
    let shift = 1;
    for (;;) {
      const byte = encoded[cursor++]!;
      length += (byte & 0x7f) * shift;
      if (byte < 0x80) break;
      shift *= 128;
    }
    // The data of a length-delimited unknown field is its length prefix and payload; the tag is written from `no`.
    unknown.push({
      no: field,
      wireType: WireType.LengthDelimited,
      data: encoded.subarray(position + 1, cursor + length),
    });
    position = cursor + length;
  }
  return unknown;
}
