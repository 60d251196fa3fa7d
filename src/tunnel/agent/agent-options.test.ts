// Agent options: defaults, clear refusals of bad input, full-jitter backoff bounds, and the body queue's backpressure.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code, StreamgateError } from "../../errors/index.js";
import { backoffDelayMs, resolveTunnelAgentOptions } from "./agent-options.js";
import { BodyQueue } from "./body-queue.js";

const rules = { source: "inline", upstreams: [], routes: [], warnings: [] };
const base = { serverUrl: "http://127.0.0.1:8080", token: "t", group: "g", rules };

describe("tunnel agent options", () => {
  it("agent options - defaults fill what is not given", () => {
    const resolved = resolveTunnelAgentOptions(base);
    assert.equal(resolved.serverUrl, "http://127.0.0.1:8080");
    assert.match(resolved.clientId, /-\d+$/);
    assert.equal(resolved.standbyStreams, 4);
    assert.equal(resolved.maxConcurrentStreams, 1000);
    assert.equal(resolved.maxMessageBytes, 4 * 1024 * 1024);
    assert.deepEqual(resolved.reconnect, { initialMs: 500, maxMs: 30_000 });
  });

  it("agent options - bad or contradicting options are INVALID_ARGUMENT naming the field", () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ serverUrl: "ftp://x" }, /^serverUrl: must start with http:\/\/ \(h2c\) or https:\/\//],
      [{ serverUrl: "not a url" }, /^serverUrl: not a URL/],
      [{ token: "" }, /^token: /],
      [{ group: "" }, /^group: /],
      [{ rulesPath: "agent.yaml" }, /^rules: give exactly one of rules and rulesPath/],
      [{ tls: { certPath: "c.pem" } }, /^tls: certPath and keyPath go together/],
      [{ reconnect: { initialMs: 1000, maxMs: 10 } }, /^reconnect.maxMs: must be >= reconnect.initialMs/],
      [{ maxConcurrentStreams: 0 }, /^maxConcurrentStreams: must be an integer >= 1/],
    ];
    for (const [override, message] of cases) {
      assert.throws(
        () => resolveTunnelAgentOptions({ ...base, ...override }),
        (error: unknown) =>
          error instanceof StreamgateError &&
          error.code === Code.INVALID_ARGUMENT &&
          error.reason === "INVALID_OPTION" &&
          message.test(error.message),
        JSON.stringify(override),
      );
    }
  });

  it("agent options - backoff is full jitter under an exponential cap", () => {
    const reconnect = { initialMs: 100, maxMs: 1_000 };
    assert.equal(
      backoffDelayMs(0, reconnect, () => 0),
      0,
    );
    assert.equal(
      backoffDelayMs(0, reconnect, () => 0.999),
      99,
    );
    assert.equal(
      backoffDelayMs(3, reconnect, () => 0.5),
      400,
    );
    assert.equal(
      backoffDelayMs(50, reconnect, () => 0.999),
      999,
    );
    for (let attempt = 0; attempt < 20; attempt++) {
      const delay = backoffDelayMs(attempt, reconnect);
      assert.ok(delay >= 0 && delay < Math.min(1_000, 100 * 2 ** attempt), `attempt ${attempt}: ${delay}`);
    }
  });
});

describe("tunnel agent body queue", () => {
  it("body queue - the producer waits while the queue is full and resumes as the consumer reads", async () => {
    const queue = new BodyQueue(10);
    assert.equal(queue.push(new Uint8Array(4)), undefined, "below the limit: nothing to wait for");
    let pushed = false;
    const full = queue.push(new Uint8Array(8));
    assert.ok(full !== undefined, "over the limit: the producer gets a promise to wait on");
    const blocked = full.then(() => {
      pushed = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(pushed, false, "12 bytes queued over a 10-byte limit: the producer waits");
    const iterator = queue[Symbol.asyncIterator]();
    // One read takes everything queued, joined: the forwarder writes once.
    assert.equal((await iterator.next()).value?.length, 12);
    await blocked;
    assert.equal(pushed, true);
    await queue.push(new Uint8Array(3));
    queue.end();
    assert.equal((await iterator.next()).value?.length, 3);
    assert.equal((await iterator.next()).done, true);
  });

  it("body queue - a failure reaches the consumer and releases a waiting producer", async () => {
    const queue = new BodyQueue(1);
    const waiting = queue.push(new Uint8Array(5));
    queue.fail(new Error("tunnel stream broke"));
    await waiting;
    const iterator = queue[Symbol.asyncIterator]();
    assert.equal((await iterator.next()).value?.length, 5);
    await assert.rejects(iterator.next(), /tunnel stream broke/);
  });
});
