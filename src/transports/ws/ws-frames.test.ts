// ws-frames: a page of hub events framed once is what a real WebSocket parser (ws's Receiver) reads frame by frame.
import assert from "node:assert/strict";
import type { EventEmitter } from "node:events";
import { test } from "node:test";
import * as ws from "ws";
import type { StoredMessage } from "../../broker/types.js";
import type { FeedEvent } from "../../streams/index.js";
import { encodeEventPage, messageFramePrefix, messageFrameTail } from "./ws-frames.js";

function stored(offset: number, dataBytes: number, attributes: Record<string, string> = {}): StoredMessage {
  return {
    offset,
    messageId: `7-${offset}`,
    publishTimeMs: 1_700_000_000_000 + offset,
    data: Buffer.alloc(dataBytes, offset % 251),
    attributes,
    orderingKey: offset % 2 === 0 ? "" : "k",
  };
}

/** ws's frame parser (a Writable; exported at run time, absent from @types/ws). */
type ReceiverConstructor = new (options: { isServer: boolean }) => EventEmitter & { write(chunk: Buffer): boolean };
const { Receiver } = ws as unknown as { Receiver: ReceiverConstructor };

/** Every text message a client-side ws Receiver decodes from `bytes`, parsed as JSON. */
function decode(bytes: Buffer): unknown[] {
  const frames: unknown[] = [];
  const receiver = new Receiver({ isServer: false });
  receiver.on("message", (data: Buffer, isBinary: boolean) => {
    assert.equal(isBinary, false);
    frames.push(JSON.parse(data.toString("utf8")));
  });
  receiver.on("error", (error: Error) => assert.fail(error));
  receiver.write(bytes);
  return frames;
}

function expectedMessage(id: string, message: StoredMessage): unknown {
  return {
    type: "message",
    id,
    message: {
      offset: String(message.offset),
      messageId: message.messageId,
      publishTime: new Date(message.publishTimeMs).toISOString(),
      attributes: message.attributes,
      orderingKey: message.orderingKey,
      data: Buffer.from(message.data).toString("base64"),
    },
  };
}

test("ws frames - a page of messages, a gap and a heartbeat decodes as the JSON frames of the protocol", () => {
  // Payloads under 126 bytes, under 64 KiB and over 64 KiB: all three header lengths.
  const messages = [stored(3, 0), stored(4, 200, { kind: "é ✓" }), stored(9, 70_000)];
  const id = 'sub "one" ✓';
  const events: FeedEvent[] = [
    { kind: "message", message: messages[0]! },
    { kind: "message", message: messages[1]! },
    { kind: "heartbeat" },
    { kind: "gap", fromOffset: 5, firstAvailable: 9, lost: 4 },
    { kind: "message", message: messages[2]! },
  ];
  const page = encodeEventPage(id, messageFramePrefix(id), events);
  assert.ok(page !== null);
  assert.deepEqual(decode(page), [
    expectedMessage(id, messages[0]!),
    expectedMessage(id, messages[1]!),
    { type: "gap", id, fromOffset: "5", firstAvailable: "9", lost: 4 },
    expectedMessage(id, messages[2]!),
  ]);
});

test("ws frames - two subscriptions share each message's encoded tail; only heartbeats give no page", () => {
  const message = stored(1, 16);
  const tail = messageFrameTail(message);
  assert.equal(messageFrameTail(message), tail, "the tail is encoded once per message");
  const pages = ["a", "b"].map((id) => encodeEventPage(id, messageFramePrefix(id), [{ kind: "message", message }]));
  assert.deepEqual(decode(pages[0]!), [expectedMessage("a", message)]);
  assert.deepEqual(decode(pages[1]!), [expectedMessage("b", message)]);
  assert.equal(encodeEventPage("a", messageFramePrefix("a"), [{ kind: "heartbeat" }]), null);
});
