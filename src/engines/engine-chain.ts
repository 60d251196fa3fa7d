// The Engine wrapped by one ordered chain of interceptors (auth, limits, push observation, metrics): no Proxy, no per-call wrapping.
import type { Engine } from "./engine.js";

/** The names of the Engine's methods (everything but the `kind` and `schemas` properties). */
export type EngineMethod = {
  [Name in keyof Engine]: Engine[Name] extends (...args: never[]) => unknown ? Name : never;
}[keyof Engine];

/**
 * Every Engine method, once: the chain copies each from the layer below unless an interceptor replaces it.
 * A `Record` so that an Engine method missing here fails the typecheck.
 */
const methodTable: Record<EngineMethod, true> = {
  createTopic: true,
  getTopic: true,
  updateTopic: true,
  listTopics: true,
  deleteTopic: true,
  publish: true,
  readTopic: true,
  offsetAtTime: true,
  topicStats: true,
  watchTopic: true,
  createSubscription: true,
  getSubscription: true,
  updateSubscription: true,
  listSubscriptions: true,
  listProjects: true,
  listTopicSubscriptions: true,
  deleteSubscription: true,
  detachSubscription: true,
  pull: true,
  openStream: true,
  acknowledge: true,
  modifyAckDeadline: true,
  seek: true,
  subscriptionStats: true,
  createSnapshot: true,
  getSnapshot: true,
  updateSnapshot: true,
  listSnapshots: true,
  listTopicSnapshots: true,
  deleteSnapshot: true,
  getIamPolicy: true,
  setIamPolicy: true,
  testIamPermissions: true,
  storedIamPolicy: true,
  ready: true,
  close: true,
};

/** Every Engine method name. */
export const ENGINE_METHODS = Object.keys(methodTable) as readonly EngineMethod[];

/**
 * What an interceptor puts in front of the layer below: the methods it handles (each calling `next`'s own,
 * or refusing) and, optionally, the schema registry. Whatever it leaves out passes straight through.
 */
export type EngineInterception = Partial<Pick<Engine, EngineMethod | "schemas">>;

/**
 * One link of the chain. `intercept` runs once, when the chain is built (like a connect-es interceptor,
 * `next => call`): it gets the engine the rest of the chain forms and the request context, and returns the
 * methods it handles, each closing over `next` — so a call allocates nothing for the chain itself, and a method
 * no interceptor handles is the engine's own function, bound once, at every layer.
 *
 * `Context` is what the interceptor reads of the current request (its principal, its trace context): an object
 * whose fields are read on demand, so a call whose interceptors do not read them costs nothing.
 */
export interface EngineInterceptor<Context = unknown> {
  /** Names the link (`authorization`, `limits`, ...): {@link EngineChain.enteringAt} and the docs use it. */
  readonly name: string;
  intercept(next: Engine, context: Context): EngineInterception;
}

/** An engine behind its interceptors, and the view from each link inward. */
export interface EngineChain {
  /** Through every interceptor, outermost first: what the transports call. */
  readonly engine: Engine;
  /** The interceptors' names, outermost first. */
  readonly names: readonly string[];
  /** The engine itself, methods bound: no interceptor. */
  readonly base: Engine;
  /**
   * The chain entered at the interceptor `name`: it and the ones after it, not the ones before (background work,
   * which runs as no caller, enters below authorization).
   * @throws Error for a name that is not in the chain (a wiring mistake).
   */
  enteringAt(name: string): Engine;
}

/** `engine` with its methods bound once, as a plain object the layers copy functions from. */
function bound(engine: Engine): Engine {
  const layer: Record<string, unknown> = { kind: engine.kind, schemas: engine.schemas };
  for (const method of ENGINE_METHODS) layer[method] = engine[method].bind(engine);
  return layer as unknown as Engine;
}

/** `next` with `interception` in front; `next` itself when the interceptor handles nothing. */
function layerOver(next: Engine, interception: EngineInterception): Engine {
  let handled = false;
  const layer: Record<string, unknown> = { kind: next.kind, schemas: interception.schemas ?? next.schemas };
  if (interception.schemas !== undefined) handled = true;
  for (const method of ENGINE_METHODS) {
    const own = interception[method];
    if (own !== undefined) handled = true;
    layer[method] = own ?? next[method];
  }
  return handled ? (layer as unknown as Engine) : next;
}

/**
 * Wraps `engine` in `interceptors`, outermost first: a call to `chain.engine` meets `interceptors[0]`, which
 * calls the next, and so on down to the engine. Each interceptor's `intercept` runs once here, innermost first.
 * @throws Error when two interceptors have the same name.
 */
export function chainEngine<Context>(
  engine: Engine,
  context: Context,
  interceptors: readonly EngineInterceptor<Context>[],
): EngineChain {
  const names = interceptors.map((interceptor) => interceptor.name);
  const duplicate = names.find((name, index) => names.indexOf(name) !== index);
  if (duplicate !== undefined) throw new Error(`engine chain: the interceptor "${duplicate}" is listed twice`);
  const base = bound(engine);
  const entries = new Map<string, Engine>();
  let next = base;
  for (let index = interceptors.length - 1; index >= 0; index--) {
    const interceptor = interceptors[index]!;
    next = layerOver(next, interceptor.intercept(next, context));
    entries.set(interceptor.name, next);
  }
  return {
    engine: next,
    names,
    base,
    enteringAt(name) {
      const entry = entries.get(name);
      if (entry === undefined) {
        throw new Error(`engine chain: no interceptor "${name}" (the chain is ${names.join(" → ") || "empty"})`);
      }
      return entry;
    },
  };
}
