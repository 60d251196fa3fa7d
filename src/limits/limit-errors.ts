// The errors a refused request gets: RESOURCE_EXHAUSTED with a stable reason (HTTP 429, WebSocket close 1008).
import { Code, StreamgateError } from "../errors/index.js";

/** Publish over the principal's rate; `details.retryAfterSeconds` becomes HTTP `retry-after`. */
export function rateLimitedError(waitMs: number, ratePerSecond: number): StreamgateError {
  const retryAfterSeconds = Math.max(1, Math.ceil(waitMs / 1000));
  return new StreamgateError(
    Code.RESOURCE_EXHAUSTED,
    `publish rate limit of ${ratePerSecond} messages/s exceeded for this principal; retry in ${retryAfterSeconds} s`,
    { reason: "RATE_LIMITED", details: { limit: "publish", retryAfterSeconds: String(retryAfterSeconds) } },
  );
}

/** A client IP over `--max-connections-per-ip`. */
export function tooManyConnectionsError(max: number): StreamgateError {
  return new StreamgateError(
    Code.RESOURCE_EXHAUSTED,
    `too many connections from this address (limit ${max}); close some and retry`,
    { reason: "TOO_MANY_CONNECTIONS", details: { limit: "connections_per_ip", retryAfterSeconds: "1" } },
  );
}

/** A principal over `--max-connections-per-principal` long-lived streams. */
export function tooManyPrincipalConnectionsError(max: number): StreamgateError {
  return new StreamgateError(
    Code.RESOURCE_EXHAUSTED,
    `too many open streams for this principal (limit ${max}); close some and retry`,
    { reason: "TOO_MANY_PRINCIPAL_CONNECTIONS", details: { limit: "connections_per_principal" } },
  );
}

/** A principal over `--max-subscriptions-per-principal` live subscriptions. */
export function tooManyPrincipalSubscriptionsError(max: number): StreamgateError {
  return new StreamgateError(
    Code.RESOURCE_EXHAUSTED,
    `too many live subscriptions for this principal (limit ${max}); unsubscribe some and retry`,
    { reason: "TOO_MANY_PRINCIPAL_SUBSCRIPTIONS", details: { limit: "subscriptions_per_principal" } },
  );
}
