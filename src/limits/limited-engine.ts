// Decorates an Engine: publish is rate-limited per principal and each StreamingPull stream counts as a subscription.
import type { DeliveryStream, Engine } from "../engines/engine.js";
import type { KeyedCounter } from "./keyed-counter.js";
import type { KeyedRateLimiter } from "./keyed-rate-limiter.js";
import { rateLimitedError, tooManyPrincipalSubscriptionsError } from "./limit-errors.js";
import { LimitName } from "./limits-options.js";
import { currentLimitKey } from "./principal-key.js";

export interface EngineLimits {
  /** Null when the publish rate is unlimited. */
  publishRate: KeyedRateLimiter | null;
  publishRatePerSecond: number;
  subscriptions: KeyedCounter;
  onLimited(limit: LimitName): void;
}

/** Returns `engine` with publish and openStream limited; every other method passes through. */
export function limitEngine(engine: Engine, limits: EngineLimits): Engine {
  const overrides: Partial<Engine> = {
    publish(topic, messages) {
      const key = currentLimitKey();
      if (key !== undefined && limits.publishRate !== null) {
        const waitMs = limits.publishRate.take(key, messages.length);
        if (waitMs > 0) {
          limits.onLimited(LimitName.publish);
          return Promise.reject(rateLimitedError(waitMs, limits.publishRatePerSecond));
        }
      }
      return engine.publish(topic, messages);
    },
    openStream(name, options): DeliveryStream {
      const key = currentLimitKey();
      if (key === undefined) return engine.openStream(name, options);
      const release = limits.subscriptions.tryAcquire(key);
      if (release === null) {
        limits.onLimited(LimitName.subscriptionsPerPrincipal);
        throw tooManyPrincipalSubscriptionsError(limits.subscriptions.max);
      }
      if (options.signal.aborted) release();
      else options.signal.addEventListener("abort", release, { once: true });
      try {
        return engine.openStream(name, options);
      } catch (error) {
        release();
        throw error;
      }
    },
  };
  return new Proxy(engine, {
    get(target, property, receiver) {
      if (typeof property === "string" && property in overrides) return overrides[property as keyof Engine];
      const value = Reflect.get(target, property, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
