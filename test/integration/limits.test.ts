// Limits on real transports: publish rate per principal (REST 429 + retry-after, gRPC RESOURCE_EXHAUSTED,
// WebSocket error frame), subscriptions and streams per principal (SSE, WebSocket), connections per IP,
// HTTP/2 streams per connection. Principals are anonymous here (auth off): one per client address, so
// clients bind distinct loopback addresses (127.0.0.x) to act as different principals.
import assert from "node:assert/strict";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { connect as http2Connect } from "node:http2";
import { connect as netConnect, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import WebSocket from "ws";
import { bidi, createGrpcJsClients, grpcFailure, unary } from "../harness/grpc-js-clients.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { withTimeout } from "../harness/wait-for.js";

interface HttpAnswer {
  status: number;
  headers: IncomingMessage["headers"];
  text: string;
}

/** One HTTP/1.1 request on its own connection (closed afterwards) from `localAddress`. */
function httpFrom(
  localAddress: string,
  url: string,
  options: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<HttpAnswer> {
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  return withTimeout(
    new Promise<HttpAnswer>((resolve, reject) => {
      const req = httpRequest(
        url,
        {
          method: options.method ?? "GET",
          localAddress,
          agent: false,
          headers: {
            connection: "close",
            ...(payload === undefined ? {} : { "content-type": "application/json" }),
            ...options.headers,
          },
        },
        (response) => {
          let text = "";
          response.setEncoding("utf8");
          response.on("data", (chunk: string) => {
            text += chunk;
          });
          response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, text }));
          response.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(payload);
    }),
    10_000,
    `${options.method ?? "GET"} ${url} from ${localAddress}`,
  );
}

/** An open SSE response from `localAddress`: status, headers and a close(). Non-200 answers are read whole. */
function openSse(
  localAddress: string,
  url: string,
): Promise<{ status: number; body: () => Promise<string>; close: () => Promise<void> }> {
  return withTimeout(
    new Promise((resolve, reject) => {
      const req = httpRequest(
        url,
        { localAddress, agent: false, headers: { accept: "text/event-stream" } },
        (response) => {
          let text = "";
          response.setEncoding("utf8");
          response.on("data", (chunk: string) => {
            text += chunk;
          });
          const ended = new Promise<string>((done) => response.once("close", () => done(text)));
          resolve({
            status: response.statusCode ?? 0,
            body: () => withTimeout(ended, 5_000, "SSE body"),
            close: async () => {
              req.destroy();
              await ended;
            },
          });
        },
      );
      req.on("error", reject);
      req.end();
    }),
    10_000,
    `SSE ${url} from ${localAddress}`,
  );
}

function reasonOf(text: string): string | undefined {
  const body = JSON.parse(text) as { error?: { reason?: string; details?: { reason?: string }[] } };
  return body.error?.details?.[0]?.reason ?? body.error?.reason;
}

const publishBody = (count: number) => ({
  messages: Array.from({ length: count }, (_, i) => ({ data: Buffer.from(`m${i}`).toString("base64") })),
});

describe("limits", () => {
  let server: TestServer;
  const topicPath = "/v1/projects/limits/topics/orders";

  before(async () => {
    server = await startTestServer({
      publishRate: 5,
      publishBurst: 20,
      maxSubscriptionsPerPrincipal: 2,
      maxConnectionsPerPrincipal: 3,
      maxMessageBytes: 1024,
    });
    const created = await httpFrom("127.0.0.1", `${server.url}${topicPath}`, { method: "PUT", body: {} });
    assert.equal(created.status, 200, created.text);
  });

  after(async () => {
    await server.close();
  });

  it("limits - a REST publish flood from one principal gets 429 with retry-after while another principal's publishes all succeed", async () => {
    const flooder = "127.0.0.4";
    const other = "127.0.0.5";
    const publish = (from: string, count: number) =>
      httpFrom(from, `${server.url}${topicPath}:publish`, { method: "POST", body: publishBody(count) });
    const flood = (async () => {
      const answers: HttpAnswer[] = [];
      for (let i = 0; i < 15; i++) answers.push(await publish(flooder, 10));
      return answers;
    })();
    const steady = Promise.all(Array.from({ length: 15 }, () => publish(other, 1)));
    const [flooded, served] = await Promise.all([flood, steady]);

    const refused = flooded.filter((answer) => answer.status === 429);
    assert.ok(refused.length >= 5, `expected most of the flood refused, got ${refused.length} of 15`);
    assert.ok(flooded[0]!.status === 200 && flooded[1]!.status === 200, "the burst (20 messages) passes first");
    for (const answer of refused) {
      assert.equal(reasonOf(answer.text), "RATE_LIMITED");
      assert.match(String(answer.headers["retry-after"]), /^[1-9]\d*$/);
    }
    assert.deepEqual(
      served.map((answer) => answer.status),
      served.map(() => 200),
      "every publish of the other principal succeeds",
    );
  });

  it("limits - a message over --max-message-bytes is refused on REST (429 RESOURCE_EXHAUSTED) and gRPC (RESOURCE_EXHAUSTED)", async () => {
    const big = { messages: [{ data: Buffer.alloc(2000, 1).toString("base64") }] };
    const rest = await httpFrom("127.0.0.10", `${server.url}${topicPath}:publish`, { method: "POST", body: big });
    assert.equal(rest.status, 429, rest.text);
    assert.equal((JSON.parse(rest.text) as { error: { status: string } }).error.status, "RESOURCE_EXHAUSTED");
    const clients = createGrpcJsClients(server.hostPort);
    try {
      const failure = await grpcFailure(
        unary(clients.publisher, "Publish", {
          topic: "projects/limits/topics/orders",
          messages: [{ data: Buffer.alloc(2000, 1) }],
        }),
      );
      assert.equal(failure.code, grpc.status.RESOURCE_EXHAUSTED);
    } finally {
      clients.close();
    }
  });

  it("limits - a gRPC (grpc-js) publish over the rate fails RESOURCE_EXHAUSTED and is counted in /metrics", async () => {
    const clients = createGrpcJsClients(server.hostPort);
    try {
      const request = (count: number) => ({
        topic: "projects/limits/topics/orders",
        messages: Array.from({ length: count }, () => ({ data: Buffer.from("x") })),
      });
      // A batch larger than the burst is charged as the burst: it passes on a full bucket, the next is refused.
      await unary(clients.publisher, "Publish", request(30));
      const failure = await grpcFailure(unary(clients.publisher, "Publish", request(5)));
      assert.equal(failure.code, grpc.status.RESOURCE_EXHAUSTED);
      assert.match(failure.details, /publish rate limit/);
    } finally {
      clients.close();
    }
    const metrics = await httpFrom("127.0.0.1", `${server.url}/metrics`);
    const line = metrics.text
      .split("\n")
      .find((row) => row.startsWith('streamgate_rate_limited_total{limit="publish"}'));
    assert.ok(line !== undefined && Number(line.split(" ")[1]) >= 1, `publish limit counted: ${line}`);
  });

  it("limits - a WebSocket publish over the rate gets an error frame (RATE_LIMITED) and the connection stays usable", async () => {
    const ws = new WebSocket(`${server.url.replace("http", "ws")}/v1/ws`, { localAddress: "127.0.0.6" });
    const frames: Record<string, unknown>[] = [];
    const waiters: (() => void)[] = [];
    ws.on("message", (data) => {
      frames.push(JSON.parse(String(data)) as Record<string, unknown>);
      for (const wake of waiters.splice(0)) wake();
    });
    const frameFor = (ref: string) =>
      withTimeout(
        (async () => {
          for (;;) {
            const found = frames.find((frame) => frame.ref === ref);
            if (found !== undefined) return found;
            await new Promise<void>((resolve) => waiters.push(resolve));
          }
        })(),
        5_000,
        `frame for ${ref}`,
      );
    try {
      await withTimeout(
        new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject)),
        5_000,
        "open",
      );
      const send = (ref: string, count: number) =>
        ws.send(
          JSON.stringify({
            type: "publish",
            ref,
            topic: "projects/limits/topics/orders",
            messages: publishBody(count).messages,
          }),
        );
      send("first", 20);
      assert.equal((await frameFor("first")).type, "published");
      send("second", 5);
      const refused = await frameFor("second");
      assert.equal(refused.type, "error");
      assert.equal(refused.status, "RESOURCE_EXHAUSTED");
      assert.equal(refused.reason, "RATE_LIMITED");
      assert.equal(ws.readyState, WebSocket.OPEN);
    } finally {
      ws.close();
      await withTimeout(new Promise((resolve) => ws.once("close", resolve)), 5_000, "close");
    }
  });

  it("limits - the subscription past --max-subscriptions-per-principal gets 429; other principals and a freed slot are served", async () => {
    const url = `${server.url}${topicPath}/events`;
    const first = await openSse("127.0.0.7", url);
    const second = await openSse("127.0.0.7", url);
    const opened = [first, second];
    try {
      assert.equal(first.status, 200);
      assert.equal(second.status, 200);
      const third = await openSse("127.0.0.7", url);
      assert.equal(third.status, 429);
      assert.equal(reasonOf(await third.body()), "TOO_MANY_PRINCIPAL_SUBSCRIPTIONS");
      const elsewhere = await openSse("127.0.0.8", url);
      opened.push(elsewhere);
      assert.equal(elsewhere.status, 200, "another principal is not limited by the first");
      await first.close();
      opened.shift();
      // The slot frees when the server sees the close; retry briefly (bounded) rather than sleep.
      let again = await openSse("127.0.0.7", url);
      for (let attempt = 0; again.status === 429 && attempt < 50; attempt++) {
        await again.body();
        await new Promise((resolve) => setTimeout(resolve, 20));
        again = await openSse("127.0.0.7", url);
      }
      opened.push(again);
      assert.equal(again.status, 200, "a closed subscription frees its slot");
    } finally {
      await Promise.all(opened.map((stream) => stream.close()));
    }
  });

  it("limits - over HTTP/2 (h2c) a stream past the principal's limits is answered 429 too", async () => {
    // A WebSocket takes one of the principal's 3 streams without a subscription, so the third h2c stream
    // meets the stream limit at the edge (the second one meets the subscription limit inside).
    const ws = new WebSocket(`${server.url.replace("http", "ws")}/v1/ws`, { localAddress: "127.0.0.12" });
    await withTimeout(new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject)), 5_000, "open");
    const session = http2Connect(server.url, {
      createConnection: () => netConnect({ host: server.host, port: server.port, localAddress: "127.0.0.12" }),
    });
    session.on("error", () => undefined);
    const open = () =>
      withTimeout(
        new Promise<{ status: number; stream: ReturnType<typeof session.request>; body: Promise<string> }>(
          (resolve, reject) => {
            const stream = session.request({ ":path": `${topicPath}/events`, accept: "text/event-stream" });
            let text = "";
            stream.setEncoding("utf8");
            stream.on("data", (chunk: string) => {
              text += chunk;
            });
            const body = new Promise<string>((done) => stream.once("close", () => done(text)));
            stream.once("response", (headers) => resolve({ status: Number(headers[":status"]), stream, body }));
            stream.once("error", reject);
          },
        ),
        5_000,
        "h2 events stream",
      );
    const opened = [await open(), await open()];
    try {
      assert.deepEqual(
        opened.map((entry) => entry.status),
        [200, 200],
      );
      const refused = await open();
      assert.equal(refused.status, 429);
      assert.equal(reasonOf(await withTimeout(refused.body, 5_000, "refusal body")), "TOO_MANY_PRINCIPAL_CONNECTIONS");
    } finally {
      for (const entry of opened) entry.stream.close();
      await new Promise<void>((resolve) => session.close(() => resolve()));
      ws.close();
      await withTimeout(new Promise((resolve) => ws.once("close", resolve)), 5_000, "close");
    }
  });

  it("limits - StreamingPull streams count as subscriptions: the third fails RESOURCE_EXHAUSTED, and a cancelled one frees its slot", async () => {
    const names = ["pull-a", "pull-b", "pull-c"];
    for (const name of names) {
      const created = await httpFrom("127.0.0.11", `${server.url}/v1/projects/limits/subscriptions/${name}`, {
        method: "PUT",
        body: { topic: "projects/limits/topics/orders" },
      });
      assert.equal(created.status, 200, created.text);
    }
    const clients = createGrpcJsClients(server.hostPort);
    const open = (name: string) => {
      const call = bidi(clients.subscriber, "StreamingPull");
      const status = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
      const received: string[] = [];
      call.on("error", () => undefined);
      const delivered = new Promise<void>((resolve) => call.once("data", () => resolve()));
      call.on("data", (response: { receivedMessages: { ackId: string; message: { data: Buffer } }[] }) => {
        for (const item of response.receivedMessages) received.push(item.message.data.toString());
        call.write({ ackIds: response.receivedMessages.map((item) => item.ackId) });
      });
      call.write({ subscription: `projects/limits/subscriptions/${name}`, streamAckDeadlineSeconds: 30 });
      return { call, status, received, delivered };
    };
    const first = open("pull-a");
    const second = open("pull-b");
    const calls = [first, second];
    try {
      const third = open("pull-c");
      calls.push(third);
      const refused = await withTimeout(third.status, 5_000, "third StreamingPull status");
      assert.equal(refused.code, grpc.status.RESOURCE_EXHAUSTED);
      assert.match(refused.details, /live subscriptions/);

      first.call.cancel();
      await withTimeout(first.status, 5_000, "cancelled StreamingPull status");
      // The slot frees when the server sees the cancel; retry (bounded) until a new stream is not refused.
      let again = open("pull-c");
      calls.push(again);
      for (let attempt = 0; attempt < 50; attempt++) {
        const published = await httpFrom("127.0.0.11", `${server.url}${topicPath}:publish`, {
          method: "POST",
          body: { messages: [{ data: Buffer.from(`after-${attempt}`).toString("base64") }] },
        });
        assert.equal(published.status, 200, published.text);
        const outcome = await withTimeout(
          Promise.race([again.status.then((status) => ({ status })), again.delivered.then(() => ({ status: null }))]),
          5_000,
          "delivery or refusal",
        );
        if (outcome.status === null) break;
        assert.equal(outcome.status.code, grpc.status.RESOURCE_EXHAUSTED);
        again = open("pull-c");
        calls.push(again);
      }
      assert.ok(again.received.length > 0, "a new StreamingPull receives after a slot was freed");
    } finally {
      for (const { call } of calls) call.cancel();
      await Promise.all(calls.map(({ status }) => withTimeout(status, 5_000, "StreamingPull end")));
      clients.close();
    }
  });

  it("limits - long-lived streams past --max-connections-per-principal are refused (long poll 429, WebSocket upgrade 429)", async () => {
    const from = "127.0.0.9";
    const ws = new WebSocket(`${server.url.replace("http", "ws")}/v1/ws`, { localAddress: from });
    await withTimeout(new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject)), 5_000, "open");
    const url = `${server.url}${topicPath}/events`;
    const streams = [await openSse(from, url), await openSse(from, url)];
    try {
      assert.deepEqual(
        streams.map((stream) => stream.status),
        [200, 200],
      );
      const poll = await httpFrom(from, `${url}?wait=1`);
      assert.equal(poll.status, 429);
      assert.equal(reasonOf(poll.text), "TOO_MANY_PRINCIPAL_CONNECTIONS");
      const refused = new WebSocket(`${server.url.replace("http", "ws")}/v1/ws`, { localAddress: from });
      const status = await withTimeout(
        new Promise<number>((resolve, reject) => {
          refused.once("unexpected-response", (_request, response) => {
            resolve(response.statusCode ?? 0);
            response.resume();
            refused.terminate();
          });
          refused.once("open", () => reject(new Error("the upgrade past the limit was accepted")));
          refused.once("error", () => undefined);
        }),
        5_000,
        "refused upgrade",
      );
      assert.equal(status, 429);
    } finally {
      await Promise.all(streams.map((stream) => stream.close()));
      ws.close();
      await withTimeout(new Promise((resolve) => ws.once("close", resolve)), 5_000, "close");
    }
  });
});

describe("limits - connections", () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer({ maxConnectionsPerIp: 2, maxStreamsPerConnection: 7 });
  });

  after(async () => {
    await server.close();
  });

  const connectFrom = (localAddress: string) =>
    withTimeout(
      new Promise<Socket>((resolve, reject) => {
        const socket = netConnect({ host: server.host, port: server.port, localAddress }, () => resolve(socket));
        socket.once("error", reject);
      }),
      5_000,
      "connect",
    );

  it("limits - past --max-connections-per-ip a new connection gets HTTP 429 (TOO_MANY_CONNECTIONS) or, for gRPC, RESOURCE_EXHAUSTED; other IPs are served", async () => {
    const held = [await connectFrom("127.0.0.1"), await connectFrom("127.0.0.1")];
    try {
      // The server counts a connection when it accepts it; make sure both are in before the third.
      for (const socket of held) socket.write("GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n");
      await Promise.all(
        held.map((socket) => withTimeout(new Promise((resolve) => socket.once("data", resolve)), 5_000, "healthz")),
      );
      const refused = await httpFrom("127.0.0.1", `${server.url}/healthz`);
      assert.equal(refused.status, 429);
      assert.equal(reasonOf(refused.text), "TOO_MANY_CONNECTIONS");

      const clients = createGrpcJsClients(server.hostPort);
      try {
        const failure = await grpcFailure(unary(clients.health, "Check", { service: "" }, { deadlineMs: 5_000 }));
        // h2c gets GOAWAY ENHANCE_YOUR_CALM, which gRPC clients report as RESOURCE_EXHAUSTED.
        assert.equal(failure.code, grpc.status.RESOURCE_EXHAUSTED);
      } finally {
        clients.close();
      }
      // Plain HTTP/2 with prior knowledge gets the same 429 as HTTP/1.1, then GOAWAY.
      const session = http2Connect(server.url, {
        createConnection: () => netConnect({ host: server.host, port: server.port, localAddress: "127.0.0.1" }),
      });
      session.on("error", () => undefined);
      try {
        const answer = await withTimeout(
          new Promise<{ status: number; text: string }>((resolve, reject) => {
            const stream = session.request({ ":path": "/healthz" }).end();
            let status = 0;
            let text = "";
            stream.on("response", (headers) => {
              status = Number(headers[":status"]);
            });
            stream.setEncoding("utf8").on("data", (chunk: string) => {
              text += chunk;
            });
            stream.on("end", () => resolve({ status, text }));
            stream.on("error", reject);
          }),
          5_000,
          "h2c refusal",
        );
        assert.equal(answer.status, 429);
        assert.equal(reasonOf(answer.text), "TOO_MANY_CONNECTIONS");
      } finally {
        session.destroy();
      }

      const elsewhere = await httpFrom("127.0.0.2", `${server.url}/healthz`);
      assert.equal(elsewhere.status, 200);
    } finally {
      for (const socket of held) socket.destroy();
    }
    // Once they are closed the address may connect again (bounded retry while the server sees the closes).
    let again = await httpFrom("127.0.0.1", `${server.url}/healthz`).catch(() => null);
    for (let attempt = 0; again?.status !== 200 && attempt < 50; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      again = await httpFrom("127.0.0.1", `${server.url}/healthz`).catch(() => null);
    }
    assert.equal(again?.status, 200);
  });

  it("limits - HTTP/2 sessions advertise --max-streams-per-connection as SETTINGS_MAX_CONCURRENT_STREAMS", async () => {
    // From an address of its own: the per-IP test above may still hold 127.0.0.1's slots.
    const session = http2Connect(server.url, {
      createConnection: () => netConnect({ host: server.host, port: server.port, localAddress: "127.0.0.3" }),
    });
    try {
      const settings = await withTimeout(
        new Promise<{ maxConcurrentStreams?: number }>((resolve, reject) => {
          session.once("remoteSettings", resolve);
          session.once("error", reject);
        }),
        5_000,
        "remote settings",
      );
      assert.equal(settings.maxConcurrentStreams, 7);
    } finally {
      await new Promise<void>((resolve) => session.close(() => resolve()));
    }
  });
});
