// Reading a delivery's `$JS.ACK` reply subject in place: the same numbers as splitting it, and ack ids as encodeJetStreamAckId writes them.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeJetStreamAckId, encodeJetStreamAckId, parseAckSubject } from "./ack-id.js";
import { parseDeliveryReply, readCurrentAckId } from "./delivery-reply.js";

/** Small, large and edge values of each number a reply subject carries. */
const COUNTS = [1, 2, 9, 10, 4_294_967_295];
const SEQUENCES = [1, 7, 1_000, 123_456_789, 999_999_999_999_999];
const TIMESTAMPS = ["0", "1", "1765140000123456789", "18446744073709551615"];

function* subjects(): Generator<string> {
  let pending = 0;
  for (const deliveryCount of COUNTS) {
    for (const sequence of SEQUENCES) {
      for (const timestamp of TIMESTAMPS) {
        const consumerSequence = SEQUENCES[(sequence + deliveryCount) % SEQUENCES.length]!;
        const numbers = `${deliveryCount}.${sequence}.${consumerSequence}.${timestamp}.${pending++}`;
        yield `$JS.ACK.ns-t-abc.sub1-0.${numbers}`;
        yield `$JS.ACK.hub.ACCOUNTHASH12.ns-t-abc.x9z-12.${numbers}.k7Zp3`;
        yield `$JS.ACK._.A.S.C.${numbers}.t`;
      }
    }
  }
}

describe("delivery reply", () => {
  it("delivery reply - reads the numbers splitting the subject reads, in both $JS.ACK forms", () => {
    let checked = 0;
    for (const subject of subjects()) {
      const parsed = parseDeliveryReply(subject);
      assert.ok(parsed !== null, subject);
      const expected = parseAckSubject(subject);
      assert.equal(parsed.deliveryCount, expected.deliveryCount, subject);
      assert.equal(parsed.sequence, expected.sequence, subject);
      assert.equal(parsed.timestampNs, expected.timestampNs, subject);
      checked++;
    }
    assert.equal(checked, COUNTS.length * SEQUENCES.length * TIMESTAMPS.length * 3);
  });

  it("delivery reply - its ack id tail makes the id encodeJetStreamAckId writes, which decodes back", () => {
    for (const subject of subjects()) {
      const parsed = parseDeliveryReply(subject)!;
      const expected = encodeJetStreamAckId({ subscriptionId: "sub1", generation: 3, ...parseAckSubject(subject) });
      const ackId = `sub1-3.${parsed.ackIdTail}`;
      assert.equal(ackId, expected, subject);
      const decoded = decodeJetStreamAckId(ackId, "sub1", "projects/p/subscriptions/s");
      assert.equal(decoded.deliveryCount, parsed.deliveryCount);
      assert.equal(decoded.sequence, parsed.sequence);
    }
  });

  it("delivery reply - refuses subjects that are not a JetStream delivery", () => {
    for (const subject of [
      "",
      "_INBOX.abc.def",
      "$JS.ACK",
      "$JS.ACK.",
      "$JS.ACK.s.c.1.2.3.4",
      "$JS.ACK.s.c.1.2.3.4.5.6",
      "$JS.ACK.a.b.s.c.1.2.3.4.5",
      "$JS.ACK.a.b.s.c.1.2.3.4.5.6.7",
      "$JS.ACK.s.c.0.2.3.4.5",
      "$JS.ACK.s.c.1.0.3.4.5",
      "$JS.ACK.s.c.1.2.0.4.5",
      "$JS.ACK.s.c.x.2.3.4.5",
      "$JS.ACK.s.c.1.2.3.-4.5",
      "$JS.ACK.s.c.1..3.4.5",
      "$JS.ACK.s.c.1.2.3..5",
      "$JS.ACK.s.c.1.2 .3.4.5",
      "$JS.NAK.s.c.1.2.3.4.5",
    ]) {
      assert.equal(parseDeliveryReply(subject), null, subject);
    }
  });

  it("delivery reply - reads a current ack id as decodeJetStreamAckId does, and leaves every other id to it", () => {
    const name = "projects/p/subscriptions/s";
    const read = (ackId: string) => readCurrentAckId(ackId, "sub1-3.", "sub1", 3);
    for (const subject of subjects()) {
      const ackId = `sub1-3.${parseDeliveryReply(subject)!.ackIdTail}`;
      assert.deepEqual(read(ackId), decodeJetStreamAckId(ackId, "sub1", name), ackId);
    }
    for (const ackId of [
      "sub1-3.1.2.0.5",
      "sub1-3.999999999999.999999999999999.999999999999999.99999999999999999999",
    ]) {
      assert.deepEqual(read(ackId), decodeJetStreamAckId(ackId, "sub1", name), ackId);
    }
    // Not of this generation, or not valid: null here, so the pattern decides (stale or INVALID_ARGUMENT).
    for (const ackId of [
      "sub1-2.1.2.3.4",
      "sub1-30.1.2.3.4",
      "sub2-3.1.2.3.4",
      "sub1-3.",
      "sub1-3.1.2.3",
      "sub1-3.1.2.3.4.5",
      "sub1-3.0.2.3.4",
      "sub1-3.1.0.3.4",
      "sub1-3.1.2.3.",
      "sub1-3.1..3.4",
      "sub1-3.1.2.3.4x",
      "sub1-3.+1.2.3.4",
      "sub1-3.1.2.3. 4",
      "sub1-3.1234567890123.2.3.4",
      "sub1-3.1.1234567890123456.3.4",
      "sub1-3.1.2.1234567890123456.4",
      "sub1-3.1.2.3.123456789012345678901",
    ]) {
      assert.equal(read(ackId), null, ackId);
    }
    assert.equal(readCurrentAckId("sub1-1000000000.1.2.3.4", "sub1-1000000000.", "sub1", 1_000_000_000), null);
    assert.equal(readCurrentAckId(42 as unknown as string, "sub1-3.", "sub1", 3), null);
  });
});
