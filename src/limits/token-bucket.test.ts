// Token bucket and keyed limiter behaviour under an injected clock.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KeyedCounter } from "./keyed-counter.js";
import { KeyedRateLimiter } from "./keyed-rate-limiter.js";
import { connectionLimitKey } from "./principal-key.js";
import { TokenBucket } from "./token-bucket.js";

describe("token bucket", () => {
  it("limits - a bucket passes its burst at once, then refills at the rate", () => {
    const bucket = new TokenBucket(10, 20, 0);
    assert.equal(bucket.take(20, 0), 0);
    assert.equal(bucket.take(1, 0), 100, "one token takes 100 ms at 10/s");
    assert.equal(bucket.take(1, 50), 50);
    assert.equal(bucket.take(1, 100), 0);
    assert.equal(bucket.take(5, 100), 500);
    assert.equal(bucket.take(5, 600), 0);
  });

  it("limits - a refused take charges nothing", () => {
    const bucket = new TokenBucket(1, 2, 0);
    assert.equal(bucket.take(2, 0), 0);
    for (let i = 0; i < 100; i++) assert.ok(bucket.take(1, 0) > 0);
    assert.equal(bucket.take(1, 1000), 0);
  });

  it("limits - a take larger than the burst passes with a full bucket only", () => {
    const bucket = new TokenBucket(100, 10, 0);
    assert.equal(bucket.take(50, 0), 0);
    assert.equal(bucket.take(50, 50), 50, "needs the full 10 tokens again");
    assert.equal(bucket.take(50, 100), 0);
  });

  it("limits - tokens never exceed the burst and a clock stepping back refills nothing", () => {
    const bucket = new TokenBucket(1000, 5, 0);
    assert.ok(bucket.isFull(1_000_000));
    assert.equal(bucket.take(5, 1_000_000), 0);
    assert.ok(bucket.take(1, 0) > 0, "an earlier time does not refill");
    assert.equal(bucket.isFull(1_000_005), true);
  });

  it("limits - invalid rate or burst is refused", () => {
    assert.throws(() => new TokenBucket(0, 1, 0), RangeError);
    assert.throws(() => new TokenBucket(1, 0, 0), RangeError);
    assert.throws(() => new TokenBucket(Number.NaN, 1, 0), RangeError);
  });
});

describe("keyed rate limiter", () => {
  it("limits - each key has its own bucket", () => {
    let now = 0;
    const limiter = new KeyedRateLimiter({ ratePerSecond: 1, burst: 3, now: () => now });
    assert.equal(limiter.take("a", 3), 0);
    assert.ok(limiter.take("a", 1) > 0);
    assert.equal(limiter.take("b", 3), 0, "b is not slowed by a");
    now = 1000;
    assert.equal(limiter.take("a", 1), 0);
  });

  it("limits - idle keys expire and the table never grows past maxKeys", () => {
    let now = 0;
    const limiter = new KeyedRateLimiter({ ratePerSecond: 10, burst: 10, maxKeys: 100, now: () => now });
    for (let i = 0; i < 10_000; i++) limiter.take(`flood-${i}`, 1);
    assert.equal(limiter.size, 100);
    // The most recently used keys stay; a key used again moves to the back.
    limiter.take("kept", 10);
    assert.ok(limiter.take("kept", 1) > 0, "kept is still charged");
    now = 2_000;
    limiter.sweep();
    assert.equal(limiter.size, 0, "refilled buckets are dropped");
  });

  it("limits - the sweep runs by itself as keys are used", () => {
    let now = 0;
    const limiter = new KeyedRateLimiter({ ratePerSecond: 1000, burst: 1, now: () => now });
    for (let i = 0; i < 1000; i++) limiter.take(`k${i}`, 1);
    now = 10;
    for (let i = 0; i < 100; i++) limiter.take("same", 0);
    assert.ok(limiter.size <= 1, `size ${limiter.size} after the periodic sweep`);
  });
});

describe("keyed counter", () => {
  it("limits - a key holds at most max, releases free a slot once, and empty keys are forgotten", () => {
    const counter = new KeyedCounter(2);
    const first = counter.tryAcquire("ip");
    const second = counter.tryAcquire("ip");
    assert.ok(first !== null && second !== null);
    assert.equal(counter.tryAcquire("ip"), null);
    assert.ok(counter.tryAcquire("other") !== null);
    first();
    first();
    assert.equal(counter.held("ip"), 1);
    assert.ok(counter.tryAcquire("ip") !== null);
    assert.equal(counter.tryAcquire("ip"), null);
    const unlimited = new KeyedCounter(0);
    for (let i = 0; i < 10; i++) unlimited.tryAcquire("x");
    assert.equal(unlimited.held("x"), 10);
  });
});

describe("connection limit key", () => {
  it("limits - IPv4 (also mapped into IPv6) counts per address, IPv6 per /64", () => {
    assert.equal(connectionLimitKey("10.1.2.3"), "10.1.2.3");
    assert.equal(connectionLimitKey("::ffff:10.1.2.3"), "10.1.2.3");
    assert.equal(connectionLimitKey("2001:db8:0:1::5"), "2001:db8:0:1::/64");
    assert.equal(connectionLimitKey("2001:0db8:0000:0001:aaaa:bbbb:cccc:dddd"), "2001:db8:0:1::/64");
    assert.equal(connectionLimitKey("::1"), "0:0:0:0::/64");
    assert.equal(connectionLimitKey("fe80::1%eth0"), "fe80:0:0:0::/64");
    assert.equal(connectionLimitKey(undefined), "unknown");
  });
});
