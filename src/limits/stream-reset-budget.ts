// nghttp2's rapid-reset protection, mirrored so a connection can be replaced gracefully before it trips.
import { TokenBucket } from "./token-bucket.js";

/**
 * nghttp2 (node's HTTP/2, so every node and grpc-js server) answers more than 1,000 RST_STREAMs from one client,
 * refilled at 33 per second, with GOAWAY INTERNAL_ERROR: every call on that connection fails (gRPC INTERNAL).
 * Node 20 cannot change those numbers. A connection that has used half of that budget is retired gracefully
 * instead (GOAWAY NO_ERROR: calls in flight finish, new ones go to a new connection).
 */
export const STREAM_RESET_BUDGET = { burst: 1_000, perSecond: 33, retireAfter: 500 } as const;

/** An nghttp2 RST_STREAM rate limit: `burst` resets at once, refilled at `perSecond`. */
export interface StreamResetLimit {
  readonly burst: number;
  readonly perSecond: number;
}

/** One connection's resets: a bucket of half nghttp2's burst at its refill rate; empty means retire. */
export class StreamResetBudget {
  private readonly bucket: TokenBucket;

  /**
   * `limit`: the nghttp2 limit the peer is held to (node's `streamResetBurst` / `streamResetRate` on a server
   * that sets them); the budget is half its burst at its rate. Default nghttp2's own.
   */
  constructor(nowMs: number = Date.now(), limit: StreamResetLimit = STREAM_RESET_BUDGET) {
    const retireAfter = limit === STREAM_RESET_BUDGET ? STREAM_RESET_BUDGET.retireAfter : Math.floor(limit.burst / 2);
    this.bucket = new TokenBucket(limit.perSecond, retireAfter, nowMs);
  }

  /** Counts one reset; true once the connection should be retired (and on every later reset). */
  spend(nowMs: number = Date.now()): boolean {
    return this.bucket.take(1, nowMs) !== 0;
  }
}
