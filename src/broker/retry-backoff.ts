// Redelivery delay under a subscription's retry policy (exponential backoff, as Pub/Sub computes it).
import type { RetryPolicy } from "./types.js";

/**
 * Delay before redelivering a message whose delivery `attempt` (1-based) was nacked or expired:
 * `min(maximumBackoff, minimumBackoff * 2^(attempt-1))`; 0 (immediate) without a policy.
 */
export function retryDelayMs(policy: RetryPolicy | null, attempt: number): number {
  if (policy === null) return 0;
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  return Math.min(policy.maximumBackoffMs, policy.minimumBackoffMs * 2 ** exponent);
}
