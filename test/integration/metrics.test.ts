// /metrics: Prometheus text with publish/delivery counters, latency, backlog and connection gauges.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { startTestServer } from "../harness/start-test-server.js";
import { SseReader } from "./streams-clients.js";

async function call(url: string, method: string, body?: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(url, {
    method,
    headers: { "content-type": "application/json", connection: "close" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await response.json()) as Record<string, unknown>;
  assert.ok(response.ok, `${method} ${url}: ${JSON.stringify(json)}`);
  return json;
}

function sample(text: string, name: string, labels: string): number {
  const line = text.split("\n").find((row) => row.startsWith(`${name}{${labels}}`));
  assert.ok(line !== undefined, `no sample ${name}{${labels}} in:\n${text.slice(0, 2000)}`);
  return Number(line.split(" ").at(-1));
}

describe("metrics", () => {
  it("metrics - publishes, deliveries, latency, backlog and connections are exported", async () => {
    const server = await startTestServer();
    try {
      const base = `${server.url}/v1/projects/metrics`;
      await call(`${base}/topics/orders`, "PUT", {});
      await call(`${base}/subscriptions/billing`, "PUT", { topic: "projects/metrics/topics/orders" });
      const messages = [1, 2, 3].map((n) => ({ data: Buffer.from(`m${n}`).toString("base64") }));
      await call(`${base}/topics/orders:publish`, "POST", { messages });
      const pulled = await call(`${base}/subscriptions/billing:pull`, "POST", {
        maxMessages: 2,
        returnImmediately: true,
      });
      assert.equal((pulled.receivedMessages as unknown[]).length, 2);

      const response = await fetch(`${server.url}/metrics`, { headers: { connection: "close" } });
      assert.equal(response.status, 200);
      assert.match(response.headers.get("content-type") ?? "", /text\/plain/);
      const text = await response.text();
      assert.equal(sample(text, "streamgate_messages_published_total", 'topic="projects/metrics/topics/orders"'), 3);
      assert.equal(
        sample(
          text,
          "streamgate_messages_delivered_total",
          'subscription="projects/metrics/subscriptions/billing",path="pull"',
        ),
        2,
      );
      assert.equal(sample(text, "streamgate_publish_to_delivery_seconds_count", 'path="pull"'), 2);
      assert.equal(
        sample(
          text,
          "streamgate_subscription_backlog_messages",
          'subscription="projects/metrics/subscriptions/billing"',
        ),
        3,
      );
      assert.ok(sample(text, "streamgate_connections", 'transport="tcp"') >= 1);
      assert.match(text, /^streamgate_process_resident_memory_bytes \d+/m);
    } finally {
      await server.close();
    }
  });

  it("metrics - live streams count messages sent per topic and transport and publish-to-deliver latency", async () => {
    const server = await startTestServer();
    let reader: SseReader | undefined;
    try {
      const topic = "projects/metrics/topics/live";
      await call(`${server.url}/v1/${topic}`, "PUT", {});
      reader = await SseReader.open(`${server.url}/v1/${topic}/events?from=latest`);
      await reader.until((open) => open.retry !== null);
      const messages = [1, 2, 3].map((n) => ({ data: Buffer.from(`m${n}`).toString("base64") }));
      await call(`${server.url}/v1/${topic}:publish`, "POST", { messages });
      await reader.until((open) => open.messages().length === 3);

      const text = await (await fetch(`${server.url}/metrics`, { headers: { connection: "close" } })).text();
      assert.equal(sample(text, "streamgate_stream_messages_sent_total", `topic="${topic}",transport="sse"`), 3);
      assert.equal(sample(text, "streamgate_publish_to_delivery_seconds_count", 'path="sse"'), 3);
      assert.equal(sample(text, "streamgate_connections", 'transport="sse"'), 1);
      assert.match(text, /^# TYPE streamgate_slow_clients_dropped_total counter$/m);
    } finally {
      reader?.close();
      await server.close();
    }
  });
});
