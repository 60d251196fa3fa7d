// The engine chain of the server: the one place that says which interceptors wrap the engine, and in what order.
import type { PrincipalContext } from "../auth/principal-context.js";
import { currentPrincipal } from "../auth/principal-context.js";
import type { Engine } from "../engines/engine.js";
import { chainEngine, type EngineChain, type EngineInterceptor } from "../engines/engine-chain.js";
import { currentTraceContext, type TracingContext } from "../observability/trace-context.js";

/** What the server's interceptors read of a request. */
export type RequestContext = PrincipalContext & TracingContext;

/**
 * The request context of every call through the chain: one object whose fields read the request's async context
 * when (and only when) an interceptor reads them.
 */
export const requestContext: RequestContext = {
  get principal() {
    return currentPrincipal();
  },
  get trace() {
    return currentTraceContext();
  },
};

/** The links of the server's chain. */
export interface EngineChainLinks {
  /** Grant checks (auth.ts); intercepts nothing when auth is off. */
  authorization: EngineInterceptor<RequestContext>;
  /** Per-principal publish rate and subscriptions (src/limits). */
  limits: EngineInterceptor<RequestContext>;
  /** Resource calls tell the push worker about projects (src/transports/push). */
  push: EngineInterceptor<RequestContext>;
  /** Publish and delivery counts, the publish trace attribute, stream log lines (src/observability). */
  metrics: EngineInterceptor<RequestContext>;
}

/**
 * Wraps `engine` in the server's interceptors, outermost first (docs/architecture.md, "The engine chain"):
 * authorization → limits → push → metrics → engine. A refused call goes no further: a denied publish takes no
 * rate budget, a rate-limited one is not counted. The transports call `chain.engine`; background work, which has
 * no caller, enters lower: the stream hub at `limits`, the push worker at `metrics`.
 */
export function createEngineChain(engine: Engine, links: EngineChainLinks): EngineChain {
  return chainEngine(engine, requestContext, [links.authorization, links.limits, links.push, links.metrics]);
}
