// Browser test of the dashboard in Debian's chromium: tables fill from the overview API and the live tail shows a published event.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fetchJson } from "../harness/rest-client.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { chromiumMissing, launchChromium, RESULTS_DIR, type TestBrowser } from "./chromium.js";

const skip = chromiumMissing();

describe("dashboard in a browser", { skip }, () => {
  let server: TestServer;
  let chromium: TestBrowser;

  before(async () => {
    server = await startTestServer();
    chromium = await launchChromium();
  });
  after(async () => {
    await chromium?.close();
    await server?.close();
  });

  test("dashboard - lists topics and subscriptions and shows a published event in the live tail", async () => {
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
    try {
      const topic = `projects/${project}/topics/orders`;
      await page.goto(`${server.url}/?project=${project}&topic=${encodeURIComponent(topic)}`);
      await page.locator('#topics tr[data-topic$="/orders"]').waitFor();
      await page.locator('#tail[data-state="live"]').waitFor({ timeout: 10_000 });
      assert.equal(await page.locator("#subscriptions tbody tr").count(), 2);

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
      // The next overview poll shows the published messages and a live SSE connection.
      await page.waitForFunction(
        () => document.querySelector('#connections [data-transport="sse"] .bar-value')?.textContent !== "0",
      );
      await page.locator("#m-topics", { hasText: "3" }).waitFor();
      await page.screenshot({ path: join(RESULTS_DIR, "dashboard.png"), fullPage: true });
      assert.deepEqual(pageErrors, []);
    } finally {
      await page.close();
    }
  });
});
