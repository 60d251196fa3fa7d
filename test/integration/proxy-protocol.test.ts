// PROXY protocol and trusted proxies on a real server: v1/v2 headers before HTTP/1.1, h2c and TLS; the client's address
// in connection lines, stream lines and the per-IP connection limit; refused headers (missing, untrusted, malformed,
// slow) closed with a logged reason and a metric; forged forwarding headers ignored; the tunnel entries likewise.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect as http2Connect } from "node:http2";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { connect as tlsConnect } from "node:tls";
import { captureLogs, type LogCapture } from "../harness/log-capture.js";
import { connectWithHeader, proxyV1, proxyV2, proxyV2For } from "../harness/proxy-header.js";
import { createSelfSigned, type SelfSigned } from "../harness/self-signed.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { echoResponder, type ScriptedAgent, startScriptedAgent } from "../harness/tunnel-scripted-agent.js";
import { uniqueName } from "../harness/unique-name.js";
import { waitFor } from "../harness/wait-for.js";

/** A peer outside the trusted range (127.0.0.1/32): Linux answers for all of 127.0.0.0/8. */
const UNTRUSTED_LOCAL = "127.0.0.2";
const TIMEOUT_MS = 400;

interface RawAnswer {
  status: number;
  head: string;
  body: string;
}

/** Sends `request` on `socket` and reads one HTTP/1.1 response (content-length framed), leaving the socket open. */
function exchange(socket: Socket, request: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    let text = "";
    const onData = (chunk: Buffer) => {
      text += chunk.toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      if (end === -1) return;
      const head = text.slice(0, end);
      const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      if (text.length < end + 4 + length) return;
      socket.off("data", onData);
      resolve({ status: Number(head.split(" ")[1]), head, body: text.slice(end + 4, end + 4 + length) });
    };
    socket.on("data", onData);
    socket.once("close", () => reject(new Error(`closed before a response; got ${JSON.stringify(text)}`)));
    socket.write(request);
  });
}

const get = (path: string, extra = "") => `GET ${path} HTTP/1.1\r\nHost: localhost\r\n${extra}\r\n`;

/** Resolves when the server closes `socket` (end or reset). */
function closedByServer(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) resolve();
    socket.on("data", () => undefined);
    socket.on("error", () => undefined);
    socket.once("close", () => resolve());
  });
}

/** GET over HTTP/1.0 on a connection that starts with `header`; the body up to the server's close. */
async function getVia(port: number, header: Buffer, path: string): Promise<string> {
  const socket = await connectWithHeader(port, header);
  let text = "";
  socket.on("data", (chunk: Buffer) => {
    text += chunk.toString("utf8");
  });
  socket.write(`GET ${path} HTTP/1.0\r\nHost: localhost\r\n\r\n`);
  await new Promise((resolve) => socket.once("close", resolve));
  return text.slice(text.indexOf("\r\n\r\n") + 4);
}

/** A counter's value, scraped through a PROXY header from 192.0.2.200 (the trusted peer must send one). */
async function metricValue(server: TestServer, name: string, labels: string): Promise<number> {
  const text = await getVia(server.port, proxyV1("192.0.2.200", 9), "/metrics");
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${name}{${labels}}`));
  return line === undefined ? 0 : Number(line.split(" ").pop());
}

describe("proxy protocol on the main port", () => {
  let server: TestServer;
  let logs: LogCapture;
  const sockets: Socket[] = [];
  const open = async (header: Buffer, localAddress?: string) => {
    const socket = await connectWithHeader(server.port, header, localAddress);
    sockets.push(socket);
    return socket;
  };

  before(async () => {
    logs = captureLogs("debug");
    server = await startTestServer(
      {
        trustedProxies: ["127.0.0.1"],
        proxyProtocol: true,
        proxyProtocolTimeoutMs: TIMEOUT_MS,
        maxConnectionsPerIp: 2,
      },
      { logger: logs.logger },
    );
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    await server?.close();
  });

  test("proxy protocol - a v1 header then HTTP/1.1: served, and the connection line names the client and the proxy", async () => {
    const socket = await open(proxyV1("198.51.100.7", 40001));
    const answer = await exchange(socket, get("/healthz"));
    assert.equal(answer.status, 200);
    const line = await logs.waitForLine(
      (candidate) => candidate.msg === "connection opened" && candidate.remoteAddress === "198.51.100.7",
      "opened for 198.51.100.7",
    );
    assert.equal(line.remotePort, 40001);
    assert.equal(line.proxyAddress, "127.0.0.1");
    assert.equal(line.addressSource, "proxy_protocol");
    assert.equal(line.transport, "http1");
    socket.destroy();
    const closed = await logs.waitForLine(
      (candidate) => candidate.msg === "connection closed" && candidate.remoteAddress === "198.51.100.7",
      "closed for 198.51.100.7",
    );
    assert.equal(closed.proxyAddress, "127.0.0.1");
  });

  test("proxy protocol - a v2 header then h2c prior knowledge: an SSE stream runs as the header's client", async () => {
    const topic = `projects/${uniqueName("pp")}/topics/${uniqueName("t")}`;
    await server.server.engine.createTopic({ name: topic });
    const socket = await open(proxyV2For("203.0.113.9", 50000));
    const session = http2Connect(server.url, { createConnection: () => socket });
    try {
      const stream = session.request({
        ":path": `/v1/${topic}/events?from=earliest`,
        // A forged hop from a client that is not a trusted proxy: never its address.
        "x-forwarded-for": "6.6.6.6",
      });
      stream.on("data", () => undefined);
      const status = await new Promise<number>((resolve) =>
        stream.once("response", (h) => resolve(Number(h[":status"]))),
      );
      assert.equal(status, 200);
      const line = await logs.waitForLine(
        (candidate) => candidate.msg === "stream opened" && candidate.topic === topic,
        "stream opened",
      );
      assert.equal(line.principal, "anonymous@203.0.113.9");
      const opened = logs.lines().find((c) => c.msg === "connection opened" && c.remoteAddress === "203.0.113.9");
      assert.equal(opened?.transport, "h2c");
      stream.close();
    } finally {
      session.destroy();
    }
  });

  test("proxy protocol - behind a trusted hop (PROXY source 127.0.0.1), X-Forwarded-For's right-most untrusted hop is the client", async () => {
    const topic = `projects/${uniqueName("pp")}/topics/${uniqueName("t")}`;
    await server.server.engine.createTopic({ name: topic });
    const socket = await open(proxyV1("127.0.0.1", 40100));
    socket.write(get(`/v1/${topic}/events?from=earliest`, "X-Forwarded-For: 6.6.6.6, 192.0.2.44\r\n"));
    const line = await logs.waitForLine(
      (candidate) => candidate.msg === "stream opened" && candidate.topic === topic,
      "stream opened",
    );
    assert.equal(line.principal, "anonymous@192.0.2.44");
    socket.destroy();
  });

  test("proxy protocol - a v2 LOCAL header (a proxy's health check) and a v1 UNKNOWN line are served as the proxy itself", async () => {
    for (const header of [proxyV2({ command: 0, family: 0 }), Buffer.from("PROXY UNKNOWN\r\n")]) {
      const socket = await open(header);
      const answer = await exchange(socket, get("/healthz"));
      assert.equal(answer.status, 200, header.toString("latin1"));
      socket.destroy();
    }
  });

  test("proxy protocol - two clients behind one proxy have their own per-IP connection limit (2)", async () => {
    const first = [await open(proxyV1("198.51.100.1", 1)), await open(proxyV2For("198.51.100.1", 2))];
    for (const socket of first) assert.equal((await exchange(socket, get("/healthz"))).status, 200);
    const third = await open(proxyV1("198.51.100.1", 3));
    const refused = await exchange(third, get("/healthz"));
    assert.equal(refused.status, 429);
    assert.match(refused.body, /TOO_MANY_CONNECTIONS/);
    const other = await open(proxyV2For("198.51.100.2", 4));
    assert.equal((await exchange(other, get("/healthz"))).status, 200, "the other client is not limited");
    const secondOther = await open(proxyV1("198.51.100.2", 5));
    assert.equal((await exchange(secondOther, get("/healthz"))).status, 200);
    for (const socket of [...first, third, other, secondOther]) socket.destroy();
  });

  test("proxy protocol - missing, untrusted, malformed, too large, truncated and slow headers close the connection with a reason and a metric", async () => {
    const cases: { reason: string; send: () => Promise<Socket> }[] = [
      { reason: "missing", send: () => open(Buffer.from(get("/healthz"))) },
      { reason: "untrusted", send: () => open(proxyV1("198.51.100.66", 1), UNTRUSTED_LOCAL) },
      { reason: "malformed", send: () => open(Buffer.from("PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n")) },
      { reason: "too_large", send: () => open(Buffer.from(`PROXY TCP4 ${"9".repeat(200)}`)) },
      { reason: "timeout", send: () => open(Buffer.from("PROXY TCP4 198.51")) },
      {
        reason: "truncated",
        send: async () => {
          const socket = await open(proxyV2For("198.51.100.3", 1).subarray(0, 20));
          socket.end();
          return socket;
        },
      },
    ];
    for (const { reason, send } of cases) {
      const before = await metricValue(
        server,
        "streamgate_proxy_protocol_rejected_total",
        `listener="main",reason="${reason}"`,
      );
      const started = Date.now();
      await closedByServer(await send());
      if (reason !== "timeout") assert.ok(Date.now() - started < TIMEOUT_MS + 200, `${reason} closed late`);
      const line = await logs.waitForLine(
        (candidate) =>
          candidate.msg === "connection closed: PROXY protocol header refused" && candidate.reason === reason,
        `refused: ${reason}`,
      );
      assert.equal(typeof line.detail, "string");
      await waitFor(
        async () =>
          (await metricValue(
            server,
            "streamgate_proxy_protocol_rejected_total",
            `listener="main",reason="${reason}"`,
          )) ===
          before + 1,
        { timeoutMs: 2_000, describe: () => `metric for ${reason}` },
      );
    }
    // The server still serves.
    const socket = await open(proxyV1("198.51.100.9", 1));
    assert.equal((await exchange(socket, get("/readyz"))).status, 200);
    socket.destroy();
  });

  test("proxy protocol - an untrusted peer without a header is served as itself and its X-Forwarded-For is ignored", async () => {
    const topic = `projects/${uniqueName("pp")}/topics/${uniqueName("t")}`;
    await server.server.engine.createTopic({ name: topic });
    const socket = await open(
      Buffer.from(
        get(`/v1/${topic}/events?from=earliest`, "X-Forwarded-For: 192.0.2.99\r\nForwarded: for=192.0.2.98\r\n"),
      ),
      UNTRUSTED_LOCAL,
    );
    const line = await logs.waitForLine(
      (candidate) => candidate.msg === "stream opened" && candidate.topic === topic,
      "stream opened",
    );
    assert.equal(line.principal, `anonymous@${UNTRUSTED_LOCAL}`);
    socket.destroy();
  });
});

describe("proxy protocol with auth on", () => {
  let server: TestServer;
  let logs: LogCapture;

  before(async () => {
    logs = captureLogs("debug");
    server = await startTestServer(
      { trustedProxies: ["127.0.0.1"], proxyProtocol: true, authSecret: "a-test-secret-of-at-least-32-bytes!!" },
      { logger: logs.logger },
    );
  });
  after(async () => {
    await server?.close();
  });

  test("proxy protocol - a request refused by auth is logged with the client's address, not the proxy's", async () => {
    const socket = await connectWithHeader(server.port, proxyV1("198.51.100.77", 5555));
    const answer = await exchange(socket, get("/v1/projects/p/topics"));
    socket.destroy();
    assert.equal(answer.status, 401);
    const line = await logs.waitForLine((candidate) => candidate.msg === "request refused by auth", "auth refusal");
    assert.equal(line.remoteAddress, "198.51.100.77");
    assert.equal(line.reason, "TOKEN_MISSING");
  });
});

describe("proxy protocol before TLS", () => {
  let server: TestServer;
  let logs: LogCapture;
  let tls: SelfSigned;

  before(async () => {
    tls = createSelfSigned();
    logs = captureLogs("debug");
    server = await startTestServer(
      { trustedProxies: ["127.0.0.0/30"], proxyProtocol: true, tlsCertPath: tls.certPath, tlsKeyPath: tls.keyPath },
      { logger: logs.logger },
    );
  });
  after(async () => {
    await server?.close();
    rmSync(tls.dir, { recursive: true, force: true });
  });

  test("proxy protocol - a v2 header then a TLS handshake (ALPN h2): the TLS connection line names the header's client", async () => {
    const tlvs = [
      { type: 0x02, value: Buffer.from("api.example.com") },
      { type: 0x05, value: Buffer.from([0xab, 0xcd]) },
    ];
    const raw = await connectWithHeader(server.port, proxyV2For("192.0.2.77", 61000, tlvs));
    const secure = tlsConnect({ socket: raw, ca: tls.cert, servername: "localhost", ALPNProtocols: ["h2"] });
    const session = http2Connect(`https://localhost:${server.port}`, { createConnection: () => secure });
    try {
      const stream = session.request({ ":path": "/healthz" });
      let body = "";
      stream.on("data", (chunk: Buffer) => {
        body += chunk.toString();
      });
      await new Promise((resolve) => stream.once("end", resolve));
      assert.match(body, /"ok"/);
      const line = await logs.waitForLine(
        (candidate) => candidate.msg === "connection opened" && candidate.remoteAddress === "192.0.2.77",
        "opened for 192.0.2.77",
      );
      assert.equal(line.transport, "h2/tls");
      assert.equal(line.proxyAddress, "127.0.0.1");
      assert.equal(line.proxyAuthority, "api.example.com");
      assert.equal(line.proxyUniqueId, "abcd");
    } finally {
      session.destroy();
      raw.destroy();
    }
  });

  test("proxy protocol - a TLS ClientHello without a header from a trusted peer is refused as missing", async () => {
    const secure = tlsConnect({ port: server.port, host: "127.0.0.1", ca: tls.cert, servername: "localhost" });
    const outcome = await new Promise<string>((resolve) => {
      secure.once("secureConnect", () => resolve("handshake completed"));
      secure.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
      secure.once("close", () => resolve("closed"));
    });
    secure.destroy();
    assert.notEqual(outcome, "handshake completed");
    await logs.waitForLine(
      (candidate) =>
        candidate.msg === "connection closed: PROXY protocol header refused" && candidate.reason === "missing",
      "refused: missing",
    );
  });
});

describe("proxy protocol on the tunnel entries", () => {
  let dir: string;
  let server: TestServer;
  let agent: ScriptedAgent;
  let httpPort: number;
  let grpcPort: number;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "streamgate-proxy-tunnel-"));
    const rulesPath = join(dir, "rules.yaml");
    writeFileSync(
      rulesPath,
      `agents:\n  - { name: edge, token: edge-token, groups: [edge] }\nrules:\n  - name: web\n    match: { pathPrefix: /web/ }\n    group: edge\n  - name: shop\n    match: { service: "shop.*" }\n    group: edge\n`,
    );
    server = await startTestServer({
      tunnelRulesPath: rulesPath,
      tunnelHttpPort: 0,
      tunnelGrpcPort: 0,
      trustedProxies: ["127.0.0.1"],
      tunnelProxyProtocol: true,
    });
    httpPort = server.server.tunnel!.addresses()!.http.port;
    grpcPort = server.server.tunnel!.addresses()!.grpc.port;
    agent = await startScriptedAgent({
      url: server.url,
      token: "edge-token",
      group: "edge",
      clientId: "a",
      respond: echoResponder("a"),
    });
    await waitFor(() => server.server.tunnel!.stats().standby >= 1, { timeoutMs: 5_000, describe: () => "standby" });
  });
  after(async () => {
    await agent?.close();
    await server?.close({ allowOpenConnections: true });
    rmSync(dir, { recursive: true, force: true });
  });

  const forwardedTo = (path: string) => {
    const head = agent.received.find((received) => received.path === path);
    assert.ok(head !== undefined, `the agent got no ${path}`);
    const header = (name: string) => head.headers.find((entry) => entry.name === name)?.value;
    return { xff: header("x-forwarded-for"), forwarded: header("forwarded") };
  };

  test("proxy protocol - the tunnel's HTTP entry takes the header's client and forwards only the verified chain", async () => {
    const socket = await connectWithHeader(httpPort, proxyV1("198.51.100.20", 1234));
    const answer = await exchange(socket, get("/web/one", "X-Forwarded-For: 6.6.6.6\r\n"));
    socket.destroy();
    assert.equal(answer.status, 200);
    const { xff, forwarded } = forwardedTo("/web/one");
    assert.equal(xff, "198.51.100.20, 127.0.0.1");
    assert.match(String(forwarded), /^for=198\.51\.100\.20, for=127\.0\.0\.1;proto=http;host=/);
  });

  test("proxy protocol - an untrusted client's forged X-Forwarded-For and Forwarded never reach the backend", async () => {
    const socket = await connectWithHeader(
      httpPort,
      Buffer.from(get("/web/two", "X-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.7\r\n")),
      UNTRUSTED_LOCAL,
    );
    const answer = await exchange(socket, "");
    socket.destroy();
    assert.equal(answer.status, 200);
    const { xff, forwarded } = forwardedTo("/web/two");
    assert.equal(xff, UNTRUSTED_LOCAL);
    assert.doesNotMatch(String(forwarded), /6\.6\.6/);
  });

  test("proxy protocol - the tunnel's gRPC entry reads a v2 header before the HTTP/2 preface and forwards its client", async () => {
    const socket = await connectWithHeader(grpcPort, proxyV2For("203.0.113.30", 7000));
    const session = http2Connect(`http://127.0.0.1:${grpcPort}`, { createConnection: () => socket });
    try {
      const stream = session.request({
        ":method": "POST",
        ":path": "/shop.Orders/Get",
        "content-type": "application/grpc",
        te: "trailers",
        "x-forwarded-for": "6.6.6.6",
      });
      stream.on("data", () => undefined);
      const trailers = new Promise<Record<string, unknown>>((resolve) => stream.once("trailers", resolve));
      stream.end(Buffer.from([0, 0, 0, 0, 1, 7]));
      assert.equal((await trailers)["grpc-status"], "0");
    } finally {
      session.destroy();
    }
    const { xff } = forwardedTo("/shop.Orders/Get");
    assert.equal(xff, "203.0.113.30, 127.0.0.1");
  });
});
