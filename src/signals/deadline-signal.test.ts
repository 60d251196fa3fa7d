// Deadline signals: abort on time under garbage-collection pressure, follow the parent, release the timer.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { createDeadlineSignal } from "./deadline-signal.js";

setFlagsFromString("--expose-gc");
const collectGarbage = runInNewContext("gc") as () => void;

describe("deadline signal", () => {
  it("deadline signal - aborts at its deadline while garbage is collected in between", async () => {
    const parent = new AbortController();
    const started = Date.now();
    const aborted = new Promise<void>((resolve) => {
      // Only the listener refers to the signal: nothing else holds it while collections run.
      createDeadlineSignal(parent.signal, 100).signal.addEventListener("abort", () => resolve(), { once: true });
    });
    const collecting = setInterval(collectGarbage, 10);
    try {
      const outcome = await Promise.race([
        aborted.then(() => "aborted"),
        new Promise((resolve) => setTimeout(resolve, 2_000, "never aborted")),
      ]);
      assert.equal(outcome, "aborted");
      assert.ok(Date.now() - started >= 95);
    } finally {
      clearInterval(collecting);
    }
  });

  it("deadline signal - the time limit aborts with a TimeoutError and says so", async () => {
    const deadline = createDeadlineSignal(undefined, 10);
    await new Promise((resolve) => deadline.signal.addEventListener("abort", resolve, { once: true }));
    assert.equal(deadline.timedOut, true);
    assert.equal((deadline.signal.reason as DOMException).name, "TimeoutError");
  });

  it("deadline signal - the parent's abort passes through with its reason, and an aborted parent aborts at once", () => {
    const parent = new AbortController();
    const deadline = createDeadlineSignal(parent.signal, 60_000);
    parent.abort(new Error("client went away"));
    assert.equal(deadline.signal.aborted, true);
    assert.equal(deadline.timedOut, false);
    assert.equal((deadline.signal.reason as Error).message, "client went away");
    const late = createDeadlineSignal(parent.signal, 60_000);
    assert.equal(late.signal.aborted, true);
  });

  it("deadline signal - dispose releases the timer and the parent listener", async () => {
    const parent = new AbortController();
    const deadline = createDeadlineSignal(parent.signal, 20);
    deadline.dispose();
    await new Promise((resolve) => setTimeout(resolve, 50));
    parent.abort();
    assert.equal(deadline.signal.aborted, false);
  });
});
