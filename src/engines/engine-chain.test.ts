// The engine chain over a real embedded engine: calls meet the interceptors in order, unhandled methods are not wrapped.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Engine } from "./engine.js";
import { chainEngine, ENGINE_METHODS, type EngineInterceptor } from "./engine-chain.js";
import { createEngine } from "./index.js";

/** A request context whose one field counts its reads. */
interface CountingContext {
  readonly caller: string;
  reads: number;
}

/** An interceptor that logs `name>` before and `name<` after each publish and pull it sees. */
function logging(name: string, log: string[]): EngineInterceptor<CountingContext> {
  return {
    name,
    intercept: (next) => ({
      async publish(topic, messages) {
        log.push(`${name}>`);
        try {
          return await next.publish(topic, messages);
        } finally {
          log.push(`${name}<`);
        }
      },
      async pull(subscription, options) {
        log.push(`${name}>`);
        return next.pull(subscription, options);
      },
    }),
  };
}

describe("engine chain", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "streamgate-chain-"));
  const topic = "projects/p/topics/chain";
  const subscription = "projects/p/subscriptions/chain";
  const message = { data: Buffer.from("x"), attributes: {}, orderingKey: "" };
  let engine: Engine;

  before(async () => {
    engine = await createEngine({ engine: "embedded", dataDir, syncEveryCommit: false });
    await engine.createTopic({ name: topic });
    await engine.createSubscription({ name: subscription, topic });
  });
  after(async () => {
    await engine?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const context = (): CountingContext => {
    let reads = 0;
    return {
      get caller() {
        reads++;
        return "alice";
      },
      get reads() {
        return reads;
      },
    };
  };

  test("engine chain - a call meets the interceptors in the listed order and returns through them in reverse", async () => {
    const log: string[] = [];
    const chain = chainEngine(engine, context(), [logging("a", log), logging("b", log), logging("c", log)]);
    assert.deepEqual(chain.names, ["a", "b", "c"]);
    const refs = await chain.engine.publish(topic, [message]);
    assert.equal(refs.length, 1);
    assert.deepEqual(log, ["a>", "b>", "c>", "c<", "b<", "a<"]);
    const stored = await engine.readTopic(topic, refs[0]!.offset, { maxMessages: 1, maxBytes: 1 << 20 });
    assert.equal(stored[0]?.offset, refs[0]!.offset);
  });

  test("engine chain - entering at a link skips the links before it", async () => {
    const log: string[] = [];
    const chain = chainEngine(engine, context(), [logging("a", log), logging("b", log), logging("c", log)]);
    await chain.enteringAt("b").publish(topic, [message]);
    assert.deepEqual(log, ["b>", "c>", "c<", "b<"]);
    log.length = 0;
    await chain.base.publish(topic, [message]);
    assert.deepEqual(log, []);
    assert.throws(() => chain.enteringAt("d"), /no interceptor "d" \(the chain is a → b → c\)/);
  });

  test("engine chain - a method no interceptor handles is the engine's own function at every layer, not a wrapper", async () => {
    const log: string[] = [];
    const onlyPull: EngineInterceptor<CountingContext> = {
      name: "only-pull",
      intercept: (next) => ({
        pull(name, options) {
          log.push("only-pull");
          return next.pull(name, options);
        },
      }),
    };
    const nothing: EngineInterceptor<CountingContext> = { name: "nothing", intercept: () => ({}) };
    const chain = chainEngine(engine, context(), [logging("a", log), nothing, onlyPull]);
    for (const method of ENGINE_METHODS) {
      if (method === "publish" || method === "pull") continue;
      assert.equal(chain.engine[method], chain.base[method], `${method} is wrapped`);
    }
    // "a" handles pull, "nothing" handles nothing (it adds no layer), "only-pull" handles pull only.
    assert.equal(chain.enteringAt("nothing"), chain.enteringAt("only-pull"));
    assert.equal(chain.enteringAt("only-pull").publish, chain.base.publish);
    assert.notEqual(chain.enteringAt("only-pull").pull, chain.base.pull);
    assert.equal(chain.engine.schemas, engine.schemas);
    assert.equal(chain.engine.kind, "embedded");
    // The unwrapped functions are bound to the engine: they work called off the object.
    const { getTopic } = chain.engine;
    assert.equal((await getTopic(topic)).name, topic);
    await chain.engine.pull(subscription, { maxMessages: 1, waitMs: 0, signal: new AbortController().signal });
    assert.deepEqual(log, ["a>", "only-pull"]);
  });

  test("engine chain - the request context is read only by the interceptors that ask, when they ask", async () => {
    const seen: string[] = [];
    const asking: EngineInterceptor<CountingContext> = {
      name: "asking",
      intercept: (next, request) => ({
        async getTopic(name) {
          seen.push(request.caller);
          return next.getTopic(name);
        },
      }),
    };
    const requestContext = context();
    const chain = chainEngine(engine, requestContext, [logging("a", []), asking]);
    await chain.engine.publish(topic, [message]);
    await chain.engine.getSubscription(subscription);
    assert.equal(requestContext.reads, 0);
    await chain.engine.getTopic(topic);
    assert.equal(requestContext.reads, 1);
    assert.deepEqual(seen, ["alice"]);
  });

  test("engine chain - an interceptor may replace the schema registry; two links with one name are refused", async () => {
    const calls: string[] = [];
    const schemas: EngineInterceptor<CountingContext> = {
      name: "schemas",
      intercept: (next) => ({
        schemas: {
          create: (name, definition) => next.schemas.create(name, definition),
          get: (name) => next.schemas.get(name),
          list(project, page) {
            calls.push(project);
            return next.schemas.list(project, page);
          },
          listRevisions: (name, page) => next.schemas.listRevisions(name, page),
          commit: (name, definition) => next.schemas.commit(name, definition),
          rollback: (name, revisionId) => next.schemas.rollback(name, revisionId),
          deleteRevision: (name, revisionId) => next.schemas.deleteRevision(name, revisionId),
          delete: (name) => next.schemas.delete(name),
        },
      }),
    };
    const chain = chainEngine(engine, context(), [schemas]);
    assert.deepEqual((await chain.engine.schemas.list("p", { pageSize: 10, pageToken: "" })).items, []);
    assert.deepEqual(calls, ["p"]);
    assert.equal(chain.engine.getTopic, chain.base.getTopic);
    assert.throws(() => chainEngine(engine, context(), [schemas, schemas]), /"schemas" is listed twice/);
  });
});
