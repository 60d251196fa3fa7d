// Reading a delivery's `$JS.ACK` reply subject in place: the same numbers as splitting it, and ack ids as encodeJetStreamAckId writes them.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeJetStreamAckId, encodeJetStreamAckId, parseAckSubject } from "./ack-id.js";
import { parseDeliveryReply } from "./delivery-reply.js";

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
});
