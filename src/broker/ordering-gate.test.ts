// Unit tests of the ordering gate: frontier per key, several leased at once, revoke and out-of-order arrivals.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OrderingGate } from "./ordering-gate.js";
import { type Consumer, type TrackedMessage, TrackedState } from "./tracked-message.js";

function tracked(offset: number, orderingKey = "k"): TrackedMessage {
  return {
    message: {
      offset,
      messageId: String(offset),
      publishTimeMs: 0,
      data: new Uint8Array(),
      attributes: {},
      orderingKey,
    },
    size: 0,
    state: TrackedState.done,
    attempt: 0,
    version: 0,
    deadlineMs: 0,
    holder: null,
  };
}

function stream(): Consumer {
  return {
    leaseMs: 10_000,
    keyAffinity: true,
    capacity: () => ({ messages: 1, bytes: 1, idle: true }),
    accept: () => undefined,
    release: () => undefined,
  };
}

/** Admits `message` and applies the verdict the way the dispatchers do. */
function admit(gate: OrderingGate, message: TrackedMessage): boolean {
  const { deliverable, displaced } = gate.admit(message);
  for (const item of displaced) item.state = TrackedState.held;
  message.state = deliverable ? TrackedState.ready : TrackedState.held;
  return deliverable;
}

function lease(gate: OrderingGate, message: TrackedMessage, holder: Consumer): TrackedMessage | undefined {
  message.state = TrackedState.leased;
  message.holder = holder;
  const next = gate.leased(message);
  if (next !== undefined) next.state = TrackedState.ready;
  return next;
}

describe("ordering gate", () => {
  it("ordering gate - a key's messages are leased one after another, several at once, other keys apart", () => {
    const gate = new OrderingGate();
    const [a1, a2, a3] = [tracked(1), tracked(2), tracked(3)];
    const b1 = tracked(4, "other");
    assert.equal(admit(gate, a1!), true);
    assert.equal(admit(gate, a2!), false, "held behind a1");
    assert.equal(admit(gate, a3!), false);
    assert.equal(admit(gate, b1), true, "another key is independent");
    const holder = stream();
    assert.equal(lease(gate, a1!, holder), a2, "leasing a1 makes a2 deliverable");
    assert.equal(lease(gate, a2!, holder), a3);
    assert.equal(gate.owner(a3!), holder, "the key stays with the stream that holds a1 and a2");
    a1!.state = TrackedState.done;
    assert.equal(gate.finish(a1!), undefined, "acking a leased message changes no frontier");
  });

  it("ordering gate - revoking a lease takes back every later leased message of its key", () => {
    const gate = new OrderingGate();
    const messages = [1, 2, 3, 4].map((offset) => tracked(offset));
    for (const message of messages) admit(gate, message);
    const holder = stream();
    for (const message of messages.slice(0, 3)) lease(gate, message, holder);
    assert.equal(messages[3]!.state, TrackedState.ready);
    messages[1]!.state = TrackedState.ready; // its lease ended (nack)
    assert.deepEqual(gate.revoke(messages[1]!), [messages[2], messages[3]], "3 (leased) and 4 (ready) wait again");
    for (const item of [messages[2]!, messages[3]!]) item.state = TrackedState.held;
    assert.equal(gate.isFrontier(messages[1]!), true);
    assert.equal(gate.isFrontier(messages[2]!), false);
    assert.equal(lease(gate, messages[1]!, holder), messages[2], "after 2 is leased again, 3 follows");
  });

  it("ordering gate - an earlier message arriving late (a redelivery) takes the frontier back", () => {
    const gate = new OrderingGate();
    const [m2, m3, m1] = [tracked(2), tracked(3), tracked(1)];
    admit(gate, m2!);
    admit(gate, m3!);
    const holder = stream();
    lease(gate, m2!, holder);
    const { deliverable, displaced } = gate.admit(m1!);
    assert.equal(deliverable, true);
    assert.deepEqual(displaced, [m2, m3], "2 was leased and 3 deliverable: both wait behind 1");
  });

  it("ordering gate - finishing the frontier makes the next held message deliverable; an empty key is forgotten", () => {
    const gate = new OrderingGate();
    const [m1, m2] = [tracked(1), tracked(2)];
    admit(gate, m1!);
    admit(gate, m2!);
    m1!.state = TrackedState.done; // acked before it was leased again
    assert.equal(gate.finish(m1!), m2);
    m2!.state = TrackedState.done;
    assert.equal(gate.finish(m2!), undefined);
    assert.equal(admit(gate, tracked(3)), true, "a new message of the key is deliverable at once");
  });
});
