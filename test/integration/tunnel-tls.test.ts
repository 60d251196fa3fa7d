// The tunnel's public entries over TLS with the server's certificate (openssl-made): grpc-js with
// createSsl (ALPN h2) through an agent that itself dials the server over TLS, curl --http2/--http1.1,
// SSE and a wss:// WebSocket through the HTTP entry, and X-Forwarded-Proto/Forwarded saying https.
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { rmSync } from "node:fs";
import { connect as http2Connect } from "node:http2";
import { request as httpsRequest } from "node:https";
import { after, before, describe, test } from "node:test";
import { connect as tlsConnect } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { createTunnelAgent } from "../../src/tunnel/agent/index.js";
import { ECHO_INITIAL_HEADER, ECHO_TRAILING_HEADER } from "../harness/interop-backend.js";
import {
  callMetadata,
  createInteropClients,
  duplexCall,
  type InteropClients,
  serverStreamCall,
  unaryCall,
} from "../harness/interop-cases.js";
import { registerInteropCases } from "../harness/interop-suite.js";
import { startTunnelStack, type TunnelStack } from "../harness/interop-tunnel.js";
import { openWebSocket } from "../harness/open-websocket.js";
import { createSelfSigned, type SelfSigned } from "../harness/self-signed.js";
import { peersRequired } from "../harness/start-test-server.js";
import { waitFor, withTimeout } from "../harness/wait-for.js";

const opensslFound = spawnSync("openssl", ["version"]).status === 0;
const curlVersion = spawnSync("curl", ["--version"], { encoding: "utf8" });
const curlFound = curlVersion.status === 0 && /\bHTTP2\b/.test(curlVersion.stdout);
if (peersRequired() && !(opensslFound && curlFound))
  throw new Error("openssl and curl (with HTTP2) are required with CI=true (apt-get install -y openssl curl)");
const opensslSkip = opensslFound ? false : "openssl is not installed (it makes the certificate)";
const curlSkip = curlFound ? false : "curl with HTTP2 is not installed";
for (const skip of [opensslSkip, curlSkip])
  if (skip !== false) console.warn(`\n*** SKIPPING part of test/integration/tunnel-tls.test.ts: ${skip} ***\n`);

/** Every test is bounded: a hop that holds a response back fails the test instead of hanging the file. */
const TIMEOUT = { timeout: 20_000 };

const ids = (text: string) => [...text.matchAll(/^id: (\d+)$/gm)].map((match) => Number(match[1]));
const portOf = (hostPort: string) => Number(hostPort.slice(hostPort.lastIndexOf(":") + 1));

/** What a TLS client is shown by `port`: whether the chain verified against `ca`, the ALPN pick, the certificate. */
function handshake(
  port: number,
  ca: Buffer,
  alpn: string[],
): Promise<{ authorized: boolean; alpn: string | false; fingerprint: string }> {
  return withTimeout(
    new Promise((resolve, reject) => {
      const socket = tlsConnect({ host: "127.0.0.1", port, ca, ALPNProtocols: alpn }, () => {
        const result = {
          authorized: socket.authorized,
          alpn: socket.alpnProtocol ?? false,
          fingerprint: socket.getPeerCertificate().fingerprint256,
        };
        socket.end();
        resolve(result);
      });
      socket.on("error", reject);
    }),
    5_000,
    `TLS handshake with port ${port}`,
  );
}

interface SseReader {
  /** Resolves with the status once the response headers arrived. */
  headers: Promise<number>;
  text(): string;
  ended(): boolean;
  close(): void;
}

/** An SSE reader over HTTPS/1.1 (node:https), or over HTTP/2 with TLS (node:http2). */
function openSse(url: string, ca: Buffer, version: "1.1" | "2"): SseReader {
  let text = "";
  let ended = false;
  const onData = (chunk: string) => {
    text += chunk;
  };
  const end = () => {
    ended = true;
  };
  if (version === "1.1") {
    const request = httpsRequest(url, { ca, agent: false, headers: { accept: "text/event-stream" } });
    const headers = new Promise<number>((resolve, reject) => {
      request.on("response", (response) => {
        response.setEncoding("utf8");
        response.on("data", onData);
        for (const event of ["end", "close", "error"]) response.on(event, end);
        resolve(response.statusCode ?? 0);
      });
      request.on("error", reject);
    });
    headers.catch(() => undefined);
    request.end();
    return { headers, text: () => text, ended: () => ended, close: () => request.destroy() };
  }
  const parsed = new URL(url);
  const session = http2Connect(parsed.origin, { ca });
  session.on("error", () => undefined);
  const stream = session.request({ ":path": parsed.pathname, accept: "text/event-stream" }, { endStream: true });
  const headers = new Promise<number>((resolve, reject) => {
    stream.on("response", (received) => resolve(Number(received[":status"])));
    stream.on("error", reject);
  });
  headers.catch(() => undefined);
  stream.setEncoding("utf8");
  stream.on("data", onData);
  for (const event of ["end", "close", "error"]) stream.on(event, end);
  return {
    headers,
    text: () => text,
    ended: () => ended,
    close: () => {
      stream.close();
      session.destroy();
    },
  };
}

/** `curl -sS --cacert` for one GET; the status and the HTTP version curl used come from `-w`. */
function curl(
  url: string,
  caPath: string,
  args: string[],
): Promise<{ status: number; httpVersion: string; body: string }> {
  const all = ["-sS", "--max-time", "15", "--cacert", caPath, ...args, "-w", "\n%{http_code} %{http_version}", url];
  return new Promise((resolve, reject) => {
    execFile("curl", all, { encoding: "utf8", timeout: 20_000 }, (error, stdout, stderr) => {
      if (error !== null) {
        reject(new Error(`curl ${all.join(" ")} failed: ${error.message} ${stderr}`));
        return;
      }
      const split = stdout.lastIndexOf("\n");
      const [status, httpVersion] = stdout.slice(split + 1).split(" ");
      resolve({ status: Number(status), httpVersion: httpVersion ?? "", body: stdout.slice(0, split) });
    });
  });
}

/** The headers the backend received carry the client's TLS: `X-Forwarded-Proto: https` and `proto=https`. */
function assertForwardedHttps(headers: Record<string, string | string[] | undefined>, what: string): void {
  const shown = `${what}: ${JSON.stringify(headers)}`;
  assert.equal(headers["x-forwarded-proto"], "https", shown);
  assert.match(String(headers.forwarded), /(^|;)proto=https(;|$)/, shown);
  assert.ok(String(headers["x-forwarded-for"]).includes("127.0.0.1"), shown);
}

describe("tunnel tls", { skip: opensslSkip }, () => {
  let certificate: SelfSigned;
  let stack: TunnelStack;
  before(async () => {
    certificate = createSelfSigned();
    stack = await startTunnelStack({
      http: true,
      server: { tlsCertPath: certificate.certPath, tlsKeyPath: certificate.keyPath },
      serverCaPath: certificate.certPath,
    });
  });
  const suite = registerInteropCases("tunnel tls - grpc interop", {
    target: () => stack.grpcTarget(),
    backend: () => stack.backend,
  });
  after(async () => {
    suite.close();
    await stack?.close();
    if (certificate !== undefined) rmSync(certificate.dir, { recursive: true, force: true });
  });

  test("tunnel tls - the agent dials the server's main port over TLS and registers", TIMEOUT, async () => {
    assert.match(stack.agentServerUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
    const agent = stack.agentInfos().find((info) => info.client_id === stack.agents[0]!.clientId);
    assert.ok(agent?.healthy && agent.standby > 0, JSON.stringify(stack.agentInfos()));
    // The same agent without the CA: the server's certificate is checked, so it never registers.
    const untrusting = createTunnelAgent({
      serverUrl: stack.agentServerUrl,
      token: stack.rules.token,
      group: stack.rules.group,
      clientId: "agent-without-ca",
      rulesPath: stack.rules.agentRulesPath,
    });
    untrusting.start().catch(() => undefined);
    try {
      await waitFor(() => /certificate/i.test(untrusting.status().lastError ?? ""), {
        timeoutMs: 5_000,
        describe: () => `the agent without the CA reports ${JSON.stringify(untrusting.status())}`,
      });
      assert.equal(stack.agentInfos().filter((info) => info.client_id === "agent-without-ca").length, 0);
    } finally {
      await untrusting.close();
    }
  });

  test("tunnel tls - both entries present the server's certificate and pick h2 by ALPN", TIMEOUT, async () => {
    const expected = new X509Certificate(certificate.cert).fingerprint256;
    const grpcPort = portOf(stack.grpcEntry);
    const httpPort = Number(new URL(stack.httpEntryUrl).port);
    for (const [port, alpn, picked] of [
      [grpcPort, ["h2"], "h2"],
      [httpPort, ["h2", "http/1.1"], "h2"],
      [httpPort, ["http/1.1"], "http/1.1"],
    ] as const) {
      const shown = await handshake(port, certificate.cert, [...alpn]);
      assert.equal(shown.authorized, true, `port ${port}: the chain did not verify against the server's certificate`);
      assert.equal(shown.fingerprint, expected, `port ${port}: another certificate`);
      assert.equal(shown.alpn, picked, `port ${port} offered ${alpn.join(",")}`);
    }
  });

  test(
    "tunnel tls - unary, server-streaming and bidi calls over the TLS gRPC entry keep metadata and trailers",
    TIMEOUT,
    async () => {
      const clients: InteropClients = createInteropClients(stack.grpcTarget());
      const echo = { [ECHO_INITIAL_HEADER]: "initial over tls", [ECHO_TRAILING_HEADER]: Buffer.from([0xab, 0xcd]) };
      const assertEchoed = (initial: grpc.Metadata | null, status: grpc.StatusObject, what: string) => {
        assert.equal(status.code, grpc.status.OK, `${what}: ${status.details}`);
        assert.deepEqual(initial?.get(ECHO_INITIAL_HEADER), ["initial over tls"], `${what}: initial metadata`);
        assert.deepEqual(status.metadata.get(ECHO_TRAILING_HEADER), [Buffer.from([0xab, 0xcd])], `${what}: trailers`);
      };
      try {
        const unaryIds = callMetadata(clients, echo);
        const unary = await unaryCall<{ payload: { body: Buffer } }>(
          clients.test,
          "UnaryCall",
          { responseSize: 1000 },
          unaryIds.metadata,
        );
        assertEchoed(unary.initialMetadata, unary.status, "UnaryCall");
        assert.equal(unary.response?.payload.body.length, 1000);

        const streaming = serverStreamCall<{ payload: { body: Buffer } }>(
          clients.test,
          "StreamingOutputCall",
          { responseParameters: [{ size: 10 }, { size: 70_000 }, { size: 3 }] },
          callMetadata(clients, echo).metadata,
        );
        const streamed = await streaming.reader.drain();
        assertEchoed(streaming.reader.initialMetadata, streamed.status, "StreamingOutputCall");
        assert.deepEqual(
          streamed.messages.map((message) => message.payload.body.length),
          [10, 70_000, 3],
        );

        const bidi = duplexCall<unknown, { payload: { body: Buffer } }>(
          clients.test,
          "FullDuplexCall",
          callMetadata(clients, echo).metadata,
        );
        for (const size of [5, 50_000]) {
          bidi.call.write({ responseParameters: [{ size }] });
          assert.equal((await bidi.reader.next())?.payload.body.length, size, "FullDuplexCall response");
        }
        bidi.call.end();
        const rest = await bidi.reader.drain();
        assert.equal(rest.messages.length, 0);
        assertEchoed(bidi.reader.initialMetadata, rest.status, "FullDuplexCall");

        // The backend learns that the client came over TLS.
        const record = stack.backend.call(unaryIds.callId);
        assert.ok(record !== undefined, "the unary call never reached the backend");
        assert.deepEqual(record.metadata.get("x-forwarded-proto"), ["https"]);
        assert.match(String(record.metadata.get("forwarded")[0]), /proto=https/);
      } finally {
        clients.close();
      }
    },
  );

  test(
    "tunnel tls - a cleartext gRPC client to the TLS entry fails with UNAVAILABLE, not a hang",
    TIMEOUT,
    async () => {
      const clients = createInteropClients({ name: "cleartext to a TLS entry", address: stack.grpcEntry });
      try {
        const started = Date.now();
        const outcome = await unaryCall(clients.test, "EmptyCall", {}, callMetadata(clients).metadata, {
          deadline: new Date(Date.now() + 15_000),
        });
        assert.equal(outcome.status.code, grpc.status.UNAVAILABLE, `${grpc.status[outcome.status.code]}`);
        assert.ok(Date.now() - started < 10_000, `UNAVAILABLE only after ${Date.now() - started} ms`);
      } finally {
        clients.close();
      }
    },
  );

  test("tunnel tls - the HTTP entry takes gRPC over TLS (ALPN h2) too", TIMEOUT, async () => {
    const clients = createInteropClients({
      ...stack.grpcTarget(),
      name: "HTTP entry over TLS",
      address: new URL(stack.httpEntryUrl).host,
    });
    try {
      const outcome = await unaryCall(clients.test, "UnaryCall", { responseSize: 10 }, callMetadata(clients).metadata);
      assert.equal(outcome.status.code, grpc.status.OK, outcome.status.details);
    } finally {
      clients.close();
    }
  });

  test("tunnel tls - an HTTPS/1.1 request to the gRPC entry gets 505, not a hang", {
    ...TIMEOUT,
    skip: curlSkip,
  }, async () => {
    const result = await curl(
      `https://${stack.grpcEntry}/streamgate.interop.v1.TestService/EmptyCall`,
      certificate.certPath,
      ["--http1.1"],
    );
    assert.equal(result.status, 505, result.body);
    assert.equal(result.httpVersion, "1.1");
  });

  for (const [flag, httpVersion] of [
    ["--http2", "2"],
    ["--http1.1", "1.1"],
  ] as const) {
    test(`tunnel tls - curl ${flag} --cacert reaches the HTTP backend through the HTTPS entry`, {
      ...TIMEOUT,
      skip: curlSkip,
    }, async () => {
      const result = await curl(`${stack.httpEntryUrl}/headers`, certificate.certPath, [flag, "-H", "x-custom: kept"]);
      assert.equal(result.status, 200, result.body);
      assert.equal(result.httpVersion, httpVersion, "curl used another HTTP version");
      const headers = JSON.parse(result.body) as Record<string, string>;
      assert.equal(headers["x-custom"], "kept");
      assertForwardedHttps(headers, `curl ${flag}`);
    });
  }

  test("tunnel tls - curl --http2 streams a body through the HTTPS entry and back", {
    ...TIMEOUT,
    skip: curlSkip,
  }, async () => {
    const body = "x".repeat(100_000);
    const result = await curl(`${stack.httpEntryUrl}/echo`, certificate.certPath, [
      "--http2",
      "-H",
      "content-type: text/plain",
      "--data-binary",
      body,
    ]);
    assert.equal(result.status, 200);
    assert.equal(result.httpVersion, "2");
    assert.equal(result.body, body);
  });

  for (const version of ["1.1", "2"] as const) {
    test(`tunnel tls - SSE over HTTPS/${version} streams events one by one`, TIMEOUT, async () => {
      const reader = openSse(`${stack.httpEntryUrl}/events`, certificate.cert, version);
      try {
        const backend = await stack.http!.nextSseClient(5_000);
        assertForwardedHttps(backend.headers, `SSE over HTTPS/${version}`);
        assert.equal(await withTimeout(reader.headers, 5_000, "SSE response headers"), 200);
        for (let id = 1; id <= 3; id += 1) {
          backend.send(id, JSON.stringify({ n: id }));
          await waitFor(() => ids(reader.text()).includes(id), {
            timeoutMs: 5_000,
            describe: () => `event ${id} did not arrive; client has ${JSON.stringify(reader.text())}`,
          });
        }
        assert.deepEqual(ids(reader.text()), [1, 2, 3]);
        backend.end();
        await waitFor(reader.ended, { timeoutMs: 5_000, describe: () => "the SSE response did not end" });
      } finally {
        reader.close();
      }
    });
  }

  test("tunnel tls - a wss:// WebSocket through the HTTPS entry echoes text and binary", TIMEOUT, async () => {
    const socket = await openWebSocket(`${stack.httpEntryUrl.replace("https", "wss")}/ws`, { ca: certificate.cert });
    try {
      const received: { data: Buffer; binary: boolean }[] = [];
      socket.on("message", (data, isBinary) => received.push({ data: data as Buffer, binary: isBinary }));
      const binary = Buffer.from(Array.from({ length: 70_000 }, (_, index) => index % 256));
      socket.send("hello over tls");
      socket.send(binary);
      await waitFor(() => received.length >= 2, { timeoutMs: 5_000, describe: () => `${received.length} of 2 echoes` });
      assert.deepEqual(received[0], { data: Buffer.from("hello over tls"), binary: false });
      assert.equal(received[1]!.binary, true);
      assert.ok(received[1]!.data.equals(binary));
      socket.close(1000, "done");
      const code = await withTimeout(
        new Promise<number>((resolve) => socket.once("close", (closeCode) => resolve(closeCode))),
        5_000,
        "WebSocket close",
      );
      assert.equal(code, 1000);
      await waitFor(() => stack.http!.webSockets() === 0, {
        timeoutMs: 5_000,
        describe: () => "the backend's WebSocket stayed open",
      });
    } finally {
      socket.terminate();
    }
  });
});
