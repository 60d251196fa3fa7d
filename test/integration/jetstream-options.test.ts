// `streamgate serve --engine jetstream` with the engine's options on the command line: message size against nats-server's max_payload, namespace, replicas.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { createGrpcJsClients, unary } from "../harness/grpc-js-clients.js";
import { NATS_SERVER_NOT_FOUND, type NatsServer, startNatsServer } from "../harness/nats-server.js";
import { spawnServer } from "../harness/spawn-server.js";
import { peersRequired } from "../harness/start-test-server.js";

let workDir = "";
/** A nats-server as installed: max_payload at its default of 1 MiB. */
let plain: NatsServer | null = null;
let missing: string | false = false;
try {
  workDir = await mkdtemp(join(tmpdir(), "streamgate-js-options-"));
  await writeFile(join(workDir, "default.conf"), "# nats-server's defaults (max_payload 1MB)\n");
  plain = await startNatsServer({ args: ["-c", join(workDir, "default.conf")] });
} catch (error) {
  if (!String(error).includes(NATS_SERVER_NOT_FOUND) || peersRequired()) throw error;
  missing = `SKIPPED: ${String(error)}`;
}

/** The start failure of `serve` with `args` (the test fails if the server starts). */
async function startFailure(args: string[]): Promise<string> {
  try {
    const server = await spawnServer(["--data-dir", workDir, ...args], 30_000);
    await server.kill("SIGTERM");
  } catch (error) {
    return String(error);
  }
  assert.fail(`streamgate started with ${args.join(" ")}`);
}

describe("jetstream options", { skip: missing }, () => {
  before(() => assert.ok(plain));

  after(async () => {
    await plain?.stop();
    if (workDir !== "") await rm(workDir, { recursive: true, force: true });
  });

  test("jetstream options - the default 10 MB message size on a nats-server with the default max_payload is refused at start, naming both fixes", async () => {
    const failure = await startFailure(["--engine", "jetstream", "--nats-url", plain!.url]);
    assert.match(failure, /exited early \(code 1/);
    assert.match(failure, /FAILED_PRECONDITION/);
    assert.match(failure, /max_payload 1048576 bytes/);
    assert.match(failure, /10000000 bytes/);
    assert.match(failure, /max_payload: 10MB/, "names the nats-server.conf setting");
    assert.match(failure, /lower --max-message-bytes to 1048576/, "names the streamgate option");
  });

  test("jetstream options - --max-message-bytes at max_payload starts; a larger publish is RESOURCE_EXHAUSTED, nothing is stored", {
    timeout: 60_000,
  }, async () => {
    const server = await spawnServer([
      "--data-dir",
      workDir,
      "--engine",
      "jetstream",
      "--nats-url",
      plain!.url,
      "--max-message-bytes",
      "1000000",
      "--jetstream-namespace",
      "optionsns",
    ]);
    const clients = createGrpcJsClients(server.hostPort);
    const nats = await connect({ servers: plain!.url });
    try {
      const topic = "projects/options/topics/sized";
      await unary(clients.publisher, "CreateTopic", { name: topic });
      const published = await unary<{ messageIds: string[] }>(clients.publisher, "Publish", {
        topic,
        messages: [{ data: Buffer.alloc(999_000, 1) }],
      });
      assert.equal(published.messageIds.length, 1);
      await assert.rejects(
        unary(clients.publisher, "Publish", { topic, messages: [{ data: Buffer.alloc(1_000_001, 1) }] }),
        (error: { code: number; details: string }) => {
          assert.equal(error.code, 8, "RESOURCE_EXHAUSTED");
          assert.match(error.details, /1000000/);
          return true;
        },
      );
      // --jetstream-namespace names every stream and bucket the engine made.
      const jsm = await jetstreamManager(nats);
      const streams: { name: string; messages: number }[] = [];
      for await (const info of jsm.streams.list()) {
        streams.push({ name: info.config.name, messages: info.state.messages });
      }
      const topicStreams = streams.filter((stream) => stream.name.startsWith("optionsns-t-"));
      assert.deepEqual(
        topicStreams.map((stream) => stream.messages),
        [1],
        "one topic stream, holding the one accepted message",
      );
      assert.ok(streams.some((stream) => stream.name === "KV_optionsns-owners"));
      assert.ok(!streams.some((stream) => stream.name.startsWith("streamgate")), "nothing under the default namespace");
    } finally {
      clients.close();
      await nats.close();
      await server.kill("SIGTERM");
    }
  });

  test("jetstream options - --jetstream-replicas 2 is refused before connecting; 3 on a single nats-server fails at start with NATS's reason", {
    timeout: 60_000,
  }, async () => {
    const even = await startFailure(["--engine", "jetstream", "--nats-url", plain!.url, "--jetstream-replicas", "2"]);
    assert.match(even, /--jetstream-replicas must be 1, 3 or 5/);
    const three = await startFailure([
      "--engine",
      "jetstream",
      "--nats-url",
      plain!.url,
      "--max-message-bytes",
      "1000000",
      "--jetstream-namespace",
      "threereplicas",
      "--jetstream-replicas",
      "3",
    ]);
    assert.match(three, /UNAVAILABLE/);
    assert.match(three, /replicas|cluster|resources/i, "NATS's own reason: a single server cannot hold 3 replicas");
  });
});
