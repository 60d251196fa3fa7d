// The worker's ready queue: sequence order, hand-outs that take from the front or pass some over, compaction.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TrackedState } from "../../broker/tracked-message.js";
import { ReadyQueue } from "./ready-queue.js";

interface Item {
  sequence: number;
  state: TrackedState;
}

const item = (sequence: number): Item => ({ sequence, state: TrackedState.ready });
const sequences = (queue: ReadyQueue<Item>) =>
  Array.from({ length: queue.length }, (_, index) => queue.at(index)!.sequence);

describe("ready queue", () => {
  it("ready queue - keeps sequence order whatever the insertion order, without duplicates", () => {
    const queue = new ReadyQueue<Item>();
    const five = item(5);
    for (const entry of [item(3), five, item(1), item(4), five, item(2)]) queue.insert(entry);
    assert.deepEqual(sequences(queue), [1, 2, 3, 4, 5]);
  });

  it("ready queue - hand-outs from the front, then an insert behind them and a pass-over keep the order", () => {
    const queue = new ReadyQueue<Item>();
    const items = Array.from({ length: 3_000 }, (_, index) => item(index + 1));
    for (const entry of items) queue.insert(entry);
    for (let taken = 0; taken < 2_000; taken += 500) {
      for (let index = 0; index < 500; index++) queue.at(index)!.state = TrackedState.leased;
      queue.consumed(500, []);
    }
    assert.equal(queue.length, 1_000);
    assert.equal(queue.at(0)!.sequence, 2_001);
    // A redelivery of an earlier message goes back in order, ahead of the rest.
    const back = items[9]!;
    back.state = TrackedState.ready;
    queue.insert(back);
    assert.deepEqual(sequences(queue).slice(0, 2), [10, 2_001]);
    // A hand-out that passed over 10 (its key is bound elsewhere) and took 2,001..2,003.
    for (let index = 1; index <= 3; index++) queue.at(index)!.state = TrackedState.leased;
    queue.consumed(4, [back]);
    assert.deepEqual(sequences(queue).slice(0, 2), [10, 2_004]);
    assert.equal(queue.length, 998);
  });

  it("ready queue - compact drops entries that left the ready state; clear empties it", () => {
    const queue = new ReadyQueue<Item>();
    const items = Array.from({ length: 10 }, (_, index) => item(index + 1));
    for (const entry of items) queue.insert(entry);
    queue.consumed(2, []);
    items[4]!.state = TrackedState.done;
    items[7]!.state = TrackedState.leased;
    queue.compact();
    assert.deepEqual(sequences(queue), [3, 4, 6, 7, 9, 10]);
    queue.clear();
    assert.equal(queue.length, 0);
    queue.insert(item(1));
    assert.deepEqual(sequences(queue), [1]);
  });
});
