import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Counter, Histogram, Registry } from "prom-client";
import { PagedCounter, PagedHistogram } from "./paged-metrics.js";

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** A deterministic generator (mulberry32) so a failure reproduces. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Publish-to-delivery seconds as the delivery paths compute them, plus bounds, zero and values past the last bucket. */
function latencies(next: () => number, n: number): number[] {
  const values: number[] = [0, ...BUCKETS, 10.000001, 42, 0.0010000001];
  while (values.length < n) {
    const pick = next();
    if (pick < 0.6) values.push(Math.round(next() * 200) / 1000);
    else if (pick < 0.8) values.push(BUCKETS[Math.floor(next() * BUCKETS.length)] as number);
    else if (pick < 0.95) values.push(next() * 3);
    else values.push(Math.round(next() * 60_000) / 1000);
  }
  // Shuffle so bounds and outliers land among the rest.
  for (let i = values.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [values[i], values[j]] = [values[j] as number, values[i] as number];
  }
  return values;
}

function pair() {
  const plain = new Registry();
  const paged = new Registry();
  const config = {
    name: "streamgate_publish_to_delivery_seconds",
    help: "Time from publish to a message's first delivery",
    labelNames: ["path"] as const,
    buckets: BUCKETS,
  };
  const counterConfig = {
    name: "streamgate_stream_messages_sent_total",
    help: "Messages sent to live-stream clients",
    labelNames: ["topic", "transport"] as const,
  };
  return {
    plain,
    paged,
    histogram: new Histogram({ ...config, registers: [plain] }),
    pagedHistogram: new PagedHistogram({ ...config, registers: [paged] }),
    counter: new Counter({ ...counterConfig, registers: [plain] }),
    pagedCounter: new PagedCounter({ ...counterConfig, registers: [paged] }),
  };
}

describe("paged metrics", () => {
  for (const seed of [1, 7, 12, 2026, 99_991]) {
    it(`gives prom-client's exposition for values observed one by one (seed ${seed})`, async () => {
      const next = random(seed);
      const m = pair();
      const paths = ["sse", "websocket", "stream", "pull", "grpc"];
      // Series resolved once, as a stream does; several streams share a label set.
      const streams = Array.from({ length: 12 }, (_, i) => {
        const path = paths[Math.floor(next() * paths.length)] as string;
        const topic = `projects/p/topics/t${i % 4}`;
        return {
          path,
          topic,
          latency: m.pagedHistogram.labels({ path }),
          sent: m.pagedCounter.labels({ topic, transport: path }),
        };
      });
      const values = latencies(next, 4000);
      let at = 0;
      let scrapes = 0;
      while (at < values.length) {
        // A page of 1–60 messages to one stream.
        const stream = streams[Math.floor(next() * streams.length)] as (typeof streams)[number];
        const page = values.slice(at, at + 1 + Math.floor(next() * 60));
        at += page.length;
        for (const value of page) {
          m.histogram.observe({ path: stream.path }, value);
          stream.latency.observe(value);
        }
        m.counter.inc({ topic: stream.topic, transport: stream.path }, page.length);
        stream.sent.inc(page.length);
        // Scrapes in between: flushing must not double-count.
        if (next() < 0.05) {
          scrapes++;
          assert.equal(await m.paged.metrics(), await m.plain.metrics());
        }
      }
      const expected = await m.plain.metrics();
      assert.equal(await m.paged.metrics(), expected);
      assert.equal(await m.paged.metrics(), expected, "a second scrape without new values changes nothing");
      assert.ok(scrapes > 0);
      assert.match(expected, /streamgate_publish_to_delivery_seconds_bucket\{le="\+Inf",path="/);
      assert.match(expected, /streamgate_publish_to_delivery_seconds_sum\{path="[a-z]+"\} \d+\.\d+/);
      assert.deepEqual(await m.pagedHistogram.histogram.get(), await m.histogram.get());
    });
  }

  it("lists nothing for a label set resolved but never recorded, like prom-client", async () => {
    const m = pair();
    m.pagedHistogram.labels({ path: "sse" });
    m.pagedCounter.labels({ topic: "t", transport: "sse" });
    assert.equal(await m.paged.metrics(), await m.plain.metrics());
    m.pagedHistogram.labels({ path: "websocket" }).observe(0.003);
    m.histogram.observe({ path: "websocket" }, 0.003);
    assert.equal(await m.paged.metrics(), await m.plain.metrics());
  });

  it("refuses what prom-client refuses", () => {
    const m = pair();
    assert.throws(() => m.pagedHistogram.labels({ path: "sse" }).observe(Number.NaN), TypeError);
    assert.throws(() => m.pagedHistogram.labels({ nope: "x" } as never), /label/i);
    assert.throws(() => m.pagedCounter.labels({ topic: "t", transport: "sse" }).inc(-1), /decrease/);
    const bad = m.pagedCounter.labels({ nope: "x" } as never);
    assert.throws(() => bad.inc(1), /label/i);
    assert.throws(() => bad.inc(1), /label/i, "still refused, and nothing kept for the scrape");
  });

  it("scrapes after a refused label set as before it", async () => {
    const m = pair();
    assert.throws(() => m.pagedCounter.labels({ nope: "x" } as never).inc(2), /label/i);
    m.pagedCounter.labels({ topic: "t", transport: "sse" }).inc(3);
    m.counter.inc({ topic: "t", transport: "sse" }, 3);
    assert.equal(await m.paged.metrics(), await m.plain.metrics());
  });
});
