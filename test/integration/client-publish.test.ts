// streamgate/client publish (batching, retries, fatal errors) against a real server, and the client's handling of
// auth failures, slow-consumer drops and gap events (scripted with a stub fetch: the server has no auth yet, and
// drops/gaps are hard to provoke on demand).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  createStreamClient,
  type StreamClientError,
  type StreamGap,
  type StreamMessage,
} from "../../src/client/index.js";
import { type CutProxy, startCutProxy } from "../harness/cut-proxy.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";

/** `connection: close`, so no idle keep-alive socket outlives the test (the harness fails on leaked connections). */
const closingFetch: typeof fetch = (input, init = {}) =>
  fetch(input, { ...init, headers: { ...(init.headers as Record<string, string>), connection: "close" } });

const fast = { initialDelayMs: 1, maxDelayMs: 5, jitter: 0 };

async function collect(iterable: AsyncIterable<StreamMessage>, count: number): Promise<StreamMessage[]> {
  const out: StreamMessage[] = [];
  for await (const message of iterable) {
    out.push(message);
    if (out.length >= count) break;
  }
  return out;
}

/** A fetch that answers SSE requests from a script of bodies, one per connection, and records the URLs asked. */
function scriptedSse(bodies: string[], urls: string[]): typeof fetch {
  return async (input) => {
    urls.push(String(input));
    const body = bodies.shift();
    if (body === undefined) return new Promise<Response>(() => {});
    return new Response(body, { status: 200, headers: { "content-type": "text/event-stream" } });
  };
}

const sseMessage = (offset: number, text: string) =>
  `id: ${offset}\nevent: message\ndata: ${JSON.stringify({
    offset: String(offset),
    messageId: `m${offset}`,
    publishTime: "2024-05-01T12:00:00.000Z",
    attributes: {},
    orderingKey: "",
    data: btoa(text),
  })}\n\n`;

describe("client - publish and failure handling", () => {
  let server: TestServer;
  let proxy: CutProxy;
  before(async () => {
    server = await startTestServer();
    proxy = await startCutProxy(server);
  });
  after(async () => {
    // Node 20's fetch may keep one fresh idle socket after a stream is abandoned; the proxy's close ends it.
    await proxy.close();
    await server.close();
  });

  it("client publish - 250 concurrent publishes go out in 3 batched :publish calls, in order, each resolving its id", async () => {
    const topic = `projects/p/topics/${uniqueName("batch")}`;
    await server.server.engine.createTopic({ name: topic });
    let calls = 0;
    const client = createStreamClient({
      baseUrl: proxy.url,
      fetch: (input, init) => {
        if (String(input).endsWith(":publish")) calls++;
        return closingFetch(input, init);
      },
    });
    const results = await Promise.all(
      Array.from({ length: 250 }, (_, index) => client.publish(topic, { data: `p${index}` })),
    );
    assert.equal(calls, 3);
    assert.equal(new Set(results.map((result) => result.messageId)).size, 250);
    const received = await collect(client.subscribe(topic, { from: "earliest" }), 250);
    assert.deepEqual(
      received.map((message) => new TextDecoder().decode(message.data)),
      Array.from({ length: 250 }, (_, index) => `p${index}`),
    );
    assert.deepEqual(
      received.map((message) => message.messageId),
      results.map((result) => result.messageId),
    );
    await client.close();
  });

  it("client publish - retries 503, 429 and network errors, then resolves; an unknown topic rejects at once", async () => {
    const topic = `projects/p/topics/${uniqueName("retry")}`;
    await server.server.engine.createTopic({ name: topic });
    const failures: (() => Response)[] = [
      () => new Response('{"error":{"code":503,"status":"UNAVAILABLE","message":"busy"}}', { status: 503 }),
      () => new Response("slow down", { status: 429 }),
      () => {
        throw new TypeError("fetch failed");
      },
    ];
    let calls = 0;
    const client = createStreamClient({
      baseUrl: server.url,
      reconnect: fast,
      fetch: async (input, init) => {
        calls++;
        const failure = failures.shift();
        return failure === undefined ? closingFetch(input, init) : failure();
      },
    });
    const result = await client.publish(topic, { data: "once" });
    assert.ok(result.messageId !== "");
    assert.equal(calls, 4);
    assert.equal((await server.server.engine.topicStats(topic)).nextOffset, 2, "stored exactly once");

    calls = 0;
    await assert.rejects(
      client.publish(`projects/p/topics/${uniqueName("missing")}`, { data: "x" }),
      (error: StreamClientError) => {
        return error.status === "NOT_FOUND" && error.httpStatus === 404;
      },
    );
    assert.equal(calls, 1, "not retried");
    await client.close();
  });

  it("client subscribe - 401 and 403 are thrown without retry", async () => {
    for (const [status, name] of [
      [401, "UNAUTHENTICATED"],
      [403, "PERMISSION_DENIED"],
    ] as const) {
      let calls = 0;
      const client = createStreamClient({
        baseUrl: "http://streamgate.invalid",
        reconnect: fast,
        fetch: async () => {
          calls++;
          return new Response(JSON.stringify({ error: { code: status, status: name, message: "no" } }), { status });
        },
      });
      await assert.rejects(collect(client.subscribe("orders", { from: 0 }), 1), (error: StreamClientError) => {
        return error.status === name && !error.retryable;
      });
      assert.equal(calls, 1);
      await client.close();
    }
  });

  it("client subscribe - a slow-consumer drop (final SSE error event) reconnects after the last offset; gaps reach onGap", async () => {
    const urls: string[] = [];
    const slowConsumer = `event: error\ndata: ${JSON.stringify({
      code: 429,
      status: "RESOURCE_EXHAUSTED",
      reason: "SLOW_CONSUMER",
      message: "slow consumer",
      resumeFrom: "2",
    })}\n\n`;
    const gap = 'id: 9\nevent: gap\ndata: {"fromOffset":"3","firstAvailable":"10","lost":7}\n\n';
    const client = createStreamClient({
      baseUrl: "http://streamgate.invalid",
      reconnect: fast,
      fetch: scriptedSse([sseMessage(1, "a") + sseMessage(2, "b") + slowConsumer, gap + sseMessage(10, "c")], urls),
    });
    const gaps: StreamGap[] = [];
    const received = await collect(client.subscribe("orders", { from: 0, onGap: (item) => gaps.push(item) }), 3);
    assert.deepEqual(
      received.map((message) => message.offset),
      [1, 2, 10],
    );
    assert.deepEqual(gaps, [{ fromOffset: 3, firstAvailable: 10, lost: 7 }]);
    assert.equal(urls.length, 2);
    assert.match(urls[0]!, /\/v1\/projects\/default\/topics\/orders\/events\?from=0$/);
    assert.match(urls[1]!, /from=2$/);
    await client.close();
  });
});
