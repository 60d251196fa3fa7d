// A token bucket: `ratePerSecond` tokens refill continuously up to `burst`; a take of n succeeds when n tokens are there.

/**
 * One bucket, pure: the caller passes the current time, so tests drive the clock. A take larger
 * than the burst is charged as the burst (it passes only with a full bucket), so a big batch is
 * never refused forever.
 */
export class TokenBucket {
  private tokens: number;
  private updatedMs: number;

  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
    nowMs: number,
  ) {
    if (!(ratePerSecond > 0) || !Number.isFinite(ratePerSecond)) throw new RangeError("ratePerSecond must be > 0");
    if (!(burst >= 1) || !Number.isFinite(burst)) throw new RangeError("burst must be >= 1");
    this.tokens = burst;
    this.updatedMs = nowMs;
  }

  /**
   * Takes `cost` tokens if they are there and returns 0; otherwise takes nothing and returns the
   * milliseconds until they will be (the `retry-after` a client should wait).
   */
  take(cost: number, nowMs: number): number {
    this.refill(nowMs);
    const charged = Math.min(Math.max(cost, 0), this.burst);
    if (this.tokens >= charged) {
      this.tokens -= charged;
      return 0;
    }
    return Math.ceil(((charged - this.tokens) * 1000) / this.ratePerSecond);
  }

  /** True once the bucket has refilled completely: it then equals a fresh bucket and may be dropped. */
  isFull(nowMs: number): boolean {
    this.refill(nowMs);
    return this.tokens >= this.burst;
  }

  private refill(nowMs: number): void {
    // A clock that steps back refills nothing rather than draining the bucket.
    const elapsedMs = Math.max(0, nowMs - this.updatedMs);
    this.tokens = Math.min(this.burst, this.tokens + (elapsedMs * this.ratePerSecond) / 1000);
    this.updatedMs = Math.max(this.updatedMs, nowMs);
  }
}
