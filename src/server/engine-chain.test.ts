// The server's engine chain with its real links over a real embedded engine: the documented order, and what it means.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { authorizationInterceptor } from "../auth/authorization.js";
import { grantsFromClaim } from "../auth/permissions.js";
import { runAsPrincipal } from "../auth/principal-context.js";
import { AuthTransport, type TokenPrincipal } from "../auth/token-principal.js";
import type { Engine } from "../engines/engine.js";
import { ENGINE_METHODS, type EngineChain } from "../engines/engine-chain.js";
import { createEngine } from "../engines/index.js";
import { createLimits, defaultLimitsOptions, type LimitName } from "../limits/index.js";
import { createServerMetrics, metricsInterceptor, type ServerMetrics } from "../observability/index.js";
import { runWithTraceContext, type TraceContext } from "../observability/trace-context.js";
import { pushObservation } from "../transports/push/index.js";
import { createEngineChain } from "./engine-chain.js";

/** The links of "The engine chain" in docs/architecture.md, in the order the page lists them. */
function documentedOrder(): string[] {
  const page = readFileSync(new URL("../../docs/architecture.md", import.meta.url), "utf8");
  const section = page.split("## The engine chain")[1] ?? "";
  return [...section.matchAll(/^\d+\. `([a-z-]+)`:/gm)].map((match) => match[1]!);
}

describe("server engine chain", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "streamgate-server-chain-"));
  const project = "projects/p";
  const message = { data: Buffer.from("x"), attributes: {}, orderingKey: "" };
  const principal = (id: string, claim: Record<string, string[]>): TokenPrincipal => ({
    id,
    authenticated: true,
    remoteAddress: "127.0.0.1",
    grants: grantsFromClaim(claim),
    transport: AuthTransport.grpc,
    expiresAtMs: Date.now() + 60_000,
  });
  // alice may publish to "orders" only; the admin may do anything.
  const alice = principal("alice", { publish: ["orders"] });
  const admin = principal("admin", { admin: ["*"] });
  let engine: Engine;
  let chain: EngineChain;
  let metrics: ServerMetrics;
  const denied: string[] = [];
  const limited: LimitName[] = [];
  const watched: string[] = [];

  before(async () => {
    engine = await createEngine({ engine: "embedded", dataDir, syncEveryCommit: false });
    metrics = createServerMetrics({
      engine,
      hubStats: () => ({ topics: 0, subscribers: 0, droppedSlowConsumers: 0 }),
      tcpConnections: () => 0,
    });
    // One message per principal, then none for a long while: the second publish is rate-limited.
    const limits = createLimits(
      { ...defaultLimitsOptions, publishRate: 1, publishBurst: 1 },
      { onLimited: (limit) => limited.push(limit), now: () => 0 },
    );
    chain = createEngineChain(engine, {
      authorization: authorizationInterceptor((transport) => denied.push(transport)),
      limits: limits.interceptor,
      push: pushObservation((name) => watched.push(name)),
      metrics: metricsInterceptor(metrics),
    });
    for (const name of ["orders", "payments"]) await engine.createTopic({ name: `${project}/topics/${name}` });
  });
  after(async () => {
    await engine?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const publishedCount = async (topic: string) =>
    (await metrics.published.get()).values.find((value) => value.labels.topic === topic)?.value ?? 0;

  test("server engine chain - the links are authorization, limits, push, metrics, in the order docs/architecture.md lists", () => {
    assert.deepEqual(chain.names, ["authorization", "limits", "push", "metrics"]);
    assert.deepEqual(documentedOrder(), chain.names);
  });

  test("server engine chain - a publish meets authorization, then limits, then metrics: a refused one goes no further", async () => {
    const orders = `${project}/topics/orders`;
    const payments = `${project}/topics/payments`;
    await runAsPrincipal(alice, async () => {
      // Denied by authorization: no rate budget taken (the next publish passes), nothing counted.
      await assert.rejects(chain.engine.publish(payments, [message]), { reason: "PERMISSION_DENIED" });
      const trace: TraceContext = {
        traceparent: { traceId: "a".repeat(32), parentId: "b".repeat(16), flags: 1 },
        tracestate: "",
      };
      const [ref] = await runWithTraceContext(trace, () => chain.engine.publish(orders, [message]));
      // Limited by limits: counted as limited, not as published.
      await assert.rejects(chain.engine.publish(orders, [message]), { reason: "RATE_LIMITED" });
      const [stored] = await engine.readTopic(orders, ref!.offset, { maxMessages: 1, maxBytes: 1 << 20 });
      assert.match(stored!.attributes.traceparent ?? "", /^00-a{32}-/);
    });
    assert.deepEqual(denied, ["grpc"]);
    assert.deepEqual(limited, ["publish"]);
    assert.equal(await publishedCount(payments), 0);
    assert.equal(await publishedCount(orders), 1);
  });

  test("server engine chain - push hears a resource call only once authorization let it through and it succeeded", async () => {
    const topic = `${project}/topics/created-by-admin`;
    await runAsPrincipal(alice, async () => {
      await assert.rejects(chain.engine.createTopic({ name: `${project}/topics/not-alices` }), {
        reason: "PERMISSION_DENIED",
      });
    });
    await runAsPrincipal(admin, async () => {
      await chain.engine.createTopic({ name: topic });
      await assert.rejects(chain.engine.createTopic({ name: topic }), { reason: "TOPIC_ALREADY_EXISTS" });
      await chain.engine.listSubscriptions("p", { pageSize: 10, pageToken: "" });
    });
    assert.deepEqual(watched, [topic, `${project}/`]);
  });

  test("server engine chain - background work enters below authorization; methods no link handles are the engine's own", async () => {
    // The push worker and the hub readers run as no caller: below authorization nothing fails closed.
    assert.equal(
      (await chain.enteringAt("limits").getTopic(`${project}/topics/orders`)).name,
      `${project}/topics/orders`,
    );
    await assert.rejects(chain.engine.getTopic(`${project}/topics/orders`), { reason: "INTERNAL" });
    const handled = new Set(["publish", "pull", "openStream"]);
    for (const method of ENGINE_METHODS) {
      const below = chain.enteringAt("metrics")[method];
      if (handled.has(method)) assert.notEqual(below, chain.base[method], `metrics handles ${method}`);
      else assert.equal(below, chain.base[method], `metrics wraps ${method}`);
    }
    for (const method of ["storedIamPolicy", "ready", "close"] as const)
      assert.equal(chain.engine[method], chain.base[method]);
  });
});
