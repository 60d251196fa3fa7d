// TLS: certificate reload on file change (Kubernetes symlink swap), broken pairs refused, mTLS with a client CA.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { type ClientHttp2Session, createSecureServer, connect as http2Connect } from "node:http2";
import { createServer as createHttpsServer, request as httpsRequest } from "node:https";
import { type AddressInfo, connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { connect as tlsConnect } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { resolveServerOptions, type ServerOptions } from "../../src/config/index.js";
import { clientCertificateSubject } from "../../src/http/index.js";
import { createServer, type StreamgateServer } from "../../src/server/index.js";
import { writeTunnelRules } from "../harness/interop-tunnel.js";
import { captureLogs, type LogCapture } from "../harness/log-capture.js";
import { createSelfSigned } from "../harness/self-signed.js";
import { createTestCa } from "../harness/test-ca.js";
import { waitFor, withTimeout } from "../harness/wait-for.js";

const healthProto = protoLoader.loadSync("node_modules/grpc-health-check/proto/health/v1/health.proto", {
  enums: String,
});
type Ctor = new (address: string, credentials: grpc.ChannelCredentials, options?: object) => grpc.Client;
const Health = (grpc.loadPackageDefinition(healthProto) as unknown as { grpc: { health: { v1: { Health: Ctor } } } })
  .grpc.health.v1.Health;

/** Bounds a wait for a reload: fs.watch usually fires at once; the 5 s stat poll is the fallback. */
const RELOAD_WAIT_MS = 15_000;

interface Running {
  server: StreamgateServer;
  port: number;
  logs: LogCapture;
  dataDir: string;
  close(): Promise<void>;
}

async function start(options: Partial<ServerOptions>): Promise<Running> {
  const dataDir = mkdtempSync(join(tmpdir(), "streamgate-tls-test-"));
  const logs = captureLogs("debug");
  const server = await createServer(resolveServerOptions({ host: "127.0.0.1", port: 0, dataDir, ...options }), {
    logger: logs.logger,
  });
  const address = await server.listen();
  return {
    server,
    port: address.port,
    logs,
    dataDir,
    async close() {
      await waitFor(() => server.connections() === 0, {
        timeoutMs: 3_000,
        describe: () => `${server.connections()} client connection(s) still open`,
      }).finally(() => server.close());
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** SHA-256 fingerprint of the certificate a new TLS connection to `port` is shown. */
function servedFingerprint(port: number): Promise<string> {
  return withTimeout(
    new Promise((resolve, reject) => {
      const socket = tlsConnect({ host: "127.0.0.1", port, servername: "localhost", rejectUnauthorized: false }, () => {
        const fingerprint = socket.getPeerCertificate().fingerprint256;
        socket.end();
        resolve(fingerprint);
      });
      socket.on("error", reject);
    }),
    5_000,
    "TLS handshake",
  );
}

function fingerprintOf(pem: Buffer): string {
  return new X509Certificate(pem).fingerprint256;
}

/** A request on an HTTP/2 session; resolves with status and body once it ends. */
function h2Call(
  session: ClientHttp2Session,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: string }> {
  return withTimeout(
    new Promise((resolve, reject) => {
      const stream = session.request({ ":method": method, ":path": path, "content-type": "application/json" });
      let status = 0;
      let text = "";
      stream.setEncoding("utf8");
      stream.on("response", (headers) => (status = Number(headers[":status"])));
      stream.on("data", (chunk: string) => (text += chunk));
      stream.on("end", () => resolve({ status, body: text }));
      stream.on("error", reject);
      stream.end(body === undefined ? undefined : JSON.stringify(body));
    }),
    5_000,
    `${method} ${path}`,
  );
}

function httpsGet(port: number, options: object): Promise<number> {
  return withTimeout(
    new Promise((resolve, reject) => {
      const request = httpsRequest(
        { host: "127.0.0.1", port, path: "/healthz", servername: "localhost", agent: false, ...options },
        (response) => {
          response.resume();
          response.on("end", () => resolve(response.statusCode ?? 0));
        },
      );
      request.on("error", reject);
      request.end();
    }),
    5_000,
    "https GET /healthz",
  );
}

function healthCheck(client: grpc.Client): Promise<string> {
  return withTimeout(
    new Promise((resolve, reject) => {
      (
        client as unknown as Record<
          string,
          (r: object, cb: (e: grpc.ServiceError | null, v: { status: string }) => void) => void
        >
      ).check!({}, (error, value) => (error === null ? resolve(value.status) : reject(error)));
    }),
    10_000,
    "grpc.health.v1.Health/Check",
  );
}

describe("tls", () => {
  it("tls - a certificate swapped like a Kubernetes secret is served to new connections while an open HTTP/2 stream stays up", async () => {
    const first = createSelfSigned();
    const second = createSelfSigned();
    // The layout of a Kubernetes secret volume: files are symlinks through `..data`, which is swapped atomically.
    const volume = mkdtempSync(join(tmpdir(), "streamgate-secret-"));
    const writeVersion = (name: string, source: typeof first) => {
      mkdirSync(join(volume, name));
      copyFileSync(source.certPath, join(volume, name, "tls.crt"));
      copyFileSync(source.keyPath, join(volume, name, "tls.key"));
    };
    writeVersion("..v1", first);
    symlinkSync("..v1", join(volume, "..data"));
    symlinkSync("..data/tls.crt", join(volume, "tls.crt"));
    symlinkSync("..data/tls.key", join(volume, "tls.key"));

    const running = await start({ tlsCertPath: join(volume, "tls.crt"), tlsKeyPath: join(volume, "tls.key") });
    const sessions: ClientHttp2Session[] = [];
    const open = () => {
      const session = http2Connect(`https://localhost:${running.port}`, { rejectUnauthorized: false });
      session.on("error", () => undefined);
      sessions.push(session);
      return session;
    };
    try {
      assert.equal(await servedFingerprint(running.port), fingerprintOf(first.cert));
      const base = "/v1/projects/tls/topics/reload";
      const before = open();
      assert.equal((await h2Call(before, "PUT", base, {})).status, 200);
      // The stream that must survive the reload: SSE over HTTP/2 on the first certificate's connection.
      const events = before.request({ ":path": `${base}/events?from=earliest`, accept: "text/event-stream" });
      events.setEncoding("utf8");
      let received = "";
      events.on("data", (chunk: string) => (received += chunk));
      await waitFor(() => received.includes("retry:"), { timeoutMs: 5_000, describe: () => `SSE start: ${received}` });

      writeVersion("..v2", second);
      symlinkSync("..v2", join(volume, "..data_tmp"));
      renameSync(join(volume, "..data_tmp"), join(volume, "..data"));

      await running.logs.waitForLine(
        (line) => line.msg === "tls certificate reloaded; new connections use it",
        "reload",
        RELOAD_WAIT_MS,
      );
      assert.equal(await servedFingerprint(running.port), fingerprintOf(second.cert));

      const after = open();
      const published = await h2Call(after, "POST", `${base}:publish`, {
        messages: [{ data: Buffer.from("after reload").toString("base64") }],
      });
      assert.equal(published.status, 200, published.body);
      await waitFor(() => received.includes("event: message"), {
        timeoutMs: 5_000,
        describe: () => `the pre-reload SSE stream got no message: ${received}`,
      });
      assert.equal(events.closed, false);
      events.close();
    } finally {
      for (const session of sessions) session.close();
      await running.close();
      for (const dir of [volume, first.dir, second.dir]) rmSync(dir, { recursive: true, force: true });
    }
  });

  it("tls - a certificate that does not match its key is refused and the previous one stays in use", async () => {
    const first = createSelfSigned();
    const second = createSelfSigned();
    const dir = mkdtempSync(join(tmpdir(), "streamgate-certs-"));
    const certPath = join(dir, "cert.pem");
    const keyPath = join(dir, "key.pem");
    copyFileSync(first.certPath, certPath);
    copyFileSync(first.keyPath, keyPath);
    const running = await start({ tlsCertPath: certPath, tlsKeyPath: keyPath });
    try {
      writeFileSync(certPath, second.cert);
      const failure = await running.logs.waitForLine(
        (line) => line.msg === "tls certificate reload failed; still serving the previous certificate",
        "reload failed",
        RELOAD_WAIT_MS,
      );
      assert.equal(failure.level, 50);
      assert.equal(await servedFingerprint(running.port), fingerprintOf(first.cert));

      // Completing the pair loads it.
      copyFileSync(second.keyPath, keyPath);
      await running.logs.waitForLine(
        (line) => line.msg === "tls certificate reloaded; new connections use it",
        "reload",
        RELOAD_WAIT_MS,
      );
      assert.equal(await servedFingerprint(running.port), fingerprintOf(second.cert));
    } finally {
      await running.close();
      for (const path of [dir, first.dir, second.dir]) rmSync(path, { recursive: true, force: true });
    }
  });

  it("tls - with a client CA only clients holding a certificate it signed get through (gRPC and HTTPS)", async () => {
    const ca = createTestCa("streamgate clients");
    const rogue = createTestCa("someone else");
    const serverCert = ca.issue("localhost", "DNS:localhost,IP:127.0.0.1");
    const agent = ca.issue("agent-1");
    const stranger = rogue.issue("agent-1");
    const running = await start({
      tlsCertPath: serverCert.certPath,
      tlsKeyPath: serverCert.keyPath,
      tlsClientCaPath: ca.certPath,
    });
    const clients: grpc.Client[] = [];
    try {
      const trusted = new Health(
        `localhost:${running.port}`,
        grpc.credentials.createSsl(ca.cert, agent.key, agent.cert),
      );
      clients.push(trusted);
      assert.equal(await healthCheck(trusted), "SERVING");
      const opened = await running.logs.waitForLine(
        (line) => line.msg === "connection opened" && line.clientSubject !== undefined,
        "connection opened with a client subject",
      );
      assert.equal(opened.clientSubject, "O=streamgate,CN=agent-1");
      assert.equal(opened.transport, "h2/tls");

      const anonymous = new Health(`localhost:${running.port}`, grpc.credentials.createSsl(ca.cert), {
        "grpc.initial_reconnect_backoff_ms": 100,
      });
      clients.push(anonymous);
      const refused = await healthCheck(anonymous).then(
        () => assert.fail("a client without a certificate got through"),
        (error: grpc.ServiceError) => error,
      );
      assert.equal(refused.code, grpc.status.UNAVAILABLE);

      assert.equal(await httpsGet(running.port, { ca: ca.cert, key: agent.key, cert: agent.cert }), 200);
      await assert.rejects(httpsGet(running.port, { ca: ca.cert }));
      await assert.rejects(httpsGet(running.port, { ca: ca.cert, key: stranger.key, cert: stranger.cert }));
      await running.logs.waitForLine((line) => line.msg === "tls handshake failed", "handshake failure");
    } finally {
      for (const client of clients) client.close();
      await running.close();
      for (const dir of [ca.dir, rogue.dir]) rmSync(dir, { recursive: true, force: true });
    }
  });

  it("tls - the tunnel entries log a failed TLS handshake (with the entry's name), like the main port", async () => {
    const certificate = createSelfSigned();
    const rules = writeTunnelRules({ dir: certificate.dir, grpcBackendPort: 1 });
    const running = await start({
      tlsCertPath: certificate.certPath,
      tlsKeyPath: certificate.keyPath,
      tunnelRulesPath: rules.serverRulesPath,
      tunnelGrpcPort: 0,
      tunnelHttpPort: 0,
    });
    try {
      const entries = running.server.tunnel?.addresses() ?? null;
      assert.ok(entries !== null, "the tunnel entries listen");
      for (const [entry, port] of [
        ["grpc", entries.grpc.port],
        ["http", entries.http.port],
      ] as const) {
        // Plain HTTP to a TLS port: the handshake fails on the server's side.
        await new Promise<void>((resolve) => {
          const socket = netConnect(port, "127.0.0.1", () => socket.end("GET / HTTP/1.1\r\nhost: x\r\n\r\n"));
          socket.on("error", () => undefined);
          socket.on("close", () => resolve());
        });
        const line = await running.logs.waitForLine(
          (logged) => logged.msg === "tls handshake failed" && logged.entry === entry,
          `handshake failure on the ${entry} entry`,
        );
        assert.equal(line.remoteAddress, "127.0.0.1");
      }
    } finally {
      await running.close();
      rmSync(certificate.dir, { recursive: true, force: true });
    }
  });

  it("tls - with --tls-client-cert-optional a client without a certificate is served too", async () => {
    const ca = createTestCa();
    const serverCert = ca.issue("localhost", "DNS:localhost,IP:127.0.0.1");
    const agent = ca.issue("agent-2");
    const running = await start({
      tlsCertPath: serverCert.certPath,
      tlsKeyPath: serverCert.keyPath,
      tlsClientCaPath: ca.certPath,
      tlsClientCertOptional: true,
    });
    try {
      assert.equal(await httpsGet(running.port, { ca: ca.cert }), 200);
      assert.equal(await httpsGet(running.port, { ca: ca.cert, key: agent.key, cert: agent.cert }), 200);
    } finally {
      await running.close();
      rmSync(ca.dir, { recursive: true, force: true });
    }
  });

  it("tls - clientCertificateSubject names the verified client over HTTP/1.1 and HTTP/2, and null without one", async () => {
    const ca = createTestCa();
    const serverCert = ca.issue("localhost", "DNS:localhost,IP:127.0.0.1");
    const agent = ca.issue("agent-3");
    const options = {
      cert: serverCert.cert,
      key: serverCert.key,
      ca: ca.cert,
      requestCert: true,
      rejectUnauthorized: false,
    };
    const http1 = createHttpsServer(options, (request, response) => {
      response.end(String(clientCertificateSubject(request)));
    });
    const http2 = createSecureServer({ ...options, allowHTTP1: false }, (request, response) => {
      response.end(String(clientCertificateSubject(request)));
    });
    const listen = (server: typeof http1 | typeof http2) =>
      new Promise<number>((resolve) =>
        server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)),
      );
    const http1Port = await listen(http1);
    const http2Port = await listen(http2);
    const session = http2Connect(`https://localhost:${http2Port}`, { ca: ca.cert, key: agent.key, cert: agent.cert });
    const anonymousSession = http2Connect(`https://localhost:${http2Port}`, { ca: ca.cert });
    try {
      const body = (port: number, extra: object) =>
        withTimeout(
          new Promise<string>((resolve, reject) => {
            const request = httpsRequest(
              { host: "127.0.0.1", port, servername: "localhost", agent: false, ca: ca.cert, ...extra },
              (response) => {
                let text = "";
                response.on("data", (chunk: Buffer) => (text += chunk));
                response.on("end", () => resolve(text));
              },
            );
            request.on("error", reject);
            request.end();
          }),
          5_000,
          "https request",
        );
      assert.equal(await body(http1Port, { key: agent.key, cert: agent.cert }), "O=streamgate,CN=agent-3");
      assert.equal(await body(http1Port, {}), "null");
      assert.equal((await h2Call(session, "GET", "/")).body, "O=streamgate,CN=agent-3");
      assert.equal((await h2Call(anonymousSession, "GET", "/")).body, "null");
    } finally {
      session.close();
      anonymousSession.close();
      await Promise.all([
        new Promise((resolve) => http1.close(resolve)),
        new Promise((resolve) => http2.close(resolve)),
      ]);
      rmSync(ca.dir, { recursive: true, force: true });
    }
  });
});
