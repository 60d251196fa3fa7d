// The seed's chain with real proxies: nginx L7 (TLS + HTTP/2, deploy/nginx/streamgate.conf) -> nginx L4 `stream` with
// proxy_protocol on (deploy/nginx/streamgate-stream.conf) -> streamgate, and haproxy in TCP mode with send-proxy-v2
// (deploy/haproxy/streamgate.cfg) in front of streamgate's TLS. Every transport streams through both; the client's
// address reaches streamgate's logs and limits; idle streams outlive the proxies' timeouts.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { connect } from "node:net";
import { describe, test } from "node:test";
import { connect as tlsConnect } from "node:tls";
import { captureLogs } from "../harness/log-capture.js";
import { findNginx, startNginx } from "../harness/nginx.js";
import { type ProxiedSetup, proxiedSuite } from "../harness/proxied-suite.js";
import { findHaproxy, hasNginxStreamModule, startHaproxy, startStreamNginx } from "../harness/proxy-chain.js";
import { createSelfSigned } from "../harness/self-signed.js";
import { peersRequired, startTestServer } from "../harness/start-test-server.js";

/** The proxies' idle timeouts in the test, and streamgate's heartbeat well below them. */
const IDLE_TIMEOUT_S = 2;
const HEARTBEAT_MS = 500;
/** The SSE and WebSocket clients connect from here (Linux answers for all of 127.0.0.0/8). */
const CLIENT_ADDRESS = "127.0.0.3";

const missing = [
  findNginx() === null ? "nginx" : null,
  hasNginxStreamModule() ? null : "libnginx-mod-stream",
  findHaproxy() === null ? "haproxy" : null,
].filter((name) => name !== null);
if (missing.length > 0 && peersRequired())
  throw new Error(`${missing.join(", ")} required with CI=true (apt-get install -y ${missing.join(" ")})`);
if (missing.length > 0)
  console.warn(`\n*** SKIPPING test/integration/proxy-chain.test.ts: ${missing.join(", ")} not installed ***\n`);
const skip = missing.length > 0 ? `${missing.join(", ")} not installed` : false;

describe("nginx L7 -> nginx L4 (proxy_protocol on) -> streamgate", { skip }, () => {
  const suite = proxiedSuite({
    label: "nginx chain",
    idleTimeoutS: IDLE_TIMEOUT_S,
    clientAddress: CLIENT_ADDRESS,
    async start(): Promise<ProxiedSetup> {
      const logs = captureLogs("debug");
      // Both nginx connect from 127.0.0.1: the L4 hop's PROXY header names the L7 hop, whose X-Forwarded-For names the client.
      const server = await startTestServer(
        { heartbeatMs: HEARTBEAT_MS, trustedProxies: ["127.0.0.1"], proxyProtocol: true },
        { logger: logs.logger },
      );
      const l4 = await startStreamNginx({ upstreamPort: server.port, timeout: `${IDLE_TIMEOUT_S}s` });
      const l7 = await startNginx({ upstreamPort: l4.port, readTimeout: `${IDLE_TIMEOUT_S}s` });
      return {
        hostPort: l7.hostPort,
        url: l7.url,
        cert: l7.cert,
        server,
        logs,
        async stop() {
          await l7.stop();
          await l4.stop();
          await server.close({ allowOpenConnections: true });
        },
      };
    },
  });

  test("nginx chain - streamgate's connections came with a PROXY header naming the L7 hop, none was refused", () => {
    const { logs } = suite.setup();
    const opened = logs.lines().filter((line) => line.msg === "connection opened");
    assert.ok(opened.length > 0, "no connection lines");
    for (const line of opened) {
      assert.equal(line.addressSource, "proxy_protocol", JSON.stringify(line));
      assert.equal(line.remoteAddress, "127.0.0.1");
    }
    const refused = logs.lines().filter((line) => line.msg === "connection closed: PROXY protocol header refused");
    assert.deepEqual(refused, []);
  });
});

describe("haproxy (TCP, send-proxy-v2) -> streamgate TLS", { skip }, () => {
  const suite = proxiedSuite({
    label: "haproxy",
    idleTimeoutS: IDLE_TIMEOUT_S,
    clientAddress: CLIENT_ADDRESS,
    async start(): Promise<ProxiedSetup> {
      const logs = captureLogs("debug");
      const tls = createSelfSigned();
      const server = await startTestServer(
        {
          heartbeatMs: HEARTBEAT_MS,
          trustedProxies: ["127.0.0.1"],
          proxyProtocol: true,
          tlsCertPath: tls.certPath,
          tlsKeyPath: tls.keyPath,
        },
        { logger: logs.logger },
      );
      const haproxy = await startHaproxy({ upstreamPort: server.port, timeout: `${IDLE_TIMEOUT_S}s` });
      return {
        hostPort: haproxy.hostPort,
        url: `https://${haproxy.hostPort}`,
        cert: tls.cert,
        server,
        logs,
        async stop() {
          await haproxy.stop();
          await server.close({ allowOpenConnections: true });
          rmSync(tls.dir, { recursive: true, force: true });
        },
      };
    },
  });

  test("haproxy - the TLS connection line names the client from the v2 header and haproxy as the proxy", async () => {
    const { logs } = suite.setup();
    const line = await logs.waitForLine(
      (candidate) => candidate.msg === "connection opened" && candidate.remoteAddress === CLIENT_ADDRESS,
      `opened for ${CLIENT_ADDRESS}`,
    );
    assert.equal(line.proxyAddress, "127.0.0.1");
    assert.equal(line.addressSource, "proxy_protocol");
    assert.match(String(line.transport), /\/tls$/);
  });
});

describe("haproxy (send-proxy-v2): the per-IP connection limit counts each client behind it", { skip }, () => {
  test("haproxy - with --max-connections-per-ip 2, a third connection from one client is refused, another client's is not", async () => {
    const tls = createSelfSigned();
    const server = await startTestServer({
      trustedProxies: ["127.0.0.1"],
      proxyProtocol: true,
      tlsCertPath: tls.certPath,
      tlsKeyPath: tls.keyPath,
      maxConnectionsPerIp: 2,
    });
    const haproxy = await startHaproxy({ upstreamPort: server.port, timeout: "10s" });
    const opened: ReturnType<typeof tlsConnect>[] = [];
    /** A TLS handshake through haproxy from `localAddress`: "ok", or how it failed. */
    const handshake = (localAddress: string) =>
      new Promise<string>((resolve) => {
        const tcp = connect({ port: haproxy.port, host: "127.0.0.1", localAddress });
        const socket = tlsConnect({ socket: tcp, ca: tls.cert, servername: "localhost" });
        opened.push(socket);
        socket.once("secureConnect", () => resolve("ok"));
        socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
        socket.once("close", () => resolve("closed"));
      });
    try {
      assert.equal(await handshake("127.0.0.5"), "ok");
      assert.equal(await handshake("127.0.0.5"), "ok");
      assert.notEqual(await handshake("127.0.0.5"), "ok", "the third connection of 127.0.0.5 got through");
      assert.equal(await handshake("127.0.0.6"), "ok", "127.0.0.6 was limited with 127.0.0.5");
      assert.equal(await handshake("127.0.0.6"), "ok");
    } finally {
      for (const socket of opened) socket.destroy();
      await haproxy.stop();
      await server.close({ allowOpenConnections: true });
      rmSync(tls.dir, { recursive: true, force: true });
    }
  });
});
