// The tunnel server on its own: agent authentication, no rule / no agent answers, balancing, ejection, rules
// reload with a live stream, the dry run, protocol errors; driven by a scripted agent (raw node:http2 + frames).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { connect, type IncomingHttpHeaders } from "node:http2";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { AgentMessageSchema, TunnelFrameSchema } from "../../src/gen/streamgate/tunnel/v1/tunnel_pb.js";
import { createFrameChannel, createMemoryDuplexPair } from "../../src/tunnel/protocol/frame-channel.js";
import { rawGrpcCall } from "../harness/raw-grpc.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import {
  echoResponder,
  frame,
  grpcHeaders,
  type ScriptedAgent,
  startScriptedAgent,
} from "../harness/tunnel-scripted-agent.js";
import { waitFor, withTimeout } from "../harness/wait-for.js";

const rulesText = (withWeb: boolean) => `agents:
  - { name: edge, token: edge-token, groups: ["edge-*"] }
  - { name: other, token: other-token, groups: [other] }
rules:
  - name: secured
    match: { pathPrefix: /secure/ }
    group: edge-a
    auth: { bearerTokens: [entry-token] }
  - name: orders
    match: { service: "shop.*" }
    group: edge-a
${withWeb ? "  - name: web\n    match: { pathPrefix: /web/ }\n    group: edge-a\n" : ""}  - name: nobody
    match: { pathPrefix: /nobody/ }
    group: edge-empty
  - name: nobody-grpc
    match: { service: "empty.*" }
    group: edge-empty
`;

/** A raw HTTP/2 call to the agent endpoint: response headers (trailers-only answers carry grpc-status there). */
function rawAgentCall(url: string, path: string, token: string | null, body: Uint8Array): Promise<IncomingHttpHeaders> {
  return new Promise((resolve, reject) => {
    const session = connect(url);
    session.on("error", reject);
    const stream = session.request(grpcHeaders(path, token));
    let headers: IncomingHttpHeaders = {};
    stream.on("response", (received) => {
      headers = { ...received };
    });
    stream.on("trailers", (trailers) => {
      headers = { ...headers, ...trailers };
    });
    stream.on("data", () => undefined);
    stream.on("error", () => undefined);
    stream.on("close", () => {
      session.close();
      resolve(headers);
    });
    stream.end(body);
  });
}

function registerFrame(group: string, clientId = "probe") {
  return create(AgentMessageSchema, { kind: { case: "register", value: { clientId, group } } });
}

function grpcUnary(target: string, path: string, payload: Buffer): Promise<{ code: number; details: string }> {
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      path,
      (value: Buffer) => value,
      (value: Buffer) => value,
      payload,
      (error) => {
        client.close();
        resolve({ code: error?.code ?? grpc.status.OK, details: error?.details ?? "" });
      },
    );
  });
}

describe("tunnel server", () => {
  let dir: string;
  let rulesPath: string;
  let server: TestServer;
  let httpUrl: string;
  let grpcUrl: string;
  const agents: ScriptedAgent[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "streamgate-tunnel-server-"));
    rulesPath = join(dir, "rules.yaml");
    writeFileSync(rulesPath, rulesText(true));
    server = await startTestServer({ tunnelRulesPath: rulesPath, tunnelHttpPort: 0, tunnelGrpcPort: 0 });
    const addresses = server.server.tunnel!.addresses()!;
    httpUrl = addresses.http.url;
    grpcUrl = addresses.grpc.url;
  });
  after(async () => {
    for (const agent of agents) await agent.close();
    await server?.close({ allowOpenConnections: true });
    rmSync(dir, { recursive: true, force: true });
  });

  /** Bytes of one AgentMessage as a gRPC length-prefixed frame. */
  const agentFrame = async (message: ReturnType<typeof registerFrame>) => {
    const [a, b] = createMemoryDuplexPair();
    const sender = createFrameChannel(a, { receive: AgentMessageSchema, send: AgentMessageSchema });
    const chunks: Buffer[] = [];
    b.on("data", (chunk: Buffer) => chunks.push(chunk));
    await sender.send(message);
    await new Promise((resolve) => setImmediate(resolve));
    return Buffer.concat(chunks);
  };

  test("tunnel server - agent authentication: wrong token, group not allowed, Register missing", async () => {
    const control = "/streamgate.tunnel.v1.Tunnel/Control";
    const register = await agentFrame(registerFrame("edge-a"));
    const wrong = await rawAgentCall(server.url, control, "not-a-token", register);
    assert.equal(wrong[":status"], 200);
    assert.equal(wrong["content-type"], "application/grpc");
    assert.equal(wrong["grpc-status"], String(grpc.status.UNAUTHENTICATED));

    const denied = await rawAgentCall(server.url, control, "other-token", register);
    assert.equal(denied["grpc-status"], String(grpc.status.PERMISSION_DENIED));
    assert.match(decodeURIComponent(String(denied["grpc-message"])), /may not join group "edge-a"/);

    const heartbeatFirst = await agentFrame(
      create(AgentMessageSchema, { kind: { case: "heartbeat", value: { sentAtUnixMs: 1n } } }),
    );
    const notRegister = await rawAgentCall(server.url, control, "edge-token", heartbeatFirst);
    assert.equal(notRegister["grpc-status"], String(grpc.status.INVALID_ARGUMENT));
    assert.match(decodeURIComponent(String(notRegister["grpc-message"])), /must be Register/);
    assert.equal(server.server.tunnel!.stats().sessions, 0);
  });

  test("tunnel server - no rule: gRPC UNIMPLEMENTED trailers-only, HTTP 404", async () => {
    const raw = await rawGrpcCall(grpcUrl, "/unknown.Service/Method", Buffer.from([0, 0, 0, 0, 0]));
    assert.equal(raw.httpStatus, 200);
    assert.equal(raw.contentType, "application/grpc");
    assert.equal(raw.grpcStatus, grpc.status.UNIMPLEMENTED);
    assert.equal(raw.body.length, 0);
    const viaGrpcJs = await grpcUnary(grpcUrl.replace("http://", ""), "/unknown.Service/Method", Buffer.alloc(0));
    assert.equal(viaGrpcJs.code, grpc.status.UNIMPLEMENTED);
    const http = await fetch(`${httpUrl}/not/routed`);
    assert.equal(http.status, 404);
    assert.equal((await http.json()).error.reason, "TUNNEL_NO_RULE");
  });

  test("tunnel server - HTTP/2 requests the entries' raw gRPC route leaves to node's compat layer are answered as before", async () => {
    // The entries take gRPC calls as raw streams; other content types, `expect` and CONNECT stay on the compat path.
    const answer = (url: string, headers: Record<string, string>) =>
      new Promise<IncomingHttpHeaders & { body: string }>((resolve, reject) => {
        const session = connect(url);
        session.on("error", reject);
        const stream = session.request(headers);
        let received: IncomingHttpHeaders = {};
        const chunks: Buffer[] = [];
        stream.on("response", (head) => {
          received = { ...received, ...head };
        });
        stream.on("trailers", (trailers) => {
          received = { ...received, ...trailers };
        });
        stream.on("data", (chunk: Buffer) => chunks.push(chunk));
        stream.on("error", reject);
        stream.on("close", () => {
          session.close();
          resolve({ ...received, body: Buffer.concat(chunks).toString() });
        });
        stream.end(Buffer.from([0, 0, 0, 0, 0]));
      });
    const json = await answer(grpcUrl, { ":method": "POST", ":path": "/x", "content-type": "application/json" });
    assert.equal(json[":status"], 415);
    assert.match(json.body, /application\/grpc only/);
    for (const url of [grpcUrl, httpUrl]) {
      const expecting = await answer(url, {
        ":method": "POST",
        ":path": "/unknown.Service/Method",
        "content-type": "application/grpc",
        te: "trailers",
        expect: "100-continue",
      });
      assert.equal(expecting[":status"], 200, url);
      assert.equal(expecting["grpc-status"], String(grpc.status.UNIMPLEMENTED), url);
    }
  });

  test("tunnel server - no agent: gRPC UNAVAILABLE trailers-only, HTTP 503", async () => {
    const started = Date.now();
    const raw = await rawGrpcCall(grpcUrl, "/empty.Service/Get", Buffer.from([0, 0, 0, 0, 0]));
    assert.equal(raw.httpStatus, 200);
    assert.equal(raw.contentType, "application/grpc");
    assert.equal(raw.grpcStatus, grpc.status.UNAVAILABLE);
    assert.match(raw.grpcMessage, /no agent of group "edge-empty"/);
    assert.ok(Date.now() - started < 1_000, "an empty group must fail at once, not after the standby wait");
    const viaGrpcJs = await grpcUnary(grpcUrl.replace("http://", ""), "/empty.Service/Get", Buffer.alloc(0));
    assert.equal(viaGrpcJs.code, grpc.status.UNAVAILABLE);
    const http = await fetch(`${httpUrl}/nobody/here`);
    assert.equal(http.status, 503);
    assert.equal((await http.json()).error.reason, "TUNNEL_NO_AGENT");
  });

  test("tunnel server - requests are spread over the group's agents and carry X-Forwarded-* and traceparent", async () => {
    const slowEcho = (name: string) => {
      const echo = echoResponder(name);
      return async (...args: Parameters<typeof echo>) => {
        await new Promise((resolve) => setTimeout(resolve, 30));
        return echo(...args);
      };
    };
    for (const name of ["a", "b"]) {
      agents.push(
        await startScriptedAgent({
          url: server.url,
          token: "edge-token",
          group: "edge-a",
          clientId: name,
          respond: slowEcho(name),
        }),
      );
    }
    await waitFor(() => server.server.tunnel!.stats().standby >= 16, {
      timeoutMs: 5_000,
      describe: () => JSON.stringify(server.server.tunnel!.stats()),
    });
    const bodies = await Promise.all(
      Array.from({ length: 40 }, async (_, index) => {
        const response = await fetch(`${httpUrl}/web/item?i=${index}`, {
          headers: { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" },
        });
        assert.equal(response.status, 200);
        return response.text();
      }),
    );
    const byAgent = { a: 0, b: 0 };
    for (const body of bodies) byAgent[body.split(":")[0] as "a" | "b"]++;
    assert.ok(byAgent.a >= 5 && byAgent.b >= 5, `unbalanced: ${JSON.stringify(byAgent)}`);
    const head = agents[0]!.received.find((received) => received.path.startsWith("/web/"))!;
    const header = (name: string) => head.headers.find((entry) => entry.name === name)?.value;
    assert.equal(header("x-forwarded-for"), "127.0.0.1");
    assert.equal(header("x-forwarded-proto"), "http");
    assert.match(String(header("forwarded")), /for=127\.0\.0\.1;proto=http;host=/);
    assert.match(String(header("traceparent")), /^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
    assert.equal(head.rule, "web");
    assert.equal(head.group, "edge-a");
    assert.equal(header("connection"), undefined);
  });

  test("tunnel server - a rule's bearer token is required at the entry and not forwarded", async () => {
    const refused = await fetch(`${httpUrl}/secure/x`);
    assert.equal(refused.status, 401);
    const allowed = await fetch(`${httpUrl}/secure/x`, { headers: { authorization: "Bearer entry-token" } });
    assert.equal(allowed.status, 200);
    await allowed.text();
    const head = agents.flatMap((agent) => agent.received).find((received) => received.path === "/secure/x")!;
    assert.equal(
      head.headers.find((entry) => entry.name === "authorization"),
      undefined,
    );
  });

  test("tunnel server - the dry run names the rule, its line and target, and why earlier rules missed", async () => {
    const web = await (await fetch(`${server.url}/v1/tunnel/match?host=example.com&path=/web/a`)).json();
    assert.equal(web.rule, "web");
    assert.equal(web.line, 12);
    assert.deepEqual(web.target, { kind: "group", group: "edge-a" });
    assert.equal(web.explanation.length, 2);
    assert.equal(web.explanation[0].rule, "secured");
    const orders = await (await fetch(`${server.url}/v1/tunnel/match?path=/shop.Orders/Get&grpc=1`)).json();
    assert.equal(orders.rule, "orders");
    const none = await (await fetch(`${server.url}/v1/tunnel/match?path=/elsewhere`)).json();
    assert.equal(none.rule, null);
    const list = await (await fetch(`${server.url}/v1/tunnel/agents`)).json();
    assert.deepEqual(list.agents.map((agent: { client_id: string }) => agent.client_id).sort(), ["a", "b"]);
    assert.equal(list.agents[0].healthy, true);
  });

  test("tunnel server - an agent answering UNAVAILABLE five times in a row is ejected", async () => {
    const bad = await startScriptedAgent({
      url: server.url,
      token: "edge-token",
      group: "edge-b",
      clientId: "bad",
      respond: async (_head, _frames, channel, requestId) => {
        await channel.send(frame(requestId, { case: "error", value: { code: 14, message: "backend down" } } as never));
      },
    });
    const good = await startScriptedAgent({
      url: server.url,
      token: "edge-token",
      group: "edge-b",
      clientId: "good",
      respond: echoResponder("good"),
    });
    agents.push(bad, good);
    writeFileSync(rulesPath, `${rulesText(true)}  - name: b\n    match: { service: "b.*" }\n    group: edge-b\n`);
    await waitFor(
      async () => (await (await fetch(`${server.url}/v1/tunnel/match?path=/b.S/M&grpc=1`)).json()).rule === "b",
      { timeoutMs: 5_000, describe: () => "the rules reload" },
    );
    const codes: number[] = [];
    for (let index = 0; index < 40; index++) {
      codes.push((await rawGrpcCall(grpcUrl, "/b.S/M", Buffer.from([0, 0, 0, 0, 0]))).grpcStatus ?? -1);
    }
    assert.equal(bad.received.length, 5, `the failing agent got ${bad.received.length} requests`);
    assert.equal(codes.filter((code) => code === grpc.status.UNAVAILABLE).length, 5);
    assert.deepEqual(codes.slice(-20), Array(20).fill(grpc.status.OK));
    const listed = (await (await fetch(`${server.url}/v1/tunnel/agents`)).json()).agents;
    assert.equal(listed.find((agent: { client_id: string }) => agent.client_id === "bad").ejected, true);
  });

  test("tunnel server - a rules reload keeps a live stream; new requests see the new rules", async () => {
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const holder = await startScriptedAgent({
      url: server.url,
      token: "edge-token",
      group: "edge-c",
      clientId: "holder",
      respond: async (_head, _frames, channel, requestId) => {
        await channel.send(
          frame(requestId, { case: "responseHead", value: { status: 200, headers: [], endStream: false } } as never),
        );
        await channel.send(frame(requestId, { case: "data", value: { data: Buffer.from("first;") } } as never));
        await released;
        await channel.send(frame(requestId, { case: "data", value: { data: Buffer.from("last") } } as never));
        await channel.send(frame(requestId, { case: "trailers", value: { headers: [] } } as never));
      },
    });
    agents.push(holder);
    const dryRun = async (path: string) =>
      (await (await fetch(`${server.url}/v1/tunnel/match?path=${encodeURIComponent(path)}`)).json()).rule;
    writeFileSync(
      rulesPath,
      `${rulesText(true)}  - name: live\n    match: { pathPrefix: /live/ }\n    group: edge-c\n`,
    );
    await waitFor(async () => (await dryRun("/live/x")) === "live", {
      timeoutMs: 5_000,
      describe: () => "the rules reload adding /live/",
    });
    const response = await fetch(`${httpUrl}/live/stream`);
    assert.equal(response.status, 200);
    const reader = response.body!.getReader();
    const first = await withTimeout(reader.read(), 5_000, "the first chunk");
    let text = Buffer.from(first.value!).toString();
    // Reload without /live/ (and /web/) while the request streams; it must go on.
    writeFileSync(rulesPath, rulesText(false));
    await waitFor(async () => (await dryRun("/live/x")) === null, {
      timeoutMs: 5_000,
      describe: () => "the rules reload removing /live/",
    });
    release();

    for (;;) {
      const { done, value } = await withTimeout(reader.read(), 5_000, "the live stream");
      if (done) break;
      text += Buffer.from(value).toString();
    }
    assert.equal(text, "first;last");
    assert.equal((await fetch(`${httpUrl}/web/x`)).status, 404);
  });

  test("tunnel server - protocol errors end only the offending stream: unknown session, frame on a standby, oversized frame", async () => {
    const agent = await startScriptedAgent({
      url: server.url,
      token: "edge-token",
      group: "edge-d",
      clientId: "raw",
      respond: echoResponder("raw"),
      passive: true,
    });
    agents.push(agent);
    const stream = agent!.openRawStream();
    const channel = createFrameChannel(stream, { receive: TunnelFrameSchema, send: TunnelFrameSchema });
    await channel.send(
      create(TunnelFrameSchema, { kind: { case: "attach", value: { sessionId: "no-such-session" } } }),
    );
    const unknown = await withTimeout(
      new Promise<IncomingHttpHeaders>((resolve) => stream.once("response", resolve)),
      5_000,
      "the answer to an unknown session",
    );
    assert.equal(unknown["grpc-status"], String(grpc.status.NOT_FOUND));

    const standby = agent!.openRawStream();
    const standbyChannel = createFrameChannel(standby, { receive: TunnelFrameSchema, send: TunnelFrameSchema });
    await standbyChannel.send(
      create(TunnelFrameSchema, { kind: { case: "attach", value: { sessionId: agent!.sessionId } } }),
    );
    await standbyChannel.send(frame("x", { case: "data", value: { data: Buffer.from("early") } } as never));
    const trailers = await withTimeout(
      new Promise<IncomingHttpHeaders>((resolve) => standby.once("trailers", resolve)),
      5_000,
      "the trailers of a standby that sent Data",
    );
    assert.equal(trailers["grpc-status"], String(grpc.status.INVALID_ARGUMENT));

    const oversized = agent!.openRawStream();
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(64 * 1024 * 1024, 1);
    oversized.write(prefix);
    // The frame channel stops at the prefix (nothing buffered) and the server answers RESOURCE_EXHAUSTED.
    const ended = await withTimeout(
      new Promise<string>((resolve) => {
        oversized.once("response", (headers) => resolve(String(headers["grpc-status"])));
        oversized.once("close", () => resolve(`reset ${oversized.rstCode}`));
      }),
      5_000,
      "the end of a stream that announced an oversized frame",
    );
    assert.equal(ended, String(grpc.status.RESOURCE_EXHAUSTED));
    assert.equal(server.server.tunnel!.stats().sessions, agents.length);

    // The session still serves.
    const response = await fetch(`${httpUrl}/secure/y`, { headers: { authorization: "Bearer entry-token" } });
    assert.equal(response.status, 200);
    await response.text();
  });

  test("tunnel server - cancelled requests leave nothing in flight or pending", async () => {
    const hold = await startScriptedAgent({
      url: server.url,
      token: "edge-token",
      group: "edge-a",
      clientId: "hold",
      respond: () => new Promise(() => undefined),
    });
    agents.push(hold);
    await Promise.all(
      Array.from({ length: 20 }, () =>
        rawGrpcCall(grpcUrl, "/shop.Orders/Slow", Buffer.from([0, 0, 0, 0, 0]), { reset: true }).catch(() => undefined),
      ),
    );
    await waitFor(
      () => {
        const stats = server.server.tunnel!.stats();
        return stats.inFlight === 0 && stats.pending === 0;
      },
      { timeoutMs: 5_000, describe: () => JSON.stringify(server.server.tunnel!.stats()) },
    );
  });

  test("tunnel server - a rule with a direct upstream is served without an agent", async () => {
    const backend = createHttpServer((request, response) => {
      response.writeHead(200, { "content-type": "text/plain", "x-backend": "direct" });
      response.end(`direct ${request.method} ${request.url} via ${request.headers["x-forwarded-host"]}`);
    });
    await new Promise<void>((resolve) => backend.listen(0, "127.0.0.1", resolve));
    try {
      const port = (backend.address() as AddressInfo).port;
      writeFileSync(
        rulesPath,
        `${rulesText(true)}  - name: direct\n    match: { pathPrefix: /direct/ }\n    upstream: { protocol: http, addresses: ["http://127.0.0.1:${port}"] }\n`,
      );
      await waitFor(
        async () => (await (await fetch(`${server.url}/v1/tunnel/match?path=/direct/x`)).json()).rule === "direct",
        { timeoutMs: 5_000, describe: () => "the rules reload adding /direct/" },
      );
      const response = await fetch(`${httpUrl}/direct/page?q=1`);
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("x-backend"), "direct");
      assert.equal(await response.text(), `direct GET /direct/page?q=1 via ${new URL(httpUrl).host}`);
    } finally {
      backend.closeAllConnections();
      await new Promise((resolve) => backend.close(resolve));
    }
  });

  test("tunnel server - metrics count requests per rule, group, agent and status", async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(
      text,
      /streamgate_tunnel_requests_total\{rule="web",group="edge-a",agent="(a|b)",grpc_method="",status="200"\} \d+/,
    );
    assert.match(
      text,
      /streamgate_tunnel_requests_total\{rule="nobody-grpc",group="edge-empty",agent="",grpc_method="empty.Service\/Get",status="UNAVAILABLE"\} 2/,
    );
    assert.match(text, /streamgate_tunnel_agents\{group="edge-a"\} \d+/);
    assert.match(text, /streamgate_tunnel_in_flight\{group="edge-a"\} 0/);
  });

  test("tunnel server - a rules reload that takes a group away from a token ends those sessions", async () => {
    const groupsOf = async () =>
      new Set(
        ((await (await fetch(`${server.url}/v1/tunnel/agents`)).json()).agents as { group: string }[]).map(
          (agent) => agent.group,
        ),
      );
    assert.ok((await groupsOf()).has("edge-b"));
    writeFileSync(rulesPath, rulesText(true).replace('groups: ["edge-*"]', "groups: [edge-a]"));
    await waitFor(async () => !(await groupsOf()).has("edge-b"), {
      timeoutMs: 5_000,
      describe: () => "the sessions of edge-b to end",
    });
    assert.deepEqual([...(await groupsOf())], ["edge-a"]);
  });
});

describe("tunnel server lifecycle", () => {
  let dir: string;
  let server: TestServer;
  let grpcUrl: string;
  let httpUrl: string;
  const agents: ScriptedAgent[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "streamgate-tunnel-lifecycle-"));
    const rulesPath = join(dir, "rules.yaml");
    writeFileSync(rulesPath, rulesText(true));
    server = await startTestServer({
      tunnelRulesPath: rulesPath,
      tunnelHttpPort: 0,
      tunnelGrpcPort: 0,
      tunnelHeartbeatMs: 200,
    });
    grpcUrl = server.server.tunnel!.addresses()!.grpc.url;
    httpUrl = server.server.tunnel!.addresses()!.http.url;
  });
  after(async () => {
    for (const agent of agents) await agent.close();
    await server?.close({ allowOpenConnections: true });
    rmSync(dir, { recursive: true, force: true });
  });

  test("tunnel server lifecycle - an agent silent for 3 heartbeats loses its session; its calls fail with UNAVAILABLE", async () => {
    const silent = await startScriptedAgent({
      url: server.url,
      token: "edge-token",
      group: "edge-a",
      clientId: "silent",
      respond: () => new Promise(() => undefined),
    });
    agents.push(silent);
    const call = rawGrpcCall(grpcUrl, "/shop.Orders/Hang", Buffer.from([0, 0, 0, 0, 0]));
    await waitFor(() => server.server.tunnel!.stats().inFlight === 1 && silent.received.length === 1, {
      timeoutMs: 5_000,
      describe: () => JSON.stringify(server.server.tunnel!.stats()),
    });
    const mutedAt = Date.now();
    silent.mute();
    const result = await call;
    assert.equal(result.grpcStatus, grpc.status.UNAVAILABLE);
    assert.match(result.grpcMessage, /agent went away/);
    assert.ok(Date.now() - mutedAt < 3_000, `the call failed ${Date.now() - mutedAt} ms after the agent went silent`);
    await waitFor(() => server.server.tunnel!.stats().sessions === 0, {
      timeoutMs: 2_000,
      describe: () => JSON.stringify(server.server.tunnel!.stats()),
    });
  });

  test("tunnel server lifecycle - drain tells agents, lets the call in flight finish and refuses new ones", async () => {
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const echo = echoResponder("drained");
    const agent = await startScriptedAgent({
      url: server.url,
      token: "edge-token",
      group: "edge-a",
      clientId: "drained",
      respond: async (...args) => {
        await released;
        await echo(...args);
      },
    });
    agents.push(agent);
    const inFlight = fetch(`${httpUrl}/web/slow`).then(async (response) => [response.status, await response.text()]);
    await waitFor(() => agent.received.length === 1, { timeoutMs: 5_000, describe: () => "the request to arrive" });
    const draining = server.server.drain(5_000);
    await waitFor(() => agent.controlKinds.includes("drain"), {
      timeoutMs: 2_000,
      describe: () => `control messages: ${agent.controlKinds.join(",")}`,
    });
    const refused = await rawGrpcCall(grpcUrl, "/shop.Orders/Get", Buffer.from([0, 0, 0, 0, 0])).catch(
      (error: Error) => ({ grpcStatus: -1, grpcMessage: error.message }),
    );
    assert.notEqual(refused.grpcStatus, grpc.status.OK, "a new call was served during the drain");
    release();
    assert.deepEqual(await withTimeout(inFlight, 5_000, "the call in flight"), [200, "drained:"]);
    await withTimeout(draining, 6_000, "the drain");
    assert.deepEqual(server.server.tunnel!.stats(), { sessions: 0, standby: 0, streams: 0, inFlight: 0, pending: 0 });
  });
});

describe("tunnel server agent answers", () => {
  let dir: string;
  let server: TestServer;
  let grpcTarget: string;
  let httpUrl: string;
  let agent: ScriptedAgent;

  type Entry = { name: string; value: string };
  /** What the scripted agent answers, by the last path segment: a head, then optional Data and Trailers frames. */
  const scripts: Record<string, { status: number; headers?: Entry[]; endStream?: boolean; trailers?: Entry[] | null }> =
    {
      Status999: { status: 999, trailers: [{ name: "grpc-status", value: "0" }] },
      Status99: { status: 99, endStream: true },
      Status101: { status: 101, trailers: [{ name: "grpc-status", value: "0" }] },
      Http503: { status: 503, trailers: [{ name: "grpc-status", value: "0" }] },
      Http404Only: { status: 404, endStream: true },
      Http400Only: { status: 400, endStream: true },
      Http503WithStatus: {
        status: 503,
        endStream: true,
        headers: [
          { name: "grpc-status", value: "5" },
          { name: "grpc-message", value: "gone" },
        ],
      },
      TrailersOnlyNoStatus: { status: 200, endStream: true },
      NoStatusTrailers: { status: 200, trailers: [{ name: "x-trailer", value: "t" }] },
      BadStatusTrailers: { status: 200, trailers: [{ name: "grpc-status", value: "99" }] },
      EndWithoutTrailers: { status: 200, trailers: null },
      "999": { status: 999, trailers: [] },
      "101": { status: 101, trailers: [] },
    };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "streamgate-tunnel-answers-"));
    const rulesPath = join(dir, "rules.yaml");
    writeFileSync(
      rulesPath,
      `agents:
  - { name: edge, token: edge-token, groups: [edge-x] }
rules:
  - name: odd-grpc
    match: { service: "odd.*" }
    group: edge-x
  - name: odd-http
    match: { pathPrefix: /odd/ }
    group: edge-x
`,
    );
    server = await startTestServer({ tunnelRulesPath: rulesPath, tunnelHttpPort: 0, tunnelGrpcPort: 0 });
    grpcTarget = server.server.tunnel!.addresses()!.grpc.url.replace("http://", "");
    httpUrl = server.server.tunnel!.addresses()!.http.url;
    agent = await startScriptedAgent({
      url: server.url,
      token: "edge-token",
      group: "edge-x",
      clientId: "odd",
      respond: async (head, _frames, channel, requestId) => {
        const grpcCall = head.protocol === 1;
        const script = scripts[head.path.split("/").pop() ?? ""];
        assert.ok(script, `a script for ${head.path}`);
        const headers = script.headers ?? [
          { name: "content-type", value: grpcCall ? "application/grpc" : "text/plain" },
        ];
        const endStream = script.endStream ?? false;
        await channel.send(
          frame(requestId, { case: "responseHead", value: { status: script.status, headers, endStream } } as never),
        );
        if (endStream) return;
        const body = grpcCall ? Buffer.from([0, 0, 0, 0, 0]) : Buffer.from("body");
        await channel.send(
          frame(requestId, { case: "data", value: { data: body, endStream: script.trailers === null } } as never),
        );
        if (script.trailers !== null && script.trailers !== undefined) {
          await channel.send(frame(requestId, { case: "trailers", value: { headers: script.trailers } } as never));
        }
      },
    });
    await waitFor(() => server.server.tunnel!.stats().standby > 0, {
      timeoutMs: 5_000,
      describe: () => JSON.stringify(server.server.tunnel!.stats()),
    });
  });
  after(async () => {
    await agent?.close();
    await server?.close({ allowOpenConnections: true });
    rmSync(dir, { recursive: true, force: true });
  });

  const idle = () =>
    waitFor(
      () => {
        const stats = server.server.tunnel!.stats();
        return stats.inFlight === 0 && stats.pending === 0 && stats.streams === stats.standby;
      },
      // A standby the server ended over its pool limit lingers up to 5 s (LINGER_MS) for the agent's half-close.
      { timeoutMs: 12_000, describe: () => `nothing in flight: ${JSON.stringify(server.server.tunnel!.stats())}` },
    );

  test("tunnel server agent answers - an invalid HTTP status is UNAVAILABLE (gRPC) / 502 (HTTP) naming the agent's protocol error", async () => {
    for (const [method, detail] of [
      ["Status999", /the tunnel agent broke the protocol: HTTP status 999 is not a final status \(200\.\.599\)/],
      ["Status99", /the tunnel agent broke the protocol: HTTP status 99 is not a final status/],
      ["Status101", /the tunnel agent broke the protocol: HTTP status 101 answers a request that asked for no upgrade/],
    ] as const) {
      const result = await grpcUnary(grpcTarget, `/odd.S/${method}`, Buffer.alloc(0));
      assert.equal(result.code, grpc.status.UNAVAILABLE, `${method}: ${result.details}`);
      assert.match(result.details, detail);
    }
    for (const path of ["/odd/999", "/odd/101"]) {
      const response = await fetch(`${httpUrl}${path}`);
      assert.equal(response.status, 502, path);
      assert.match(String(response.headers.get("content-type")), /^application\/json/);
      const { error } = await response.json();
      assert.equal(error.code, 502);
      assert.equal(error.status, "UNAVAILABLE");
      assert.equal(error.reason, "TUNNEL_AGENT_PROTOCOL");
      assert.match(error.message, /the tunnel agent broke the protocol: HTTP status (999|101)/);
    }
    await idle();
  });

  test("tunnel server agent answers - a non-200 head without grpc-status gets gRPC's HTTP status mapping, with a message", async () => {
    for (const [method, code] of [
      ["Http503", grpc.status.UNAVAILABLE],
      ["Http404Only", grpc.status.UNIMPLEMENTED],
      ["Http400Only", grpc.status.INTERNAL],
    ] as const) {
      const result = await grpcUnary(grpcTarget, `/odd.S/${method}`, Buffer.alloc(0));
      assert.equal(result.code, code, `${method}: ${result.details}`);
      assert.match(result.details, /^the tunnel agent answered HTTP \d{3} without grpc-status/);
    }
    // A grpc-status, when the agent sent one, is used as it is (gRPC spec), whatever the HTTP status.
    const withStatus = await grpcUnary(grpcTarget, "/odd.S/Http503WithStatus", Buffer.alloc(0));
    assert.deepEqual(withStatus, { code: grpc.status.NOT_FOUND, details: "gone" });
    await idle();
  });

  test("tunnel server agent answers - a gRPC response ending without a valid grpc-status is UNAVAILABLE with a message", async () => {
    for (const [method, detail] of [
      ["TrailersOnlyNoStatus", /ended without grpc-status \(HTTP 200\)/],
      ["NoStatusTrailers", /ended without grpc-status \(HTTP 200\)/],
      ["EndWithoutTrailers", /ended without grpc-status \(HTTP 200\)/],
      ["BadStatusTrailers", /ended with grpc-status "99", not a status code/],
    ] as const) {
      const result = await grpcUnary(grpcTarget, `/odd.S/${method}`, Buffer.alloc(0));
      assert.equal(result.code, grpc.status.UNAVAILABLE, `${method}: ${result.details}`);
      assert.match(result.details, /^the tunnel agent broke the protocol: the gRPC response /);
      assert.match(result.details, detail);
    }
    await idle();
    const agents = (await (await fetch(`${server.url}/v1/tunnel/agents`)).json()).agents;
    assert.equal(agents.length, 1, "the agent's session survives its bad answers");
  });
});
