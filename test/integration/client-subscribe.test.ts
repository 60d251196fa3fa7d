// streamgate/client subscribe over SSE, WebSocket and long poll: receive, resume, reconnect after real cuts, fatal errors, abort.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  createStreamClient,
  type StreamClientError,
  type StreamMessage,
  type StreamTransport,
} from "../../src/client/index.js";
import { type CutProxy, startCutProxy } from "../harness/cut-proxy.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";

/** Tests ask for `connection: close` so no idle keep-alive socket outlives a test (the harness fails on leaks). */
const closingFetch: typeof fetch = (input, init = {}) =>
  fetch(input, { ...init, headers: { ...(init.headers as Record<string, string>), connection: "close" } });

const transports: StreamTransport[] = ["sse", "websocket", "longpoll"];
const text = (message: StreamMessage) => new TextDecoder().decode(message.data);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Takes `count` messages from an iterable; rejects after `timeoutMs`. */
async function take(
  iterable: AsyncIterable<StreamMessage>,
  count: number,
  timeoutMs = 10_000,
): Promise<StreamMessage[]> {
  const out: StreamMessage[] = [];
  if (count === 0) return out;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${out.length} of ${count} messages`)), timeoutMs);
  });
  const reading = (async () => {
    for await (const message of iterable) {
      out.push(message);
      if (out.length >= count) break;
    }
    return out;
  })();
  try {
    return await Promise.race([reading, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe("client - subscribe", () => {
  let server: TestServer;
  let proxy: CutProxy;
  before(async () => {
    server = await startTestServer({ heartbeatMs: 1_000 });
    proxy = await startCutProxy(server);
  });
  after(async () => {
    await proxy.close();
    await server.close();
  });

  async function newTopic(): Promise<string> {
    const topic = `projects/p/topics/${uniqueName("client")}`;
    await server.server.engine.createTopic({ name: topic });
    return topic;
  }

  for (const transport of transports) {
    it(`client ${transport} - publishes and receives the decoded JSON form from earliest, an offset and latest`, async () => {
      const topic = await newTopic();
      // Reads go through the proxy: after a stream is abandoned, Node 20's fetch may open one fresh idle keep-alive
      // socket (undici re-queues the aborted request); closing the proxy ends it before the harness counts leaks.
      const client = createStreamClient({ baseUrl: proxy.url, transport, fetch: closingFetch });
      const results = await client.publish(topic, [
        { data: "one", attributes: { kind: "a" }, orderingKey: "k" },
        { data: new Uint8Array([0, 255, 1]) },
      ]);
      assert.equal(results.length, 2);
      assert.ok(results.every((result) => result.messageId !== ""));
      const all = await take(client.subscribe(topic, { from: "earliest" }), 2);
      assert.deepEqual(
        all.map((message) => message.offset),
        [1, 2],
      );
      assert.equal(text(all[0]!), "one");
      assert.deepEqual(all[0]!.attributes, { kind: "a" });
      assert.equal(all[0]!.orderingKey, "k");
      assert.equal(all[0]!.messageId, results[0]!.messageId);
      assert.ok(all[0]!.publishTime instanceof Date && Math.abs(all[0]!.publishTime.getTime() - Date.now()) < 60_000);
      assert.deepEqual([...all[1]!.data], [0, 255, 1]);

      const resumed = await take(client.subscribe(topic, { from: 1 }), 1);
      assert.equal(resumed[0]!.offset, 2);

      // latest: only what is published after subscribing.
      const live = take(client.subscribe(topic, { from: "latest" }), 1);
      await sleep(300);
      await client.publish(topic, { data: "three" });
      const [third] = await live;
      assert.equal(third!.offset, 3);
      assert.equal(text(third!), "three");
      await client.close();
    });

    it(`client ${transport} - resumes after the connection is cut, without gap or duplicate, reporting each open`, async () => {
      const topic = await newTopic();
      const publisher = createStreamClient({ baseUrl: server.url, fetch: closingFetch });
      const client = createStreamClient({
        baseUrl: proxy.url,
        transport,
        fetch: closingFetch,
        reconnect: { initialDelayMs: 10, maxDelayMs: 100, jitter: 0.5 },
      });
      const total = 300;
      let reconnects = 0;
      let opens = 0;
      const received: number[] = [];
      const reading = (async () => {
        for await (const message of client.subscribe(topic, {
          from: "earliest",
          onOpen: () => opens++,
          onReconnect: () => reconnects++,
        })) {
          received.push(message.offset);
          if (received.length >= total) break;
        }
      })();
      for (let batch = 0; batch < 10; batch++) {
        await publisher.publish(
          topic,
          Array.from({ length: total / 10 }, (_, index) => ({ data: `m${batch * 30 + index}` })),
        );
        await sleep(30);
        proxy.cut();
      }
      await reading;
      assert.deepEqual(
        received,
        Array.from({ length: total }, (_, index) => index + 1),
      );
      assert.ok(reconnects >= 1, `expected reconnects, got ${reconnects}`);
      // Every connection that streamed opened first; a reconnect cut before its answer opens nothing.
      assert.ok(opens >= 2 && opens <= reconnects + 1, `${opens} opens for ${reconnects} reconnects`);
      await client.close();
      await publisher.close();
    });

    it(`client ${transport} - unknown topic and bad filter are thrown, not retried`, async () => {
      const client = createStreamClient({ baseUrl: server.url, transport, fetch: closingFetch });
      let reconnects = 0;
      const onReconnect = () => reconnects++;
      await assert.rejects(
        take(client.subscribe(`projects/p/topics/${uniqueName("missing")}`, { from: "earliest", onReconnect }), 1),
        (error: StreamClientError) => error.status === "NOT_FOUND" && !error.retryable,
      );
      const topic = await newTopic();
      await assert.rejects(
        take(client.subscribe(topic, { from: "earliest", filter: "attributes.x ==== nonsense(", onReconnect }), 1),
        (error: StreamClientError) => error.status === "INVALID_ARGUMENT",
      );
      assert.equal(reconnects, 0);
      await client.close();
    });

    it(`client ${transport} - an aborted signal ends the iteration and closes the connection`, async () => {
      const topic = await newTopic();
      const client = createStreamClient({ baseUrl: proxy.url, transport, fetch: closingFetch });
      const controller = new AbortController();
      const iteration = take(client.subscribe(topic, { from: "earliest", signal: controller.signal }), 1);
      await sleep(300);
      assert.ok(proxy.open() >= 1, "a connection is open while subscribed");
      const endedBefore = proxy.ended();
      controller.abort();
      assert.deepEqual(await iteration, []);
      // The stream's connection closes. (Node 20's fetch may then open a fresh idle keep-alive socket: not counted here.)
      const deadline = Date.now() + 2_000;
      while (proxy.ended() === endedBefore && Date.now() < deadline) await sleep(20);
      assert.ok(proxy.ended() > endedBefore, "the subscription's connection closed");
      await client.close();
    });
  }
});
