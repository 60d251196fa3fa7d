// Browser test of the dashboard in Debian's chromium: tables fill from the overview API, the live tail (the bundled
// browser build of streamgate/client) shows published events and resumes after a cut, and the tunnel panel lists a real
// agent with its in-flight streams.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type * as grpc from "@grpc/grpc-js";
import { credentials } from "@grpc/grpc-js";
import { createTunnelAgent, type TunnelAgent } from "../../src/tunnel/agent/index.js";
import { type CutProxy, startCutProxy } from "../harness/cut-proxy.js";
import { fetchJson } from "../harness/rest-client.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import {
  EchoClient,
  type GrpcBackend,
  type HttpBackend,
  startGrpcBackend,
  startHttpBackend,
} from "../harness/tunnel-test-backends.js";
import { withTimeout } from "../harness/wait-for.js";
import { chromiumMissing, launchChromium, RESULTS_DIR, type TestBrowser } from "./chromium.js";

const skip = chromiumMissing();

describe("dashboard in a browser", { skip }, () => {
  let server: TestServer;
  /** The page loads through it, so a test can cut the live tail's connection for real. */
  let proxy: CutProxy;
  let chromium: TestBrowser;

  before(async () => {
    server = await startTestServer();
    proxy = await startCutProxy(server);
    chromium = await launchChromium();
  });
  after(async () => {
    await chromium?.close();
    await proxy?.close();
    await server?.close();
  });

  test("dashboard - serves the browser build of streamgate/client under its CSP, with no Node built-in in it", async () => {
    const response = await fetch(`${server.url}/streamgate-client.browser.js`, { headers: { connection: "close" } });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "text/javascript; charset=utf-8");
    assert.match(response.headers.get("content-security-policy") ?? "", /script-src 'self'/);
    const text = await response.text();
    assert.match(text, /export\s*\{[^}]*\bcreateStreamClient\b/);
    assert.doesNotMatch(text, /\bfrom\s*["']node:|import\(\s*["']node:|require\(/);
  });

  test("dashboard - lists topics and subscriptions, and the live tail (bundled client) shows published events and resumes after a cut", async (t) => {
    const project = "acme";
    for (const name of ["orders", "payments", "audit-log"]) {
      assert.equal((await fetchJson(server.url, "PUT", `/v1/projects/${project}/topics/${name}`, {})).status, 200);
    }
    await fetchJson(server.url, "PUT", `/v1/projects/${project}/subscriptions/billing`, {
      topic: `projects/${project}/topics/orders`,
    });
    await fetchJson(server.url, "PUT", `/v1/projects/${project}/subscriptions/analytics`, {
      topic: `projects/${project}/topics/payments`,
    });
    const base64 = (text: string) => Buffer.from(text).toString("base64");
    await fetchJson(server.url, "POST", `/v1/projects/${project}/topics/payments:publish`, {
      messages: [1, 2, 3].map((n) => ({ data: base64(`{"payment":${n}}`) })),
    });

    const page = await chromium.context.newPage();
    const pageErrors: string[] = [];
    page.on("pageerror", (error) => pageErrors.push(error.message));
    const eventRequests: string[] = [];
    page.on("request", (request) => {
      const url = new URL(request.url());
      if (url.pathname.endsWith("/orders/events")) eventRequests.push(url.search);
    });
    try {
      // A short name, as every transport takes one: `orders` is a topic of ?project= (else the default project).
      await page.goto(`${proxy.url}/?project=${project}&topic=orders`);
      await page.locator('#topics tr[data-topic$="/orders"]').waitFor();
      await page.locator('#tail[data-state="live"]').waitFor({ timeout: 10_000 });
      assert.equal(await page.locator("#subscriptions tbody tr").count(), 2);
      assert.equal(await page.locator("#tunnel").isHidden(), true, "no tunnel panel without --tunnel-rules");

      const published = await fetchJson(server.url, "POST", `/v1/projects/${project}/topics/orders:publish`, {
        messages: [
          { data: base64('{"order":42,"item":"coffee beans","qty":2}'), attributes: { kind: "created", region: "eu" } },
          { data: Buffer.from([0, 159, 146, 150, 255]).toString("base64"), attributes: { kind: "binary" } },
        ],
      });
      assert.equal(published.status, 200);
      const row = page.locator("#tail-rows .tail-row", { hasText: "coffee beans" });
      await row.waitFor({ timeout: 10_000 });
      assert.match(await row.innerText(), /#1[\s\S]*kind=created[\s\S]*region=eu[\s\S]*"order":42/);
      await page.locator("#tail-rows .tail-row .data.binary", { hasText: "binary · 5 bytes" }).waitFor();
      // The tail is streamgate/client's browser build: `latest` pinned to an offset, then SSE from that cursor.
      assert.deepEqual(eventRequests.slice(0, 2), ["?from=latest&wait=0&max=1", "?from=0"]);

      // Cut: every connection through the proxy dies; the client reconnects after its backoff (250 ms at most on
      // the first retry) and resumes after offset 2, the last row shown, so the event published right after the
      // cut shows once and nothing is repeated.
      assert.ok(proxy.cut() >= 1);
      await fetchJson(server.url, "POST", `/v1/projects/${project}/topics/orders:publish`, {
        messages: [{ data: base64("after the cut") }],
      });
      await page.locator("#tail-rows .tail-row", { hasText: "after the cut" }).waitFor({ timeout: 15_000 });
      await page.locator('#tail[data-state="live"]').waitFor({ timeout: 10_000 });
      assert.deepEqual(
        await page
          .locator("#tail-rows .tail-row")
          .evaluateAll((rows) => rows.map((row) => row.getAttribute("data-offset"))),
        ["3", "2", "1"],
      );
      assert.ok(eventRequests.includes("?from=2"), `resumed from the cursor (requests: ${eventRequests.join(" ")})`);
      // The next overview poll shows the published messages and a live SSE connection.
      await page.waitForFunction(
        () => document.querySelector('#connections [data-transport="sse"] .bar-value')?.textContent !== "0",
      );
      await page.locator("#m-topics", { hasText: "3" }).waitFor();
      await page.screenshot({ path: join(RESULTS_DIR, "dashboard.png"), fullPage: true });
      t.diagnostic(`screenshot: ${join(RESULTS_DIR, "dashboard.png")}`);
      assert.deepEqual(pageErrors, []);
    } finally {
      await page.close();
    }
  });
});

describe("dashboard tunnel agents in a browser", { skip }, () => {
  const TOKEN = "dashboard-agent-token";
  const GROUP = "echo";
  const CLIENT_ID = "dash-agent-1";
  let dir: string;
  let backend: GrpcBackend;
  let web: HttpBackend;
  let server: TestServer;
  let chromium: TestBrowser;
  let agent: TunnelAgent | undefined;
  let client: InstanceType<typeof EchoClient> | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "streamgate-dashboard-tunnel-"));
    backend = await startGrpcBackend("dashboard");
    web = await startHttpBackend();
    writeFileSync(
      join(dir, "server.yaml"),
      [
        "version: 1",
        "agents:",
        "  - name: dashboard-agents",
        `    token: ${TOKEN}`,
        `    groups: [${GROUP}]`,
        "rules:",
        "  - name: echo",
        "    match:",
        "      service: test.Echo",
        `    group: ${GROUP}`,
        "  - name: web",
        "    match:",
        "      pathPrefix: /web/",
        `    group: ${GROUP}`,
        "",
      ].join("\n"),
    );
    writeFileSync(
      join(dir, "agent.yaml"),
      [
        "version: 1",
        "upstreams:",
        "  - name: echo-backend",
        "    protocol: grpc",
        `    addresses: [${backend.address}]`,
        "  - name: web-backend",
        "    protocol: http",
        `    addresses: [${web.address}]`,
        "routes:",
        "  - name: echo",
        "    match:",
        "      service: test.Echo",
        "    upstream: echo-backend",
        "  - name: web",
        "    match:",
        "      pathPrefix: /web/",
        "    upstream: web-backend",
        "",
      ].join("\n"),
    );
    server = await startTestServer({ tunnelRulesPath: join(dir, "server.yaml"), tunnelHttpPort: 0, tunnelGrpcPort: 0 });
    chromium = await launchChromium();
  });
  after(async () => {
    client?.close();
    await agent?.close();
    await chromium?.close();
    await server?.close();
    await backend?.close();
    await web?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("dashboard - lists a tunnel agent with its group, in-flight streams and upstream health, then shows it draining or gone", async (t) => {
    const page = await chromium.context.newPage();
    const pageErrors: string[] = [];
    page.on("pageerror", (error) => pageErrors.push(error.message));
    try {
      await page.goto(server.url);
      // A tunnel server with no agent yet: the panel shows, with its empty state.
      await page.locator("#tunnel #tunnel-agents .empty", { hasText: "No tunnel agents connected" }).waitFor({
        timeout: 10_000,
      });
      assert.equal(await page.locator("#tunnel").isVisible(), true);

      agent = createTunnelAgent({
        serverUrl: server.url,
        token: TOKEN,
        group: GROUP,
        clientId: CLIENT_ID,
        rulesPath: join(dir, "agent.yaml"),
        reconnect: { initialMs: 50, maxMs: 300 },
        drainTimeoutMs: 5_000,
      });
      await withTimeout(agent.start(), 10_000, "the agent to register");

      const row = page.locator(`#tunnel-agents tr[data-client-id="${CLIENT_ID}"]`);
      await page.locator(`#tunnel-agents tr[data-client-id="${CLIENT_ID}"][data-state="healthy"]`).waitFor({
        timeout: 10_000,
      });
      assert.match(await row.locator("td.group").innerText(), new RegExp(`^${GROUP}\\s+rules: echo, web$`));
      // The agent reports every upstream's health, gRPC and HTTP alike; the row lists each address.
      await row.locator(".upstreams", { hasText: "2/2 serving" }).waitFor({ timeout: 10_000 });
      assert.match((await row.locator(".upstreams").getAttribute("title")) ?? "", new RegExp(backend.address));
      const httpUpstream = row.locator('li[data-upstream="web-backend"]');
      assert.equal(await httpUpstream.getAttribute("data-address"), web.address);
      assert.equal(await httpUpstream.getAttribute("data-serving"), "true");
      assert.match(await httpUpstream.innerText(), new RegExp(`web-backend\\s+${web.address}\\s+http`));
      assert.equal(await row.locator('li[data-upstream="echo-backend"]').count(), 1);
      // The server rules that route to the group, in file order.
      assert.deepEqual(
        await page
          .locator("#tunnel-rules tbody tr")
          .evaluateAll((rows) =>
            rows.map((rule) => [rule.getAttribute("data-rule"), rule.querySelector(".rule-target")?.textContent]),
          ),
        [
          ["echo", `group ${GROUP}`],
          ["web", `group ${GROUP}`],
        ],
      );
      assert.match(await page.locator('#tunnel-rules tr[data-rule="web"]').innerText(), /path \/web\//);

      // A call held open by the backend is one tunnel stream in flight, in the panel head, the row and the group line.
      const entry = server.server.tunnel?.addresses();
      assert.ok(entry, "the tunnel entries listen");
      client = new EchoClient(`127.0.0.1:${entry.grpc.port}`, credentials.createInsecure());
      const arrived = backend.nextSleep();
      const call = (client as unknown as Record<string, (...args: unknown[]) => grpc.ClientUnaryCall>).Sleep!.call(
        client,
        Buffer.alloc(0),
        () => undefined,
      );
      await withTimeout(arrived, 10_000, "the Sleep call to reach the backend");
      await page.locator('#tunnel-in-flight[data-in-flight="1"]').waitFor({ timeout: 10_000 });
      assert.match(await page.locator("#tunnel-in-flight").innerText(), /^1 tunnel stream in flight/);
      assert.match(await row.locator("td.in-flight").innerText(), /^1\b/);
      assert.match(await page.locator("#tunnel-groups").innerText(), /echo: 1\/1 healthy · 1 in flight/);
      assert.match(await page.locator('#tunnel-rules tr[data-rule="echo"]').innerText(), /1\/1 healthy\s+1$/);
      await page.screenshot({ path: join(RESULTS_DIR, "dashboard-tunnel.png"), fullPage: true });
      t.diagnostic(`screenshot: ${join(RESULTS_DIR, "dashboard-tunnel.png")}`);
      call.cancel();
      await page.locator('#tunnel-in-flight[data-in-flight="0"]').waitFor({ timeout: 10_000 });

      // Draining: the row turns "draining" while the session ends, then leaves; the panel is back to its empty state.
      const drained = agent.drain();
      await page.waitForFunction(
        (clientId) => {
          const agentRow = document.querySelector(`#tunnel-agents tr[data-client-id="${clientId}"]`);
          return agentRow === null || agentRow.getAttribute("data-state") === "draining";
        },
        CLIENT_ID,
        { timeout: 10_000 },
      );
      await withTimeout(drained, 10_000, "the agent to drain");
      await page.locator("#tunnel-agents .empty", { hasText: "No tunnel agents connected" }).waitFor({
        timeout: 10_000,
      });
      assert.deepEqual(pageErrors, []);
    } finally {
      await page.close();
    }
  });
});
