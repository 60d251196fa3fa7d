// Tests of the dashboard overview over a real embedded engine: the history it carries (rates from samples, at most
// 24 series per kind) and the tunnel rules summary.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createEmbeddedEngine, type EmbeddedEngine } from "../../engines/embedded/index.js";
import { parseServerRules } from "../../tunnel/rules/index.js";
import { createOverviewBuilder } from "./overview.js";
import { createStatsHistory } from "./stats-history.js";
import { summarizeTunnelRules } from "./tunnel-rules-summary.js";

const text = (value: string) => ({ data: new TextEncoder().encode(value), attributes: {}, orderingKey: "" });
const idle = () => ({ topics: 0, subscribers: 0, droppedSlowConsumers: 0 });
const noConnections = () => ({ sse: 0, websocket: 0, grpc: 0, http: 0 });

describe("dashboard overview", () => {
  let dataDir: string;
  let engine: EmbeddedEngine;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "streamgate-overview-"));
    engine = await createEmbeddedEngine({ dataDir });
  });
  after(async () => {
    await engine?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  test("overview - history gives each topic's publish rate between samples and each subscription's backlog", async () => {
    const topic = "projects/rates/topics/orders";
    const subscription = "projects/rates/subscriptions/billing";
    await engine.createTopic({ name: topic });
    await engine.createSubscription({ name: subscription, topic });
    const history = createStatsHistory({ engine, intervalMs: 1_000 });
    const overview = createOverviewBuilder({
      engine,
      streamStats: idle,
      connections: noConnections,
      history,
    });
    try {
      await history.sampleNow();
      await engine.publish(topic, [text("a"), text("b"), text("c")]);
      await new Promise((resolve) => setTimeout(resolve, 50));
      await history.sampleNow();
      const built = await overview("rates");
      assert.ok(built.history);
      assert.equal(built.history.intervalMs, 1_000);
      assert.equal(built.history.windowMs, 90_000);
      const rates = built.history.topics.find((series) => series.name === topic)?.points ?? [];
      assert.equal(rates.length, 1, "two samples give one rate");
      assert.ok(
        rates[0]!.publishRatePerSecond > 0,
        `3 messages between the samples (${rates[0]!.publishRatePerSecond}/s)`,
      );
      const backlog = built.history.subscriptions.find((series) => series.name === subscription)?.points ?? [];
      assert.deepEqual(
        backlog.map((point) => point.backlog),
        [0, 3],
      );
      assert.equal(built.history.truncated, false);
    } finally {
      await history.close();
    }
  });

  test("overview - charts at most 24 topics and 24 subscriptions, the first by name, and says it truncated", async () => {
    const project = "crowded";
    for (let index = 0; index < 30; index++) {
      const topic = `projects/${project}/topics/topic-${String(index).padStart(2, "0")}`;
      await engine.createTopic({ name: topic });
    }
    const history = createStatsHistory({ engine, intervalMs: 1_000 });
    const overview = createOverviewBuilder({ engine, streamStats: idle, connections: noConnections, history });
    try {
      await history.sampleNow();
      const built = await overview(project);
      assert.equal(built.topics.length, 30);
      assert.equal(built.history?.topics.length, 24);
      assert.equal(built.history?.topics[0]?.name, `projects/${project}/topics/topic-00`);
      assert.equal(built.history?.topics[23]?.name, `projects/${project}/topics/topic-23`);
      assert.equal(built.history?.truncated, true);
    } finally {
      await history.close();
    }
  });

  test("overview - without a history source the overview's history is null", async () => {
    const built = await createOverviewBuilder({ engine, streamStats: idle, connections: noConnections })("rates");
    assert.equal(built.history, null);
  });

  test("overview - the tunnel rules summary reads like the rules file: conditions and target, in file order", () => {
    const rules = parseServerRules(
      [
        "version: 1",
        "agents:",
        "  - name: fleet",
        "    token: agent-token-0123456789",
        "    groups: [web, echo]",
        "rules:",
        "  - name: echo",
        "    match:",
        "      service: test.Echo",
        "      method: Say",
        "    group: echo",
        "  - name: site",
        "    match:",
        "      host: '*.example.com'",
        "      pathPrefix: /web/",
        "      headers: { x-tenant: acme }",
        "    group: web",
        "  - name: direct",
        "    match: { pathPrefix: /direct/ }",
        "    upstream: { protocol: http, addresses: ['http://127.0.0.1:9'] }",
        "",
      ].join("\n"),
      "server.yaml",
    );
    assert.deepEqual(summarizeTunnelRules(rules), [
      {
        name: "echo",
        line: 7,
        match: "service test.Echo · method Say",
        target: { kind: "group", group: "echo" },
        requiresBearerToken: false,
      },
      {
        name: "site",
        line: 12,
        match: "host *.example.com · path /web/ · header x-tenant: acme",
        target: { kind: "group", group: "web" },
        requiresBearerToken: false,
      },
      {
        name: "direct",
        line: 18,
        match: "path /direct/",
        target: { kind: "upstream", upstream: "direct", addresses: ["http://127.0.0.1:9"] },
        requiresBearerToken: false,
      },
    ]);
  });
});
