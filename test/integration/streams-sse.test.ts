// SSE and long poll on GET /v1/projects/{p}/topics/{t}/events against a real server: receive, resume, gaps, bad input, curl.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import type { EmbeddedEngine } from "../../src/engines/embedded/index.js";
import { peersRequired, startTestServer, type TestServer } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";
import { decode, encode, fetchClose, SseReader } from "./streams-clients.js";

describe("streams - SSE and long poll", () => {
  let server: TestServer;
  let engine: EmbeddedEngine;
  before(async () => {
    server = await startTestServer({ heartbeatMs: 300 });
    engine = server.server.baseEngine as EmbeddedEngine;
  });
  after(async () => {
    await server.close();
  });

  const newTopic = async (retentionBytes: number | null = null) => {
    const id = uniqueName("events");
    await engine.createTopic({ name: `projects/p/topics/${id}`, retentionBytes });
    return { id, name: `projects/p/topics/${id}`, url: `${server.url}/v1/projects/p/topics/${id}/events` };
  };
  const publish = (name: string, texts: string[], attributes: Record<string, string> = {}) =>
    engine.publish(
      name,
      texts.map((text) => ({ data: Buffer.from(text), attributes, orderingKey: "" })),
    );

  it("streams sse - a published message arrives with the documented headers, JSON and retry hint", async () => {
    const topic = await newTopic();
    const reader = await SseReader.open(topic.url);
    assert.equal(reader.status, 200);
    assert.match(reader.header("content-type"), /^text\/event-stream/);
    assert.equal(reader.header("cache-control"), "no-cache");
    assert.equal(reader.header("x-accel-buffering"), "no");
    const published = await fetchClose(`${server.url}/v1/projects/p/topics/${topic.id}:publish`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        messages: [{ data: encode("hello"), attributes: { kind: "greeting" }, orderingKey: "k" }],
      }),
    });
    assert.equal(published.status, 200);
    await reader.until((r) => r.messages().length === 1);
    assert.equal(reader.retry, 2000);
    const [event] = reader.events;
    assert.equal(event!.id, "1");
    assert.equal(event!.event, "message");
    const message = JSON.parse(event!.data);
    assert.deepEqual(Object.keys(message), ["offset", "messageId", "publishTime", "attributes", "orderingKey", "data"]);
    assert.equal(message.offset, "1");
    assert.equal(decode(message.data), "hello");
    assert.deepEqual(message.attributes, { kind: "greeting" });
    assert.equal(message.orderingKey, "k");
    assert.ok(!Number.isNaN(Date.parse(message.publishTime)));
    await reader.until((r) => r.comments > 0, 3_000); // heartbeat comment on idle
    reader.close();
  });

  it("streams sse - Last-Event-ID, lastEventId and from=<offset> resume after that offset, exactly once, in order", async () => {
    const topic = await newTopic();
    await publish(
      topic.name,
      Array.from({ length: 10 }, (_, index) => `m${index + 1}`),
    );
    const byHeader = await SseReader.open(topic.url, { "last-event-id": "4" });
    const byQuery = await SseReader.open(`${topic.url}?lastEventId=6&from=earliest`);
    const byFrom = await SseReader.open(`${topic.url}?from=8`);
    const earliest = await SseReader.open(
      `${topic.url}?from=earliest&filter=${encodeURIComponent('attributes.odd = "1"')}`,
    );
    await publish(topic.name, ["m11"], { odd: "1" });
    const offsets = (reader: SseReader) => reader.messages().map((message) => Number(message.offset));
    await byHeader.until((r) => r.messages().length === 7);
    await byQuery.until((r) => r.messages().length === 5);
    await byFrom.until((r) => r.messages().length === 3);
    await earliest.until((r) => r.messages().length === 1);
    assert.deepEqual(offsets(byHeader), [5, 6, 7, 8, 9, 10, 11]);
    assert.deepEqual(offsets(byQuery), [7, 8, 9, 10, 11]);
    assert.deepEqual(offsets(byFrom), [9, 10, 11]);
    assert.deepEqual(offsets(earliest), [11]);
    for (const reader of [byHeader, byQuery, byFrom, earliest]) reader.close();
  });

  it("streams sse - resuming below retention gets an explicit gap event before the first retained message", async () => {
    const topic = await newTopic(100);
    await publish(
      topic.name,
      Array.from({ length: 10 }, (_, index) => `${index}`.padStart(30, "x")),
    );
    await engine.runMaintenance();
    const { firstOffset } = await engine.topicStats(topic.name);
    assert.ok(firstOffset > 2);
    const reader = await SseReader.open(topic.url, { "last-event-id": "1" });
    await reader.until((r) => r.messages().length === 11 - firstOffset);
    const [gap, first] = reader.events;
    assert.equal(gap!.event, "gap");
    assert.equal(gap!.id, String(firstOffset - 1));
    assert.deepEqual(JSON.parse(gap!.data), {
      fromOffset: "2",
      firstAvailable: String(firstOffset),
      lost: firstOffset - 2,
    });
    assert.equal(first!.id, String(firstOffset));
    reader.close();
    const polled = await (await fetchClose(`${topic.url}?from=0&wait=0`)).json();
    assert.equal(polled.gap.firstAvailable, String(firstOffset));
    assert.equal(polled.messages[0].offset, String(firstOffset));
  });

  it("streams long poll - answers after the first message, with nextFrom as the next cursor and max honoured", async () => {
    const topic = await newTopic();
    const started = Date.now();
    const waiting = fetchClose(`${topic.url}?from=latest&wait=10`).then((response) => response.json());
    await new Promise((resolve) => setTimeout(resolve, 200));
    await publish(topic.name, ["a", "b", "c"]);
    const first = await waiting;
    assert.ok(Date.now() - started < 5_000, "answered once messages arrived, not at the wait");
    assert.deepEqual(
      first.messages.map((message: { data: string }) => decode(message.data)),
      ["a", "b", "c"],
    );
    assert.equal(first.nextFrom, "3");
    const limited = await (await fetchClose(`${topic.url}?from=0&wait=1&max=2`)).json();
    assert.deepEqual(
      limited.messages.map((message: { offset: string }) => message.offset),
      ["1", "2"],
    );
    assert.equal(limited.nextFrom, "2");
    const empty = await (await fetchClose(`${topic.url}?from=${first.nextFrom}&wait=0.3`)).json();
    assert.deepEqual(empty, { messages: [], nextFrom: "3" });
  });

  it("streams sse - bad input gets a JSON error before streaming and leaves the server and other clients fine", async () => {
    const topic = await newTopic();
    const bystander = await SseReader.open(topic.url);
    const cases: [string, Record<string, string>, number][] = [
      [`${server.url}/v1/projects/p/topics/${uniqueName("missing")}/events`, {}, 404],
      [`${topic.url}?from=abc`, {}, 400],
      [`${topic.url}?from=-3`, {}, 400],
      [`${topic.url}?from=99`, {}, 400],
      [topic.url, { "last-event-id": "x1" }, 400],
      [`${topic.url}?filter=${encodeURIComponent("attributes.a ==")}`, {}, 400],
      [`${topic.url}?wait=600`, {}, 400],
      [`${topic.url}?wait=1&max=0`, {}, 400],
    ];
    for (const [url, headers, status] of cases) {
      const accept = url.includes("wait=") ? "application/json" : "text/event-stream";
      const response = await fetchClose(url, { headers: { accept, ...headers }, signal: AbortSignal.timeout(5_000) });
      const body = await response.text();
      assert.equal(response.status, status, `${url} ${body}`);
      assert.match(response.headers.get("content-type") ?? "", /application\/json/);
      assert.ok(JSON.parse(body).error.message.length > 0);
    }
    await publish(topic.name, ["still fine"]);
    await bystander.until((r) => r.messages().length === 1);
    bystander.close();
  });

  it("streams sse - curl -N streams events as they are published", async (t) => {
    if (spawnSync("curl", ["--version"]).status !== 0) {
      if (peersRequired()) assert.fail("curl is required in CI");
      t.skip("curl is not installed");
      return;
    }
    const topic = await newTopic();
    await publish(topic.name, ["before"]);
    const curl = spawn("curl", ["-N", "-s", "-H", "Accept: text/event-stream", `${topic.url}?from=earliest`]);
    let output = "";
    curl.stdout.on("data", (chunk) => {
      output += String(chunk);
    });
    const deadline = Date.now() + 10_000;
    while (!output.includes("id: 1\n") && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    await publish(topic.name, ["after"]);
    while (!output.includes("id: 2\n") && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    curl.kill();
    await new Promise((resolve) => curl.once("close", resolve));
    assert.match(output, /^retry: 2000\n\n/);
    assert.match(output, /id: 1\nevent: message\ndata: \{"offset":"1",/);
    assert.match(output, /id: 2\nevent: message\ndata: \{"offset":"2",/);
  });
});
