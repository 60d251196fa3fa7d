// The engine chain's limits link: publish is rate-limited per principal and each StreamingPull stream counts as a subscription.
import type { PrincipalContext } from "../auth/principal-context.js";
import type { DeliveryStream } from "../engines/engine.js";
import type { EngineInterception, EngineInterceptor } from "../engines/engine-chain.js";
import type { KeyedCounter } from "./keyed-counter.js";
import type { KeyedRateLimiter } from "./keyed-rate-limiter.js";
import { rateLimitedError, tooManyPrincipalSubscriptionsError } from "./limit-errors.js";
import { LimitName } from "./limits-options.js";

/** The name of the limits link of the engine chain. */
export const LIMITS_INTERCEPTOR = "limits";

export interface EngineLimits {
  /** Null when the publish rate is unlimited. */
  publishRate: KeyedRateLimiter | null;
  publishRatePerSecond: number;
  subscriptions: KeyedCounter;
  onLimited(limit: LimitName): void;
}

/**
 * The limits link: `publish` (only when a publish rate is set) and `openStream` count against the caller's
 * principal id; calls without a principal (internal work) are not limited. Every other method passes through.
 */
export function limitsInterceptor(limits: EngineLimits): EngineInterceptor<PrincipalContext> {
  return {
    name: LIMITS_INTERCEPTOR,
    intercept(next, context) {
      const calls: EngineInterception = {
        openStream(name, options): DeliveryStream {
          const key = context.principal?.id;
          if (key === undefined) return next.openStream(name, options);
          const release = limits.subscriptions.tryAcquire(key);
          if (release === null) {
            limits.onLimited(LimitName.subscriptionsPerPrincipal);
            throw tooManyPrincipalSubscriptionsError(limits.subscriptions.max);
          }
          if (options.signal.aborted) release();
          else options.signal.addEventListener("abort", release, { once: true });
          try {
            return next.openStream(name, options);
          } catch (error) {
            release();
            throw error;
          }
        },
      };
      const publishRate = limits.publishRate;
      if (publishRate !== null) {
        calls.publish = (topic, messages) => {
          const key = context.principal?.id;
          if (key !== undefined) {
            const waitMs = publishRate.take(key, messages.length);
            if (waitMs > 0) {
              limits.onLimited(LimitName.publish);
              return Promise.reject(rateLimitedError(waitMs, limits.publishRatePerSecond));
            }
          }
          return next.publish(topic, messages);
        };
      }
      return calls;
    },
  };
}
