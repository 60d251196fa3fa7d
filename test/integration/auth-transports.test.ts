// Auth on every transport, table-driven: bad tokens are refused as UNAUTHENTICATED, a token for topic A works on A
// and is PERMISSION_DENIED on B, with real clients (grpc-js, @google-cloud/pubsub, connect-es, fetch, ws). The grant
// checks fail closed (a call reaching them without a principal is INTERNAL), so each "works on A" also proves the
// principal's AsyncLocalStorage context reached the Engine or hub through that transport's handlers.
import assert from "node:assert/strict";
import { Agent } from "node:http";
import { after, before, describe, test } from "node:test";
import { Code as ConnectCode, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { PubSub } from "@google-cloud/pubsub";
import { SignJWT } from "jose";
import WebSocket from "ws";
import { Publisher } from "../../src/gen/google/pubsub/v1/pubsub_pb.js";
import { Events } from "../../src/gen/streamgate/v1/events_pb.js";
import { createDeadlineSignal } from "../../src/signals/index.js";
import { createGrpcJsClients, type GrpcJsClients } from "../harness/grpc-js-clients.js";
import { createLiveClients, grpc, type LiveClients } from "../harness/live-clients.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";
import { withTimeout } from "../harness/wait-for.js";

const SECRET = "auth-test-secret-0123456789abcdefghijklmnop";
const ISSUER = "https://issuer.streamgate.test";
const AUDIENCE = "streamgate";
const project = uniqueName("auth");
const names = {
  A: {
    topic: `projects/${project}/topics/orders`,
    pull: "orders-pull",
    stream: "orders-stream",
    client: "orders-client",
  },
  B: {
    topic: `projects/${project}/topics/payments`,
    pull: "payments-pull",
    stream: "payments-stream",
    client: "payments-client",
  },
} as const;
type Target = keyof typeof names;
const subscription = (target: Target, kind: "pull" | "stream" | "client") =>
  `projects/${project}/subscriptions/${names[target][kind]}`;

async function sign(
  claims: Record<string, unknown>,
  options: { secret?: string; issuer?: string; audience?: string; expiresInSeconds?: number } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256" })
    .setSubject("alice")
    .setIssuer(options.issuer ?? ISSUER)
    .setAudience(options.audience ?? AUDIENCE)
    .setIssuedAt(now - 10)
    .setExpirationTime(now + (options.expiresInSeconds ?? 300))
    .sign(new TextEncoder().encode(options.secret ?? SECRET));
}

/** Alice may publish to and read `orders` (and its `orders-*` subscriptions), nothing else. */
const aliceGrants = { streamgate: { publish: ["orders"], subscribe: ["topics/orders", "subscriptions/orders-*"] } };

type Outcome = "ok" | "unauthenticated" | "denied";
interface Result {
  outcome: Outcome | `unexpected: ${string}`;
  /** What the client was told (message, close reason, error body). */
  detail: string;
}
interface Probe {
  name: string;
  run(token: string | undefined, target: Target): Promise<Result>;
}

const fromGrpcCode = (code: number, detail: string): Result => ({
  outcome: code === 16 ? "unauthenticated" : code === 7 ? "denied" : `unexpected: grpc status ${code}`,
  detail,
});
const fromHttpStatus = (status: number, detail: string): Result => ({
  outcome:
    status === 200 ? "ok" : status === 401 ? "unauthenticated" : status === 403 ? "denied" : `unexpected: ${status}`,
  detail,
});
/** HTTP/1.1 clients close their connection after each call, so none is left open at teardown. */
const noKeepAlive = new Agent({ keepAlive: false });
const bearer = (token: string | undefined): Record<string, string> =>
  token === undefined ? {} : { authorization: `Bearer ${token}` };

describe("auth - every transport", () => {
  let server: TestServer;
  let admin: string;
  let alice: string;
  const closers: (() => void | Promise<void>)[] = [];

  before(async () => {
    server = await startTestServer({ authSecret: SECRET, authIssuer: ISSUER, authAudience: AUDIENCE });
    admin = await sign({ streamgate: { admin: ["*"] } });
    alice = await sign(aliceGrants);
    const { engine } = server.server;
    for (const target of ["A", "B"] as const) {
      const topic = names[target].topic;
      await engine.createTopic({ name: topic });
      for (const kind of ["pull", "stream", "client"] as const) {
        await engine.createSubscription({ name: subscription(target, kind), topic, ackDeadlineSeconds: 10 });
      }
      await engine.publish(topic, [{ data: Buffer.from(`hello ${target}`), attributes: {}, orderingKey: "" }]);
    }
  });
  after(async () => {
    for (const close of closers.reverse()) await close();
    await server?.close();
  });

  function grpcClients(): GrpcJsClients {
    const clients = createGrpcJsClients(server.hostPort);
    closers.push(() => clients.close());
    return clients;
  }
  function liveClients(): LiveClients {
    const clients = createLiveClients(server.hostPort);
    closers.push(() => clients.close());
    return clients;
  }
  const metadataOf = (token: string | undefined) => {
    const metadata = new grpc.Metadata();
    if (token !== undefined) metadata.set("authorization", `Bearer ${token}`);
    return metadata;
  };
  function grpcUnary(client: grpc.Client, method: string, request: unknown, token: string | undefined) {
    const fn = (client as unknown as Record<string, (...args: unknown[]) => unknown>)[method]!;
    return new Promise<Result>((resolve) => {
      fn.call(
        client,
        request,
        metadataOf(token),
        { deadline: Date.now() + 10_000 },
        (error: grpc.ServiceError | null) =>
          resolve(error === null ? { outcome: "ok", detail: "" } : fromGrpcCode(error.code, error.details)),
      );
    });
  }
  /** A streaming call: ok at its first message, else its status. */
  function grpcStream(call: grpc.ClientReadableStream<unknown> | grpc.ClientDuplexStream<unknown, unknown>) {
    return withTimeout(
      new Promise<Result>((resolve) => {
        call.once("data", () => {
          resolve({ outcome: "ok", detail: "" });
          call.cancel();
        });
        call.once("error", (error: grpc.ServiceError) => resolve(fromGrpcCode(error.code, error.details)));
        call.once("end", () => resolve({ outcome: "unexpected: ended without status", detail: "" }));
      }),
      10_000,
      "streaming call outcome",
    );
  }
  async function restCall(method: string, path: string, body: unknown, headers: Record<string, string>) {
    const response = await fetch(`${server.url}${path}`, {
      method,
      // `connection: close`: undici would keep the socket idle past teardown, which the harness reports as a leak.
      headers: {
        connection: "close",
        ...headers,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    return fromHttpStatus(response.status, text);
  }
  async function sse(target: Target, headers: Record<string, string>, query = "") {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 10_000);
    try {
      const topicId = names[target].topic.split("/").pop();
      const response = await fetch(
        `${server.url}/v1/projects/${project}/topics/${topicId}/events?from=earliest${query}`,
        {
          headers: { connection: "close", accept: "text/event-stream", ...headers },
          signal: controller.signal,
        },
      );
      if (response.status !== 200) return fromHttpStatus(response.status, await response.text());
      // A 200 proves the stream opened; the first event proves it delivers.
      const reader = response.body!.getReader();
      const { value } = await reader.read();
      const text = Buffer.from(value ?? new Uint8Array()).toString("utf8");
      await reader.cancel();
      return { outcome: text.length > 0 ? "ok" : "unexpected: empty stream", detail: text } as Result;
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
  }
  /** Opens /v1/ws, sends one frame, and reports the first answer (or the close). */
  function webSocket(url: string, headers: Record<string, string>, frame: Record<string, unknown>) {
    return withTimeout(
      new Promise<Result>((resolve) => {
        const socket = new WebSocket(url, { headers, perMessageDeflate: false });
        const finish = (result: Result) => {
          resolve(result);
          socket.terminate();
        };
        socket.on("open", () => socket.send(JSON.stringify(frame)));
        socket.on("message", (data) => {
          const answer = JSON.parse(String(data)) as { type: string; status?: string; message?: string };
          if (answer.type === "subscribed" || answer.type === "published") finish({ outcome: "ok", detail: "" });
          else if (answer.type === "error" && answer.status === "PERMISSION_DENIED")
            finish({ outcome: "denied", detail: answer.message ?? "" });
          else if (answer.type !== "message") finish({ outcome: `unexpected: ${String(data)}`, detail: "" });
        });
        socket.on("close", (code, reason) =>
          finish({
            outcome:
              code === 1008 && reason.toString().startsWith("UNAUTHENTICATED")
                ? "unauthenticated"
                : `unexpected: close ${code}`,
            detail: reason.toString(),
          }),
        );
        socket.on("error", (error) => finish({ outcome: `unexpected: ${error.message}`, detail: "" }));
      }),
      10_000,
      "WebSocket outcome",
    );
  }
  const fromConnectError = (error: unknown): Result => {
    const failure = ConnectError.from(error);
    return {
      outcome:
        failure.code === ConnectCode.Unauthenticated
          ? "unauthenticated"
          : failure.code === ConnectCode.PermissionDenied
            ? "denied"
            : `unexpected: connect ${ConnectCode[failure.code]} ${failure.rawMessage}`,
      detail: failure.rawMessage,
    };
  };
  async function connectPublish(token: string | undefined, target: Target): Promise<Result> {
    const transport = createConnectTransport({
      baseUrl: server.url,
      httpVersion: "1.1",
      nodeOptions: { agent: noKeepAlive },
    });
    try {
      await createClient(Publisher, transport).publish(
        { topic: names[target].topic, messages: [{ data: new Uint8Array([1]) }] },
        { headers: bearer(token), timeoutMs: 10_000 },
      );
      return { outcome: "ok", detail: "" };
    } catch (error) {
      return fromConnectError(error);
    }
  }
  async function connectSubscribe(kind: "connect" | "grpc-web", token: string | undefined, target: Target) {
    const transport =
      kind === "connect"
        ? createConnectTransport({ baseUrl: server.url, httpVersion: "1.1", nodeOptions: { agent: noKeepAlive } })
        : createGrpcWebTransport({ baseUrl: server.url, httpVersion: "1.1", nodeOptions: { agent: noKeepAlive } });
    const client = createClient(Events, transport);
    // Our own deadline, not `timeoutMs`: connect-es clears a streaming call's deadline timer only when the
    // response is read to its end or fails, so a call left after its first message kept it for 10 s.
    const controller = new AbortController();
    const deadline = createDeadlineSignal(controller.signal, 10_000);
    try {
      for await (const _event of client.subscribe(
        { topic: names[target].topic, position: { kind: { case: "earliest", value: true } } },
        { headers: bearer(token), signal: deadline.signal },
      )) {
        return { outcome: "ok", detail: "" } as Result;
      }
      return { outcome: "unexpected: ended", detail: "" } as Result;
    } catch (error) {
      return fromConnectError(error);
    } finally {
      controller.abort();
      deadline.dispose();
    }
  }
  function officialClient(token: string | undefined): PubSub {
    // Emulator mode uses an insecure channel, which grpc-js will not combine with call credentials: the
    // client's call invocation transformer adds the header to every call's metadata instead.
    const pubsub = new PubSub({
      projectId: project,
      apiEndpoint: server.hostPort,
      emulatorMode: true,
      "grpc.callInvocationTransformer": (properties: { metadata: grpc.Metadata }) => {
        if (token !== undefined) properties.metadata.set("authorization", `Bearer ${token}`);
        return properties;
      },
    } as ConstructorParameters<typeof PubSub>[0]);
    closers.push(() => pubsub.close());
    return pubsub;
  }
  const statusOf = (error: unknown): Result => {
    const { code, details, message } = error as { code?: number; details?: string; message?: string };
    return fromGrpcCode(code ?? -1, details ?? message ?? "");
  };

  const probes: Probe[] = [
    {
      name: "grpc-js Publisher/Publish",
      run: (token, target) =>
        grpcUnary(
          grpcClients().publisher,
          "Publish",
          { topic: names[target].topic, messages: [{ data: Buffer.from("x") }] },
          token,
        ),
    },
    {
      name: "grpc-js Subscriber/Pull",
      run: (token, target) =>
        grpcUnary(
          grpcClients().subscriber,
          "Pull",
          { subscription: subscription(target, "pull"), maxMessages: 1, returnImmediately: true },
          token,
        ),
    },
    {
      name: "grpc-js Subscriber/StreamingPull",
      run: (token, target) => {
        const client = grpcClients().subscriber as unknown as {
          StreamingPull(metadata: grpc.Metadata): grpc.ClientDuplexStream<unknown, unknown>;
        };
        const call = client.StreamingPull(metadataOf(token));
        call.write({ subscription: subscription(target, "stream"), streamAckDeadlineSeconds: 10 });
        return grpcStream(call);
      },
    },
    {
      name: "grpc-js Events/Subscribe",
      run: (token, target) => {
        const client = liveClients().events as unknown as {
          Subscribe(request: unknown, metadata: grpc.Metadata): grpc.ClientReadableStream<unknown>;
        };
        return grpcStream(
          client.Subscribe({ topic: names[target].topic, position: { earliest: true } }, metadataOf(token)),
        );
      },
    },
    {
      name: "grpc-js chat.ChatService/ChatStream",
      run: (token, target) => {
        const client = liveClients().chat as unknown as {
          ChatStream(metadata: grpc.Metadata): grpc.ClientDuplexStream<unknown, unknown>;
        };
        const metadata = metadataOf(token);
        metadata.set("chat-room", names[target].topic);
        const call = client.ChatStream(metadata);
        call.write({ user: "alice", message: "hi", timestamp: "0" });
        return grpcStream(call);
      },
    },
    {
      name: "grpc-js Events/PublishStream (client streaming)",
      run: (token, target) => {
        const client = liveClients().events as unknown as {
          PublishStream(
            metadata: grpc.Metadata,
            options: grpc.CallOptions,
            callback: (error: grpc.ServiceError | null) => void,
          ): grpc.ClientWritableStream<unknown>;
        };
        return new Promise<Result>((resolve) => {
          const call = client.PublishStream(metadataOf(token), { deadline: Date.now() + 10_000 }, (error) =>
            resolve(error === null ? { outcome: "ok", detail: "" } : fromGrpcCode(error.code, error.details)),
          );
          call.write({ topic: names[target].topic, messages: [{ data: Buffer.from("stream") }] });
          call.end();
        });
      },
    },
    {
      name: "grpc-js Events/Connect (bidi publish command)",
      run: (token, target) => {
        const client = liveClients().events as unknown as {
          Connect(metadata: grpc.Metadata): grpc.ClientDuplexStream<unknown, unknown>;
        };
        const call = client.Connect(metadataOf(token));
        call.write({ publish: { ref: "r1", topic: names[target].topic, messages: [{ data: Buffer.from("bidi") }] } });
        return withTimeout(
          new Promise<Result>((resolve) => {
            // Per-command errors leave the stream open: a denied publish is an `error` response with code 7.
            call.on("data", (response: { kind?: string; error?: { code: number; message: string } }) => {
              if (response.kind === "published") resolve({ outcome: "ok", detail: "" });
              else if (response.kind === "error") resolve(fromGrpcCode(response.error!.code, response.error!.message));
              else return;
              call.cancel();
            });
            call.once("error", (error: grpc.ServiceError) => resolve(fromGrpcCode(error.code, error.details)));
          }),
          10_000,
          "Connect outcome",
        );
      },
    },
    { name: "Connect Publisher/Publish (unary)", run: connectPublish },
    { name: "Connect Events/Subscribe", run: (token, target) => connectSubscribe("connect", token, target) },
    { name: "gRPC-Web Events/Subscribe", run: (token, target) => connectSubscribe("grpc-web", token, target) },
    {
      name: "@google-cloud/pubsub publish",
      run: async (token, target) => {
        const topic = officialClient(token).topic(names[target].topic, { batching: { maxMessages: 1 } });
        try {
          await withTimeout(topic.publishMessage({ data: Buffer.from("official") }), 15_000, "official publish");
          return { outcome: "ok", detail: "" };
        } catch (error) {
          return statusOf(error);
        }
      },
    },
    {
      name: "@google-cloud/pubsub StreamingPull subscriber",
      run: (token, target) => {
        const subscriber = officialClient(token).subscription(subscription(target, "client"), {
          flowControl: { maxMessages: 1 },
        });
        closers.push(() => subscriber.close());
        return withTimeout(
          new Promise<Result>((resolve) => {
            subscriber.on("message", (message) => {
              message.nack();
              resolve({ outcome: "ok", detail: "" });
              void subscriber.close();
            });
            subscriber.on("error", (error) => {
              resolve(statusOf(error));
              void subscriber.close();
            });
          }),
          15_000,
          "official subscriber outcome",
        );
      },
    },
    {
      name: "REST :publish (authorization header)",
      run: (token, target) =>
        restCall(
          "POST",
          `/v1/${names[target].topic}:publish`,
          { messages: [{ data: Buffer.from("rest").toString("base64") }] },
          bearer(token),
        ),
    },
    {
      name: "REST :pull (access_token query parameter)",
      run: (token, target) =>
        restCall(
          "POST",
          `/v1/${subscription(target, "pull")}:pull${token === undefined ? "" : `?access_token=${encodeURIComponent(token)}`}`,
          { maxMessages: 1, returnImmediately: true },
          {},
        ),
    },
    { name: "SSE (authorization header)", run: (token, target) => sse(target, bearer(token)) },
    {
      name: "SSE (access_token query parameter)",
      run: (token, target) => sse(target, {}, token === undefined ? "" : `&access_token=${encodeURIComponent(token)}`),
    },
    {
      name: "SSE (streamgate_token cookie)",
      run: (token, target) =>
        sse(target, token === undefined ? {} : { cookie: `theme=dark; streamgate_token=${token}` }),
    },
    {
      name: "long poll (authorization header)",
      run: async (token, target) => {
        const topicId = names[target].topic.split("/").pop();
        return restCall(
          "GET",
          `/v1/projects/${project}/topics/${topicId}/events?from=earliest&wait=0`,
          undefined,
          bearer(token),
        );
      },
    },
    {
      name: "WebSocket subscribe (authorization header)",
      run: (token, target) =>
        webSocket(`${server.url.replace("http", "ws")}/v1/ws`, bearer(token), {
          type: "subscribe",
          id: "s1",
          topic: names[target].topic,
          from: "earliest",
        }),
    },
    {
      name: "WebSocket publish (access_token query parameter)",
      run: (token, target) =>
        webSocket(
          `${server.url.replace("http", "ws")}/v1/ws${token === undefined ? "" : `?access_token=${encodeURIComponent(token)}`}`,
          {},
          {
            type: "publish",
            ref: "r1",
            topic: names[target].topic,
            messages: [{ data: Buffer.from("ws").toString("base64") }],
          },
        ),
    },
  ];

  const badTokens: { name: string; token: () => Promise<string | undefined>; says: RegExp }[] = [
    { name: "missing", token: async () => undefined, says: /no token/ },
    { name: "malformed", token: async () => "not-a-jwt", says: /not a well-formed signed JWT|could not be read/ },
    { name: "expired", token: () => sign(aliceGrants, { expiresInSeconds: -300 }), says: /expired/ },
    { name: "wrong issuer", token: () => sign(aliceGrants, { issuer: "https://evil.test" }), says: /issuer/ },
    { name: "wrong audience", token: () => sign(aliceGrants, { audience: "another-service" }), says: /audience/ },
    {
      name: "wrongly signed",
      token: () => sign(aliceGrants, { secret: "another-secret-that-is-long-enough-0123456789" }),
      says: /signature/,
    },
  ];

  for (const probe of probes) {
    test(`auth - ${probe.name}: bad tokens are UNAUTHENTICATED; a token for topic A works on A and is denied on B`, async () => {
      for (const bad of badTokens) {
        const result = await probe.run(await bad.token(), "A");
        assert.equal(result.outcome, "unauthenticated", `${bad.name} token: ${JSON.stringify(result)}`);
        if (!probe.name.includes("@google-cloud")) assert.match(result.detail, bad.says, `${bad.name} token`);
        assert.doesNotMatch(result.detail, new RegExp(SECRET), "the secret never leaks");
      }
      const allowed = await probe.run(alice, "A");
      assert.equal(allowed.outcome, "ok", `token for A on A: ${JSON.stringify(allowed)}`);
      const denied = await probe.run(alice, "B");
      assert.equal(denied.outcome, "denied", `token for A on B: ${JSON.stringify(denied)}`);
    });
  }

  test("auth - open endpoints answer without a token; the dashboard API and /metrics need admin on everything", async () => {
    for (const path of ["/healthz", "/readyz", "/.well-known/jwks.json", "/"]) {
      const response = await fetch(`${server.url}${path}`, {
        headers: { connection: "close" },
        signal: AbortSignal.timeout(5_000),
      });
      await response.arrayBuffer();
      assert.equal(response.status, 200, path);
    }
    const health = await grpcUnary(grpcClients().health, "Check", { service: "" }, undefined);
    assert.equal(health.outcome, "ok", "grpc.health.v1 needs no token");
    for (const path of ["/metrics", "/v1/dashboard/overview"]) {
      assert.equal((await restCall("GET", path, undefined, {})).outcome, "unauthenticated", path);
      assert.equal((await restCall("GET", path, undefined, bearer(alice))).outcome, "denied", path);
      assert.equal((await restCall("GET", path, undefined, bearer(admin))).outcome, "ok", path);
    }
  });

  test("auth - a POST never authenticates with the cookie (no cross-site request forgery)", async () => {
    const result = await restCall(
      "POST",
      `/v1/${names.A.topic}:publish`,
      { messages: [{ data: "eA==" }] },
      { cookie: `streamgate_token=${alice}` },
    );
    assert.equal(result.outcome, "unauthenticated");
  });

  test("auth - listing shows only granted resources; admin calls need admin", async () => {
    const listed = await fetch(`${server.url}/v1/projects/${project}/topics`, {
      headers: { connection: "close", ...bearer(alice) },
      signal: AbortSignal.timeout(5_000),
    });
    const body = (await listed.json()) as { topics?: { name: string }[] };
    assert.deepEqual(
      body.topics?.map((topic) => topic.name),
      [names.A.topic],
    );
    const create = await restCall("PUT", `/v1/projects/${project}/topics/orders-new`, {}, bearer(alice));
    assert.equal(create.outcome, "denied");
    assert.match(create.detail, /"reason":\s*"PERMISSION_DENIED"/);
  });

  test("auth - refusals are counted in streamgate_auth_failures_total{transport,reason}", async () => {
    const response = await fetch(`${server.url}/metrics`, {
      headers: { connection: "close", ...bearer(admin) },
      signal: AbortSignal.timeout(5_000),
    });
    const text = await response.text();
    for (const [transport, reason] of [
      ["grpc", "TOKEN_EXPIRED"],
      ["rest", "TOKEN_MISSING"],
      ["sse", "TOKEN_WRONG_AUDIENCE"],
      ["websocket", "TOKEN_BAD_SIGNATURE"],
      ["grpc", "PERMISSION_DENIED"],
      ["websocket", "PERMISSION_DENIED"],
    ]) {
      const line = new RegExp(
        `^streamgate_auth_failures_total\\{transport="${transport}",reason="${reason}"\\} [1-9]`,
        "m",
      );
      assert.match(text, line, `${transport} ${reason}`);
    }
  });
});
