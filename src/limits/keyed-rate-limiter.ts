// One token bucket per key (principal), in a table whose size is capped and whose idle entries expire.
import { TokenBucket } from "./token-bucket.js";

export interface KeyedRateLimiterOptions {
  ratePerSecond: number;
  burst: number;
  /**
   * Most keys held at once. Past it the least recently used key is dropped (it starts again with a
   * full bucket), so a flood of distinct ids costs bounded memory. Default 100 000 (about 10 MB).
   */
  maxKeys?: number;
  /** Current time in ms; tests inject a clock. Default Date.now. */
  now?: () => number;
}

/** Decides, per key, whether `cost` units may pass now. */
export class KeyedRateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly maxKeys: number;
  private readonly now: () => number;
  private readonly ratePerSecond: number;
  private readonly burst: number;
  private takesSinceSweep = 0;

  constructor(options: KeyedRateLimiterOptions) {
    this.ratePerSecond = options.ratePerSecond;
    this.burst = options.burst;
    this.maxKeys = options.maxKeys ?? 100_000;
    this.now = options.now ?? Date.now;
    // Validates rate and burst once, with the bucket's own checks.
    new TokenBucket(this.ratePerSecond, this.burst, 0);
  }

  /** 0 when `cost` may pass (and is charged to `key`); otherwise the ms until it could. */
  take(key: string, cost: number): number {
    const nowMs = this.now();
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      bucket = new TokenBucket(this.ratePerSecond, this.burst, nowMs);
    } else {
      // Re-inserted below: Map order is then least recently used first.
      this.buckets.delete(key);
    }
    const waitMs = bucket.take(cost, nowMs);
    this.buckets.set(key, bucket);
    if (++this.takesSinceSweep >= 1024) this.sweep(nowMs);
    while (this.buckets.size > this.maxKeys) {
      const oldest = this.buckets.keys().next().value as string;
      this.buckets.delete(oldest);
    }
    return waitMs;
  }

  /** Keys currently held (for tests and metrics). */
  get size(): number {
    return this.buckets.size;
  }

  /** Drops buckets that refilled completely: they are indistinguishable from new ones. */
  sweep(nowMs: number = this.now()): void {
    this.takesSinceSweep = 0;
    for (const [key, bucket] of this.buckets) if (bucket.isFull(nowMs)) this.buckets.delete(key);
  }
}
