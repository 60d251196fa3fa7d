// Tunnel streams carry more than one request: a clean exchange leaves its Stream call open as a standby
// (reuse_streams), while cancels, errors and streaming calls keep working on and after reused streams.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { createTunnelAgent, type TunnelAgent } from "../../src/tunnel/agent/index.js";
import type { AgentInfo } from "../../src/tunnel/server/index.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import {
  EchoClient,
  type GrpcBackend,
  startGrpcBackend,
  writeEchoTunnelRules,
} from "../harness/tunnel-test-backends.js";
import { waitFor, withTimeout } from "../harness/wait-for.js";

const TOKEN = "reuse-test-token";

type Echo = InstanceType<typeof EchoClient>;

function unary(client: Echo, method: string, request: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    (client as unknown as Record<string, (...args: unknown[]) => grpc.ClientUnaryCall>)[method]!.call(
      client,
      request,
      (error: grpc.ServiceError | null, response: Buffer) => (error ? reject(error) : resolve(response)),
    );
  });
}

function bidiEcho(client: Echo, messages: Buffer[]): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const call = (client as unknown as { Bidi(): grpc.ClientDuplexStream<Buffer, Buffer> }).Bidi();
    const received: Buffer[] = [];
    call.on("data", (message: Buffer) => received.push(message));
    call.on("error", reject);
    call.on("end", () => resolve(received));
    for (const message of messages) call.write(message);
    call.end();
  });
}

describe("tunnel stream reuse", () => {
  let dir: string;
  let backend: GrpcBackend;
  let server: TestServer;
  let agent: TunnelAgent;
  let client: Echo;
  const info = (): AgentInfo => {
    const agents = server.server.tunnel?.agents() ?? [];
    assert.equal(agents.length, 1, "one agent session");
    return agents[0]!;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "streamgate-reuse-test-"));
    backend = await startGrpcBackend("a");
    const rules = writeEchoTunnelRules(dir, TOKEN, backend.address);
    server = await startTestServer({ tunnelRulesPath: rules.serverRules, tunnelHttpPort: 0, tunnelGrpcPort: 0 });
    agent = createTunnelAgent({
      serverUrl: server.url,
      token: TOKEN,
      group: "echo",
      clientId: "reuse-agent",
      rulesPath: rules.agentRules,
    });
    await withTimeout(agent.start(), 10_000, "the agent to register");
    await waitFor(() => (server.server.tunnel?.agents()[0]?.standby ?? 0) > 0, {
      timeoutMs: 10_000,
      describe: () => `standby streams: ${JSON.stringify(server.server.tunnel?.agents())}`,
    });
    client = new EchoClient(
      `127.0.0.1:${server.server.tunnel!.addresses()!.grpc.port}`,
      grpc.credentials.createInsecure(),
    );
  });
  after(async () => {
    client?.close();
    await agent?.close();
    await server?.close();
    await backend?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("tunnel reuse - 200 unary calls one after another open almost no new tunnel streams", async () => {
    assert.equal(info().reuse_streams, true, "the agent offered reuse and the server took it");
    const before = info().streams_attached;
    for (let index = 0; index < 200; index++) {
      const request = Buffer.from(`call-${index}`);
      assert.deepEqual(await unary(client, "Unary", request), request);
    }
    const opened = info().streams_attached - before;
    // Without reuse every call opens one (200); with it the pool's few standbys carry them all.
    assert.ok(opened < 20, `200 sequential calls attached ${opened} new tunnel streams`);
  });

  it("tunnel reuse - 64 calls at a time, 5 rounds, all answered, streams reused", async () => {
    const before = info().streams_attached;
    let afterFirstRound = 0;
    for (let round = 0; round < 5; round++) {
      const calls = Array.from({ length: 64 }, (_, index) => Buffer.from(`r${round}-${index}`));
      const answers = await Promise.all(calls.map((request) => unary(client, "Unary", request)));
      assert.deepEqual(answers, calls);
      if (round === 0) afterFirstRound = info().streams_attached;
    }
    const opened = info().streams_attached - before;
    const openedLater = info().streams_attached - afterFirstRound;
    // Without reuse every call opens one (320). With it the first round opens what 64 at once need; later rounds
    // find those streams back in the pool. (The server used to keep a headroom above every request in flight: a
    // load swinging between none and 64 in flight then asked for streams at each peak and closed them on the way
    // down, about 16 per round.)
    assert.ok(opened < 120, `320 calls, 64 at a time, attached ${opened} new tunnel streams`);
    assert.ok(openedLater <= 8, `rounds 2 to 5 attached ${openedLater} new tunnel streams (${opened} in all)`);
    await waitFor(() => server.server.tunnel!.stats().inFlight === 0 && info().in_flight === 0, {
      timeoutMs: 5_000,
      describe: () => JSON.stringify(server.server.tunnel!.stats()),
    });
  });

  it("tunnel reuse - a peak of calls that were cancelled does not make the server ask for that many standbys", async () => {
    // The peak of requests in flight sizes the pool streams may come back to; streams that did not come back
    // (cancelled calls end theirs) are not asked for again beyond the usual standbys.
    const calls = Array.from({ length: 100 }, () =>
      (client as unknown as Record<string, (...args: unknown[]) => grpc.ClientUnaryCall>).Sleep!.call(
        client,
        Buffer.alloc(0),
        () => undefined,
      ),
    );
    await waitFor(() => server.server.tunnel!.stats().inFlight >= 100, {
      timeoutMs: 10_000,
      describe: () => JSON.stringify(server.server.tunnel!.stats()),
    });
    // The standbys asked for while the calls came in attach first (they are not what this test is about).
    let settled = -1;
    await waitFor(
      () => {
        const now = info().streams_attached;
        const still = now === settled;
        settled = now;
        return still;
      },
      { timeoutMs: 10_000, intervalMs: 300, describe: () => JSON.stringify(info()) },
    );
    for (const call of calls) call.cancel();
    await waitFor(() => server.server.tunnel!.stats().inFlight === 0 && info().in_flight === 0, {
      timeoutMs: 10_000,
      describe: () => JSON.stringify(info()),
    });
    const before = info().streams_attached;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const opened = info().streams_attached - before;
    assert.ok(opened <= 16, `after 100 cancelled calls the agent attached ${opened} new standbys within 1 s`);
    assert.deepEqual(await unary(client, "Unary", Buffer.from("after")), Buffer.from("after"));
  });

  it("tunnel reuse - errors, cancels and streaming calls mix with reused streams", async () => {
    for (let round = 0; round < 5; round++) {
      // An error answer (trailers only) is a clean exchange too: the stream is reused for the next call.
      const failed = await unary(client, "Fail", Buffer.alloc(0)).then(
        () => assert.fail("Fail must fail"),
        (error: grpc.ServiceError) => error,
      );
      assert.equal(failed.code, grpc.status.NOT_FOUND);
      assert.equal(failed.details, "no such thing: 100%");
      // A cancelled call reaches the backend as a cancel, and its stream is not reused.
      const cancelled = backend.log.cancelled;
      const arrived = backend.nextSleep();
      const sleeping = (client as unknown as Record<string, (...args: unknown[]) => grpc.ClientUnaryCall>).Sleep!.call(
        client,
        Buffer.alloc(0),
        () => undefined,
      );
      await withTimeout(arrived, 10_000, "the Sleep call to reach the backend");
      sleeping.cancel();
      await waitFor(() => backend.log.cancelled > cancelled, {
        timeoutMs: 10_000,
        describe: () => "the backend to see the cancel",
      });
      const messages = [Buffer.from("one"), Buffer.from("two"), Buffer.from("three")];
      assert.deepEqual(await bidiEcho(client, messages), messages);
      assert.deepEqual(await unary(client, "Unary", Buffer.from(`after-${round}`)), Buffer.from(`after-${round}`));
    }
    await waitFor(() => server.server.tunnel!.stats().inFlight === 0 && info().in_flight === 0, {
      timeoutMs: 5_000,
      describe: () => JSON.stringify(server.server.tunnel!.stats()),
    });
  });
});
