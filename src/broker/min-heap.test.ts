// The deadline heap: pops in order, and retain() sweeps items out while keeping that order.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MinHeap } from "./min-heap.js";

function drain(heap: MinHeap<{ at: number }>): number[] {
  const out: number[] = [];
  for (let item = heap.pop(); item !== undefined; item = heap.pop()) out.push(item.at);
  return out;
}

describe("min heap", () => {
  it("min heap - pops the smallest first, and after retain() only the kept items, still in order", () => {
    const heap = new MinHeap<{ at: number }>();
    const values = Array.from({ length: 5000 }, (_, index) => (index * 7919) % 5003);
    for (const at of values) heap.push({ at });
    heap.retain((item) => item.at % 3 !== 0);
    assert.equal(heap.size, values.filter((at) => at % 3 !== 0).length);
    const expected = values.filter((at) => at % 3 !== 0).sort((a, b) => a - b);
    assert.deepEqual(drain(heap), expected);
    for (const at of [5, 1, 3]) heap.push({ at });
    heap.retain(() => false);
    assert.equal(heap.size, 0);
    assert.equal(heap.pop(), undefined);
  });
});
