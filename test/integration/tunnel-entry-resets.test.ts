// A client that cancels thousands of calls on one connection to the gRPC entry keeps that connection: the
// entries set node's streamResetBurst / streamResetRate (ENTRY_STREAM_RESET_LIMIT), above nghttp2's default
// burst of 1,000 and the listener's graceful retirement at 500 that the main port keeps.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { type ClientHttp2Session, connect, constants } from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createTunnelAgent, type TunnelAgent } from "../../src/tunnel/agent/index.js";
import { ENTRY_STREAM_RESET_LIMIT } from "../../src/tunnel/server/tunnel-entries.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { type GrpcBackend, startGrpcBackend, writeEchoTunnelRules } from "../harness/tunnel-test-backends.js";
import { waitFor, withTimeout } from "../harness/wait-for.js";

const TOKEN = "entry-resets-token";
/** Above nghttp2's default burst (1,000) and twice the listener's default retirement point (500). */
const RESETS = 2_000;

/** One gRPC message frame (uncompressed). */
function grpcFrame(payload: Buffer): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(payload.length, 1);
  return Buffer.concat([prefix, payload]);
}

const callHeaders = {
  ":method": "POST",
  ":path": "/test.Echo/Unary",
  "content-type": "application/grpc",
  te: "trailers",
};

/** A unary Echo call on `session`; resolves with its grpc-status and the echoed payload. */
function unaryCall(session: ClientHttp2Session, payload: Buffer): Promise<{ status: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const stream = session.request(callHeaders);
    const chunks: Buffer[] = [];
    let status = "";
    stream.on("response", (headers) => {
      if (headers["grpc-status"] !== undefined) status = String(headers["grpc-status"]);
    });
    stream.on("trailers", (trailers) => {
      status = String(trailers["grpc-status"] ?? "");
    });
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", reject);
    stream.on("close", () => resolve({ status, body: Buffer.concat(chunks).subarray(5) }));
    stream.end(grpcFrame(payload));
  });
}

describe("tunnel entry resets", () => {
  let dir: string;
  let backend: GrpcBackend;
  let server: TestServer;
  let agent: TunnelAgent;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "streamgate-entry-resets-"));
    backend = await startGrpcBackend("a");
    const rules = writeEchoTunnelRules(dir, TOKEN, backend.address);
    server = await startTestServer({ tunnelRulesPath: rules.serverRules, tunnelHttpPort: 0, tunnelGrpcPort: 0 });
    agent = createTunnelAgent({
      serverUrl: server.url,
      token: TOKEN,
      group: "echo",
      clientId: "resets-agent",
      rulesPath: rules.agentRules,
    });
    await withTimeout(agent.start(), 10_000, "the agent to register");
  });
  after(async () => {
    await agent?.close();
    await server?.close();
    await backend?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`tunnel entry - ${RESETS} cancelled calls on one connection, then calls on the same connection are served`, async () => {
    assert.ok(ENTRY_STREAM_RESET_LIMIT.burst / 2 > RESETS, "the test stays below the entry's retirement point");
    const session = connect(`http://127.0.0.1:${server.server.tunnel!.addresses()!.grpc.port}`);
    let goaway: number | undefined;
    session.on("goaway", (code: number) => {
      goaway = code;
    });
    session.on("error", () => undefined);
    try {
      const first = await unaryCall(session, Buffer.from("before"));
      assert.deepEqual(first, { status: "0", body: Buffer.from("before") });
      // Cancelled in batches: each call sends its headers and message, then RST_STREAM CANCEL at once.
      for (let sent = 0; sent < RESETS; sent += 100) {
        const closed = Array.from({ length: 100 }, () => {
          const stream = session.request(callHeaders);
          stream.on("error", () => undefined);
          stream.write(grpcFrame(Buffer.from("cancel me")));
          stream.close(constants.NGHTTP2_CANCEL);
          return new Promise((resolve) => stream.once("close", resolve));
        });
        await Promise.all(closed);
      }
      const later = await Promise.all(
        Array.from({ length: 20 }, (_, index) => unaryCall(session, Buffer.from(`after-${index}`))),
      );
      assert.deepEqual(
        later,
        later.map((_, index) => ({ status: "0", body: Buffer.from(`after-${index}`) })),
      );
      assert.equal(goaway, undefined, "the entry kept the connection (no GOAWAY)");
      assert.equal(session.closed || session.destroyed, false);
      await waitFor(() => server.server.tunnel!.stats().inFlight === 0, {
        timeoutMs: 10_000,
        describe: () => JSON.stringify(server.server.tunnel!.stats()),
      });
    } finally {
      session.destroy();
    }
  });
});
