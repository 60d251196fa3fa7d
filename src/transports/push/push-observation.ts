// The engine chain's push link: resource calls tell the push worker which projects exist, so new pushes start at once.
import type { Engine } from "../../engines/engine.js";
import type { EngineInterception, EngineInterceptor, EngineMethod } from "../../engines/engine-chain.js";

/** The name of the push link of the engine chain. */
export const PUSH_INTERCEPTOR = "push";

/** Where a call names its resource: its first argument, the `name` of its first argument, or a project id. */
const NamedBy = { name: "name", init: "init", project: "project" } as const;
type NamedBy = (typeof NamedBy)[keyof typeof NamedBy];

/**
 * The calls the push link observes: those that create, change, read or list resources. The data path (publish,
 * pull, acks, streams, stats) is not observed: it names resources whose project is already known — a project
 * exists once it has a topic or subscription, and the worker lists projects on every scan anyway.
 */
const observedCalls = {
  createTopic: NamedBy.init,
  getTopic: NamedBy.name,
  updateTopic: NamedBy.name,
  listTopics: NamedBy.project,
  deleteTopic: NamedBy.name,
  createSubscription: NamedBy.init,
  getSubscription: NamedBy.name,
  updateSubscription: NamedBy.name,
  listSubscriptions: NamedBy.project,
  listTopicSubscriptions: NamedBy.name,
  deleteSubscription: NamedBy.name,
  detachSubscription: NamedBy.name,
  seek: NamedBy.name,
  createSnapshot: NamedBy.name,
  getSnapshot: NamedBy.name,
  updateSnapshot: NamedBy.name,
  listSnapshots: NamedBy.project,
  listTopicSnapshots: NamedBy.name,
  deleteSnapshot: NamedBy.name,
  getIamPolicy: NamedBy.name,
  setIamPolicy: NamedBy.name,
  testIamPermissions: NamedBy.name,
} as const satisfies Partial<Record<EngineMethod, NamedBy>>;

type ObservedCall = keyof typeof observedCalls;

/** Bound of the told-names memory (it starts over past it): a server with more resources only tells again. */
const MAX_TOLD_NAMES = 10_000;
type AnyCall = (first: unknown, ...rest: unknown[]) => Promise<unknown>;

/** The resource name `first` gives, by how the call names it (`projects/{project}/` for a project id). */
function resourceName(namedBy: NamedBy, first: unknown): string | null {
  if (namedBy === NamedBy.name) return typeof first === "string" ? first : null;
  if (namedBy === NamedBy.project) return typeof first === "string" ? `projects/${first}/` : null;
  const init = first as { name?: unknown } | null;
  return typeof init?.name === "string" ? init.name : null;
}

/**
 * The push link: after each observed call succeeds, `watch` gets the resource name it named (the push worker's
 * `watch`, which learns the project). A failed call tells nothing. Every other method passes through.
 */
export function pushObservation(watch: (resourceName: string) => void): EngineInterceptor {
  return {
    name: PUSH_INTERCEPTOR,
    intercept(next: Engine) {
      const calls: Record<string, AnyCall> = {};
      // Names already told to the worker: telling it again changes nothing (it never forgets a project), so a
      // repeated call (GetTopic of the same topic, over and over) passes straight through, with no wrapper promise.
      const told = new Set<string>();
      for (const method of Object.keys(observedCalls) as ObservedCall[]) {
        const namedBy = observedCalls[method];
        const call = next[method] as AnyCall;
        calls[method] = (first, ...rest) => {
          let result: Promise<unknown>;
          try {
            result = call(first, ...rest);
          } catch (error) {
            return Promise.reject(error);
          }
          const name = resourceName(namedBy, first);
          if (name === null || told.has(name)) return result;
          return result.then((value) => {
            if (told.size >= MAX_TOLD_NAMES) told.clear();
            told.add(name);
            watch(name);
            return value;
          });
        };
      }
      return calls as EngineInterception;
    },
  };
}
