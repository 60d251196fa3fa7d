// Browser tests of the dashboard as a workplace, in Debian's chromium: every action through its form (create topic and
// subscription, publish with attributes and ordering key, pull, ack, nack, seek to a time, snapshot and seek to it,
// delete), the charts filling from the server's history, and the sign-in flow on a server with auth on.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, type TestContext, test } from "node:test";
import { SignJWT } from "jose";
import type { Page } from "playwright-core";
import { fetchJson } from "../harness/rest-client.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { chromiumMissing, launchChromium, RESULTS_DIR, type TestBrowser } from "./chromium.js";

const skip = chromiumMissing();

/** Writes a full-page screenshot to the test output directory and prints where. */
async function screenshot(page: Page, name: string, t: TestContext): Promise<void> {
  const path = join(RESULTS_DIR, `${name}.png`);
  // From the top: a full-page capture of a scrolled page draws the sticky top bar over the middle of it.
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path, fullPage: true });
  t.diagnostic(`screenshot: ${path}`);
}

/** Collects page errors; the tests assert none happened. */
function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  return errors;
}

/** The text of a form's message line once it shows `pattern`. */
async function formMessage(page: Page, formId: string, pattern: RegExp): Promise<string> {
  const line = page.locator(`#${formId} .form-message`);
  await line.filter({ hasText: pattern }).waitFor({ timeout: 10_000 });
  return line.innerText();
}

describe("dashboard workplace in a browser", { skip }, () => {
  const project = "workshop";
  const topic = `projects/${project}/topics/orders`;
  const subscription = `projects/${project}/subscriptions/billing`;
  let server: TestServer;
  let chromium: TestBrowser;

  before(async () => {
    // Samples every 200 ms, so the charts fill within seconds (the default is one every 10 s).
    server = await startTestServer({ dashboardSampleIntervalMs: 200 });
    chromium = await launchChromium();
  });
  after(async () => {
    await chromium?.close();
    await server?.close();
  });

  const backlog = async () => (await server.server.engine.subscriptionStats(subscription)).backlog;

  test("dashboard - creates a topic and a subscription, publishes with attributes and an ordering key, pulls, acks and nacks", async (t) => {
    const page = await chromium.context.newPage();
    const pageErrors = watchErrors(page);
    page.on("dialog", (dialog) => void dialog.accept());
    try {
      await page.goto(server.url);
      await page.locator("#status[data-state=live]").waitFor({ timeout: 10_000 });
      await screenshot(page, "dashboard-workplace-empty", t);

      // Create topic: the form names the project, as a fresh server has none.
      await page.getByLabel("Project").and(page.locator("#create-topic-project")).fill(project);
      await page.getByLabel("Topic ID").fill("orders");
      await page.getByRole("button", { name: "Create topic" }).click();
      assert.equal(await formMessage(page, "create-topic-form", /Created/), `Created topic ${topic}`);
      await page.locator(`#topics tr[data-topic="${topic}"]`).waitFor({ timeout: 10_000 });
      assert.equal((await server.server.engine.getTopic(topic)).name, topic);

      // Creating it again: the server's ALREADY_EXISTS, in the form.
      await page.getByRole("button", { name: "Create topic" }).click();
      assert.match(await formMessage(page, "create-topic-form", /ALREADY_EXISTS/), /^ALREADY_EXISTS: .+/);

      // Create subscription, with message ordering and acked messages retained (seek to a time replays them).
      await page.getByLabel("Subscription ID").fill("billing");
      await page.locator("#create-subscription-topic").fill("orders");
      await page.getByLabel("Message ordering").check();
      await page.getByLabel(/Retain acked messages/).check();
      await page.getByRole("button", { name: "Create subscription" }).click();
      assert.equal(
        await formMessage(page, "create-subscription-form", /Created/),
        `Created subscription ${subscription}`,
      );
      await page.locator(`#subscriptions tr[data-subscription="${subscription}"]`).waitFor({ timeout: 10_000 });
      const created = await server.server.engine.getSubscription(subscription);
      assert.equal(created.topic, topic);
      assert.equal(created.enableMessageOrdering, true);
      assert.equal(created.retainAckedMessages, true);

      // Publish two messages with attributes and an ordering key.
      for (const [order, kind] of [
        [1, "created"],
        [2, "paid"],
      ] as const) {
        await page.locator("#publish-topic").fill("orders");
        await page.getByLabel("Data").fill(`{"order":${order}}`);
        await page.getByLabel("Attributes").fill(`kind=${kind}\nregion=eu`);
        await page.getByLabel("Ordering key").fill("customer-7");
        await page.getByRole("button", { name: "Publish", exact: true }).click();
        assert.match(await formMessage(page, "publish-form", /Published message \S+ to orders/), /orders/);
        await page.locator("#publish-form .form-message").evaluate((line) => {
          line.textContent = "";
        });
      }
      const stored = await server.server.engine.readTopic(topic, 0, { maxMessages: 10, maxBytes: 1 << 20 });
      assert.deepEqual(
        stored.map((message) => ({
          data: Buffer.from(message.data).toString(),
          attributes: message.attributes,
          orderingKey: message.orderingKey,
        })),
        [
          { data: '{"order":1}', attributes: { kind: "created", region: "eu" }, orderingKey: "customer-7" },
          { data: '{"order":2}', attributes: { kind: "paid", region: "eu" }, orderingKey: "customer-7" },
        ],
      );
      assert.equal(await backlog(), 2);

      // A malformed attributes line is refused in the form, before any call.
      await page.getByLabel("Attributes").fill("no equals sign");
      await page.getByRole("button", { name: "Publish", exact: true }).click();
      assert.match(await formMessage(page, "publish-form", /attributes line 1/), /write key=value/);
      await page.getByLabel("Attributes").fill("");

      // Pull: the first message in order, with its attributes and ordering key. (With message ordering, how many of
      // one key a pull returns is the engine's choice; the test pulls again when the second is not there yet.)
      const pull = async (expected: RegExp) => {
        await page.locator("#pull-form .form-message").evaluate((line) => {
          line.textContent = "";
        });
        await page.getByRole("button", { name: "Pull", exact: true }).click();
        assert.match(await formMessage(page, "pull-form", /Pulled|No messages/), expected);
      };
      await page.locator("#pull-subscription").fill("billing");
      await pull(/^Pulled [12] message\(s\) from billing: ack or nack each$/);
      const rows = page.locator("#pulled li.pulled-row");
      assert.match(await rows.nth(0).innerText(), /\{"order":1\}[\s\S]*orderingKey=customer-7[\s\S]*kind=created/);
      await screenshot(page, "dashboard-workplace-pulled", t);

      // Ack the first, nack the second: the backlog keeps only the nacked one, which is delivered again.
      await rows
        .nth(0)
        .getByRole("button", { name: /^Ack message/ })
        .click();
      await formMessage(page, "pull-form", /Acknowledged 1 message/);
      assert.equal(await page.locator("#pulled li.pulled-row[data-state=acked]").count(), 1);
      assert.equal(await backlog(), 1);
      const second = page.locator("#pulled li.pulled-row[data-state=pulled]", { hasText: '{"order":2}' });
      if ((await second.count()) === 0) await pull(/^Pulled 1 message\(s\)/);
      await second.getByRole("button", { name: /^Nack message/ }).click();
      await page.locator("#pulled li.pulled-row[data-state=nacked]").waitFor({ timeout: 10_000 });
      assert.match(await formMessage(page, "pull-form", /Nacked/), /^Nacked 1 message\(s\)$/);
      assert.equal(await backlog(), 1);
      await pull(/^Pulled 1 message\(s\)/);
      assert.equal(await rows.count(), 1, "only the nacked message comes back");
      assert.match(await rows.nth(0).innerText(), /\{"order":2\}[\s\S]*kind=paid/);
      await page.getByRole("button", { name: "Ack all" }).click();
      await page.locator("#pulled li.pulled-row[data-state=acked]").waitFor({ timeout: 10_000 });
      assert.equal(await backlog(), 0);
      assert.deepEqual(pageErrors, []);
    } finally {
      await page.close();
    }
  });

  test("dashboard - seeks to a time, creates a snapshot and seeks back to it, then deletes what it made", async (t) => {
    const page = await chromium.context.newPage();
    const pageErrors = watchErrors(page);
    const dialogs: string[] = [];
    page.on("dialog", (dialog) => {
      dialogs.push(dialog.message());
      void dialog.accept();
    });
    try {
      await page.goto(`${server.url}/?project=${project}`);
      await page.locator(`#subscriptions tr[data-subscription="${subscription}"]`).waitFor({ timeout: 10_000 });
      assert.equal(await backlog(), 0, "the previous test acked everything");

      // Seek to a time before both publishes: the acked (retained) messages are unacked again.
      const firstPublishMs = (await server.server.engine.readTopic(topic, 0, { maxMessages: 1, maxBytes: 1 << 20 }))[0]!
        .publishTimeMs;
      // The form takes the browser's local time: shift by the page's own offset, then write YYYY-MM-DDTHH:MM:SS.
      const seekToMs = firstPublishMs - 2_000;
      const offsetMinutes = await page.evaluate((ms) => new Date(ms).getTimezoneOffset(), seekToMs);
      const local = new Date(seekToMs - offsetMinutes * 60_000).toISOString().slice(0, 19);
      await page.locator("#seek-subscription").fill("billing");
      await page.getByLabel("Time (local)").fill(local);
      await page.getByRole("button", { name: "Seek", exact: true }).click();
      assert.match(await formMessage(page, "seek-form", /Seeked/), /^Seeked billing to \d{4}-/);
      assert.equal(await backlog(), 2);

      // Snapshot now (2 unacked), ack everything, seek back to the snapshot: 2 unacked again.
      await page.getByLabel("Snapshot ID").fill("before-ack");
      await page.locator("#snapshot-subscription").fill("billing");
      await page.getByRole("button", { name: "Create snapshot" }).click();
      assert.equal(await formMessage(page, "snapshot-form", /Created/), "Created snapshot before-ack of billing");
      await page.locator('#snapshots li[data-snapshot$="/before-ack"]').waitFor({ timeout: 10_000 });
      await page.locator("#pull-subscription").fill("billing");
      // Pull and ack all, once per message at most (with ordering, one key may come one message per pull).
      for (let round = 0; round < 2 && (await backlog()) > 0; round++) {
        await page.getByRole("button", { name: "Pull", exact: true }).click();
        await formMessage(page, "pull-form", /Pulled/);
        await page.getByRole("button", { name: "Ack all" }).click();
        await formMessage(page, "pull-form", /Acknowledged/);
      }
      assert.equal(await backlog(), 0);
      await page.getByRole("radio", { name: "a snapshot" }).check();
      await page.locator("#seek-snapshot").selectOption({ label: "before-ack" });
      await page.getByRole("button", { name: "Seek", exact: true }).click();
      assert.equal(await formMessage(page, "seek-form", /Seeked/), "Seeked billing to snapshot before-ack");
      assert.equal(await backlog(), 2);

      // The charts: the server's samples (every 200 ms here) show the publish rate and the backlog over time.
      const rateChart = page.locator(`#history-topics [data-topic="${topic}"] svg.chart`);
      const backlogChart = page.locator(
        `#history-subscriptions [data-subscription="${subscription}"] svg.chart-backlog`,
      );
      // Wait for a chart with 5+ samples whose latest sample was taken after the seek (backlog 2 again).
      await page.waitForFunction(
        (selector) => {
          const chart = document.querySelector(selector);
          return (
            Number(chart?.getAttribute("data-samples") ?? 0) >= 5 &&
            (chart?.getAttribute("aria-label") ?? "").includes("latest 2,")
          );
        },
        `#history-subscriptions [data-subscription="${subscription}"] svg.chart-backlog`,
        { timeout: 15_000 },
      );
      assert.ok(Number(await rateChart.getAttribute("data-samples")) >= 3);
      assert.match((await backlogChart.getAttribute("aria-label")) ?? "", /billing · backlog: latest 2, peak 2/);
      assert.equal(
        await page.locator(`#history-subscriptions [data-subscription="${subscription}"] svg.chart-age`).count(),
        1,
      );
      assert.match(await page.locator("#history-note").innerText(), /one sample every 200 ms/);
      // The same history, from the dashboard's JSON endpoint.
      const overview = await fetchJson(server.url, "GET", `/v1/dashboard/overview?project=${project}`);
      const history = (
        overview.body as {
          history: { intervalMs: number; subscriptions: { name: string; points: { backlog: number }[] }[] };
        }
      ).history;
      assert.equal(history.intervalMs, 200);
      const points = history.subscriptions.find((series) => series.name === subscription)?.points ?? [];
      assert.ok(points.length >= 5 && points.length <= 90, `bounded series (${points.length} points)`);
      assert.equal(points.at(-1)?.backlog, 2);
      await screenshot(page, "dashboard-workplace-charts", t);

      // Delete: snapshot, subscription, topic, each after a confirmation.
      await page.getByRole("button", { name: "Delete snapshot before-ack" }).click();
      await page.locator('#snapshots li[data-snapshot$="/before-ack"]').waitFor({ state: "detached", timeout: 10_000 });
      await page.getByRole("button", { name: "Delete subscription billing" }).click();
      await page
        .locator(`#subscriptions tr[data-subscription="${subscription}"]`)
        .waitFor({ state: "detached", timeout: 10_000 });
      await page.getByRole("button", { name: "Delete topic orders" }).click();
      await page.locator(`#topics tr[data-topic="${topic}"]`).waitFor({ state: "detached", timeout: 10_000 });
      assert.deepEqual(dialogs, [
        `Delete snapshot projects/${project}/snapshots/before-ack?`,
        `Delete subscription ${subscription}?`,
        `Delete topic ${topic}?`,
      ]);
      await assert.rejects(server.server.engine.getTopic(topic), /not found/i);
      await assert.rejects(server.server.engine.getSubscription(subscription), /not found/i);
      assert.deepEqual(pageErrors, []);
    } finally {
      await page.close();
    }
  });
});

describe("dashboard sign-in in a browser", { skip }, () => {
  const SECRET = "dashboard-test-secret-0123456789abcdefghijkl";
  const project = "secured";
  const topic = `projects/${project}/topics/alerts`;
  let server: TestServer;
  let chromium: TestBrowser;

  const sign = (subject: string, grants: Record<string, string[]>) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ streamgate: grants })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(subject)
      .setIssuedAt(now - 10)
      .setExpirationTime(now + 600)
      .sign(new TextEncoder().encode(SECRET));
  };

  before(async () => {
    server = await startTestServer({ authSecret: SECRET, dashboardSampleIntervalMs: 200 });
    chromium = await launchChromium();
  });
  after(async () => {
    await chromium?.close();
    await server?.close();
  });

  test("dashboard - 401 opens the sign-in panel; a bad token is refused there, an admin token opens the live dashboard and tail", async (t) => {
    const admin = await sign("ada", { admin: ["*"] });
    const page = await chromium.context.newPage();
    const pageErrors = watchErrors(page);
    try {
      await page.goto(server.url);
      const panel = page.locator("#signin");
      await panel.waitFor({ state: "visible", timeout: 10_000 });
      assert.match(await page.locator("#signin-reason").innerText(), /needs a token — UNAUTHENTICATED: no token/);
      assert.equal(await page.locator("#status-text").innerText(), "Sign in to see this server");
      await screenshot(page, "dashboard-signin", t);

      await page.getByLabel("Access token").fill("not-a-jwt");
      await page.getByRole("button", { name: "Sign in", exact: true }).last().click();
      assert.match(
        await page
          .locator("#signin-error")
          .filter({ hasText: /Not accepted/ })
          .innerText(),
        /^Not accepted — UNAUTHENTICATED: /,
      );
      assert.equal(await page.evaluate(() => sessionStorage.length), 0, "a refused token is not kept");

      await page.getByLabel("Access token").fill(admin);
      await page.getByRole("button", { name: "Sign in", exact: true }).last().click();
      await panel.waitFor({ state: "hidden", timeout: 10_000 });
      await page.locator("#status[data-state=live]").waitFor({ timeout: 10_000 });
      assert.equal(await page.locator("#account-name").innerText(), "Signed in as ada");

      // Admin actions and the live tail run with the token.
      await page.locator("#create-topic-project").fill(project);
      await page.getByLabel("Topic ID").fill("alerts");
      await page.getByRole("button", { name: "Create topic" }).click();
      await formMessage(page, "create-topic-form", /Created topic/);
      await page.locator(`#topics tr[data-topic="${topic}"]`).click();
      await page.locator('#tail[data-state="live"]').waitFor({ timeout: 10_000 });
      const published = await fetchJson(
        server.url,
        "POST",
        `/v1/${topic}:publish`,
        { messages: [{ data: Buffer.from("disk almost full").toString("base64"), attributes: { level: "warn" } }] },
        { headers: { authorization: `Bearer ${admin}` } },
      );
      assert.equal(published.status, 200);
      await page.locator("#tail-rows .tail-row", { hasText: "disk almost full" }).waitFor({ timeout: 10_000 });
      await screenshot(page, "dashboard-signed-in-tail", t);

      // The token is kept for this tab: a reload stays signed in.
      await page.reload();
      await page.locator("#status[data-state=live]").waitFor({ timeout: 10_000 });
      assert.equal(await page.locator("#signin").isHidden(), true);

      // Sign out: the token is gone and the server asks for one again.
      await page.getByRole("button", { name: "Sign out" }).click();
      await panel.waitFor({ state: "visible", timeout: 10_000 });
      assert.equal(await page.evaluate(() => sessionStorage.length), 0);
      assert.equal(await page.locator("#account-name").innerText(), "Not signed in");

      // Cancel closes the panel for good (polls keep being refused, the status says so); Sign in reopens it.
      await page.getByRole("button", { name: "Cancel" }).click();
      await page.waitForResponse((response) => response.url().includes("/v1/dashboard/overview"), { timeout: 10_000 });
      assert.equal(await panel.isHidden(), true);
      assert.equal(await page.locator("#status-text").innerText(), "Sign in to see this server");
      await page.getByRole("button", { name: "Sign in", exact: true }).first().click();
      await panel.waitFor({ state: "visible", timeout: 10_000 });
      assert.deepEqual(pageErrors, []);
    } finally {
      await page.close();
    }
  });

  test("dashboard - a token without admin sees PERMISSION_DENIED where it failed: the overview in the sign-in panel, create topic in its form", async (t) => {
    const writer = await sign("wendy", { publish: ["*"], subscribe: ["*"] });
    const created = await fetchJson(
      server.url,
      "PUT",
      `/v1/projects/${project}/topics/audit`,
      {},
      {
        headers: { authorization: `Bearer ${await sign("ada", { admin: ["*"] })}` },
      },
    );
    assert.equal(created.status, 200);
    const page = await chromium.context.newPage();
    const pageErrors = watchErrors(page);
    try {
      await page.goto(server.url);
      await page.locator("#signin").waitFor({ state: "visible", timeout: 10_000 });
      await page.getByLabel("Access token").fill(writer);
      await page.getByRole("button", { name: "Sign in", exact: true }).last().click();
      await page.locator("#signin-reason", { hasText: /overview was refused/ }).waitFor({ timeout: 10_000 });
      assert.match(
        await page.locator("#signin-reason").innerText(),
        /^Signed in as wendy, but the overview was refused — PERMISSION_DENIED: \/v1\/dashboard\/overview needs a token with admin on every resource/,
      );
      assert.equal(await page.locator("#account-name").innerText(), "Signed in as wendy");

      // Creating a topic needs admin: the form that failed says so, with the server's message.
      await page.locator("#create-topic-project").fill(project);
      await page.getByLabel("Topic ID").fill("forbidden");
      await page.getByRole("button", { name: "Create topic" }).click();
      const refusal = await formMessage(page, "create-topic-form", /PERMISSION_DENIED/);
      assert.match(refusal, /^PERMISSION_DENIED: .*admin/);
      assert.equal(await page.locator("#create-topic-form .form-message").getAttribute("role"), "alert");
      await assert.rejects(server.server.engine.getTopic(`projects/${project}/topics/forbidden`), /not found/i);

      // Publishing is within the token's grants, and works from the same page.
      await page.locator("#publish-topic").fill("audit");
      await page.getByLabel("Data").fill("login ok");
      await page.getByRole("button", { name: "Publish", exact: true }).click();
      assert.match(await formMessage(page, "publish-form", /Published/), /^Published message \S+ to audit$/);
      await screenshot(page, "dashboard-permission-denied", t);
      assert.deepEqual(pageErrors, []);
    } finally {
      await page.close();
    }
  });
});
