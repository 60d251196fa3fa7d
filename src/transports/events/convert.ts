// Conversions between streamgate.v1 messages and the broker's stream types.
import { create } from "@bufbuild/protobuf";
import { type Timestamp, TimestampSchema } from "@bufbuild/protobuf/wkt";
import { MAX_MESSAGE_BYTES, messageSize, validateMessages } from "../../broker/index.js";
import type { MessageInput, StoredMessage, StreamPosition } from "../../broker/types.js";
import { errors } from "../../errors/index.js";
import {
  type Event,
  EventSchema,
  type Position,
  type PublishMessage,
  type Message as StreamMessage,
  MessageSchema as StreamMessageSchema,
} from "../../gen/streamgate/v1/events_pb.js";
import type { FeedEvent } from "../../streams/index.js";

export function msToTimestamp(ms: number): Timestamp {
  return create(TimestampSchema, { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 });
}

export function timestampToMs(timestamp: Timestamp): number {
  return Number(timestamp.seconds) * 1000 + Math.floor(timestamp.nanos / 1e6);
}

/** A proto Position as a stream position; unset means `latest`. */
export function positionFromProto(position: Position | undefined, field: string): StreamPosition {
  const kind = position?.kind;
  switch (kind?.case) {
    case undefined:
      return { kind: "latest" };
    case "earliest":
      return { kind: "earliest" };
    case "latest":
      return { kind: "latest" };
    case "afterOffset": {
      if (kind.value < 0n || kind.value > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw errors.invalidArgument(`${field}.after_offset`, `must be between 0 and 2^53-1, got ${kind.value}`);
      }
      return { kind: "after", offset: Number(kind.value) };
    }
    case "time": {
      const timeMs = timestampToMs(kind.value);
      if (!Number.isFinite(timeMs) || timeMs < 0) throw errors.invalidArgument(`${field}.time`, "must be after 1970");
      return { kind: "time", timeMs };
    }
  }
}

export function messageToProto(message: StoredMessage): StreamMessage {
  return create(StreamMessageSchema, {
    offset: BigInt(message.offset),
    messageId: message.messageId,
    publishTime: msToTimestamp(message.publishTimeMs),
    attributes: message.attributes,
    orderingKey: message.orderingKey,
    data: message.data,
  });
}

/** A hub event as a proto Event. */
export function eventToProto(event: FeedEvent): Event {
  switch (event.kind) {
    case "message":
      return create(EventSchema, { kind: { case: "message", value: messageToProto(event.message) } });
    case "gap":
      return create(EventSchema, {
        kind: {
          case: "gap",
          value: {
            fromOffset: BigInt(event.fromOffset),
            firstAvailable: BigInt(event.firstAvailable),
            lost: BigInt(event.lost),
          },
        },
      });
    case "heartbeat":
      return create(EventSchema, { kind: { case: "heartbeat", value: { time: msToTimestamp(Date.now()) } } });
  }
}

/**
 * Validated broker inputs from proto messages: Pub/Sub's rules ({@link validateMessages}) plus the
 * server's `maxMessageBytes` (at most {@link MAX_MESSAGE_BYTES}).
 */
export function inputsFromProto(messages: PublishMessage[], maxMessageBytes: number): MessageInput[] {
  const inputs: MessageInput[] = messages.map((message) => ({
    data: message.data,
    attributes: message.attributes,
    orderingKey: message.orderingKey,
  }));
  validateMessages(inputs);
  const limit = Math.min(maxMessageBytes, MAX_MESSAGE_BYTES);
  inputs.forEach((input, index) => {
    const size = messageSize(input);
    if (size > limit) {
      throw errors.resourceExhausted(
        "MESSAGE_TOO_LARGE",
        `messages[${index}]: message of ${size} bytes exceeds the limit of ${limit} bytes`,
      );
    }
  });
  return inputs;
}
