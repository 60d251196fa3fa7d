// Public surface of limits: per-IP and per-principal connection, subscription and publish-rate limits.
import type { PrincipalContext } from "../auth/principal-context.js";
import type { EngineInterceptor } from "../engines/engine-chain.js";
import type { StreamHub } from "../streams/index.js";
import { KeyedCounter } from "./keyed-counter.js";
import { KeyedRateLimiter } from "./keyed-rate-limiter.js";
import { tooManyPrincipalConnectionsError } from "./limit-errors.js";
import { limitHub } from "./limited-hub.js";
import { limitsInterceptor } from "./limits-interceptor.js";
import { LimitName, type LimitsOptions } from "./limits-options.js";
import { connectionLimitKey, currentLimitKey } from "./principal-key.js";

export { KeyedCounter } from "./keyed-counter.js";
export { KeyedRateLimiter, type KeyedRateLimiterOptions } from "./keyed-rate-limiter.js";
export {
  rateLimitedError,
  tooManyConnectionsError,
  tooManyPrincipalConnectionsError,
  tooManyPrincipalSubscriptionsError,
} from "./limit-errors.js";
export { type EngineLimits, LIMITS_INTERCEPTOR, limitsInterceptor } from "./limits-interceptor.js";
export { checkLimitsOptions, defaultLimitsOptions, LimitName, type LimitsOptions } from "./limits-options.js";
export { anonymousPrincipal, connectionLimitKey, currentLimitKey, normalizeAddress } from "./principal-key.js";
export { refusePlainSocket } from "./socket-refusal.js";
export { TokenBucket } from "./token-bucket.js";

/** The server's limits: one instance per server, shared by every transport. */
export interface Limits {
  readonly options: LimitsOptions;
  /** The limits link of the engine chain: publish rate-limited and StreamingPull streams counted per principal. */
  readonly interceptor: EngineInterceptor<PrincipalContext>;
  /** `hub` with live subscriptions counted per principal. */
  limitHub(hub: StreamHub): StreamHub;
  /** At accept: a release function for a connection from `remoteAddress`, or null when that IP (IPv6: its /64) is at its limit. */
  admitConnection(remoteAddress: string | undefined): (() => void) | null;
  /**
   * For a long-lived stream of the current principal: a release function.
   * @throws StreamgateError RESOURCE_EXHAUSTED (TOO_MANY_PRINCIPAL_CONNECTIONS) at the limit.
   */
  admitStream(): () => void;
}

export interface LimitsHooks {
  /** Called once per refused request or connection (the `streamgate_rate_limited_total` counter). */
  onLimited?(limit: LimitName): void;
  /** Clock of the publish buckets; tests inject one. Default Date.now. */
  now?: () => number;
}

export function createLimits(options: LimitsOptions, hooks: LimitsHooks = {}): Limits {
  const onLimited = hooks.onLimited ?? (() => undefined);
  const perIp = new KeyedCounter(options.maxConnectionsPerIp);
  const streams = new KeyedCounter(options.maxConnectionsPerPrincipal);
  const subscriptions = new KeyedCounter(options.maxSubscriptionsPerPrincipal);
  const publishRate =
    options.publishRate > 0
      ? new KeyedRateLimiter({
          ratePerSecond: options.publishRate,
          burst: options.publishBurst,
          ...(hooks.now === undefined ? {} : { now: hooks.now }),
        })
      : null;
  const noop = () => undefined;
  return {
    options,
    interceptor: limitsInterceptor({
      publishRate,
      publishRatePerSecond: options.publishRate,
      subscriptions,
      onLimited,
    }),
    limitHub: (hub) => limitHub(hub, subscriptions, onLimited),
    admitConnection(remoteAddress) {
      const release = perIp.tryAcquire(connectionLimitKey(remoteAddress));
      if (release === null) onLimited(LimitName.connectionsPerIp);
      return release;
    },
    admitStream() {
      const key = currentLimitKey();
      if (key === undefined) return noop;
      const release = streams.tryAcquire(key);
      if (release !== null) return release;
      onLimited(LimitName.connectionsPerPrincipal);
      throw tooManyPrincipalConnectionsError(options.maxConnectionsPerPrincipal);
    },
  };
}
