// The JetStream engine refuses to start on a NATS server or account that cannot hold what streamgate accepts.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  NATS_SERVER_NOT_FOUND,
  type NatsServer,
  type NatsServerOptions,
  startNatsServer,
} from "../../../test/harness/nats-server.js";
import { Code, StreamgateError } from "../../errors/index.js";
import { createJetStreamEngine } from "./index.js";

const configDir = mkdtempSync(join(tmpdir(), "streamgate-nats-conf-"));
const servers: NatsServer[] = [];
let missing = "";

/** Starts a nats-server with the given config file text (plus the harness's own flags). */
async function serverWith(config: string, options: NatsServerOptions = {}): Promise<NatsServer | null> {
  if (missing !== "") return null;
  const file = join(configDir, `nats-${servers.length}.conf`);
  writeFileSync(file, config);
  try {
    const server = await startNatsServer({ ...options, args: ["-c", file] });
    servers.push(server);
    return server;
  } catch (error) {
    if (!String(error).includes(NATS_SERVER_NOT_FOUND) || process.env.CI === "true") throw error;
    missing = String(error);
    return null;
  }
}

/** The error createJetStreamEngine fails with (the test fails if it opens). */
async function startFailure(url: string, maxMessageBytes?: number): Promise<StreamgateError> {
  try {
    const engine = await createJetStreamEngine({ natsUrl: url, namespace: "check", maxMessageBytes });
    await engine.close();
  } catch (error) {
    assert.ok(error instanceof StreamgateError, `a StreamgateError, got ${String(error)}`);
    return error;
  }
  assert.fail("the engine started");
}

const accounts = (block: string) =>
  `no_auth_user: app\naccounts { APP { ${block} users = [{user: app, password: pw}] } }\n`;

describe("jetstream server check", () => {
  after(async () => {
    for (const server of servers) await server.stop();
    rmSync(configDir, { recursive: true, force: true });
  });

  it("jetstream server check - max_payload below the configured maximum message size is refused, naming both and the fixes", async (t) => {
    const server = await serverWith("max_payload: 1MB\n");
    if (server === null) return t.skip(`SKIPPED: ${missing}`);
    const error = await startFailure(server.url, 10_000_000);
    assert.equal(error.code, Code.FAILED_PRECONDITION);
    assert.equal(error.reason, "NATS_MAX_PAYLOAD_TOO_SMALL");
    assert.match(error.message, /max_payload 1048576 bytes/);
    assert.match(error.message, /10000000 bytes/);
    assert.match(error.message, /nats-server\.conf/);
    assert.match(error.message, /--max-message-bytes/);
    // At or below the server's limit, the same server is fine.
    const engine = await createJetStreamEngine({ natsUrl: server.url, namespace: "fits", maxMessageBytes: 1_048_576 });
    assert.equal(await engine.ready(), true);
    await engine.destroy();
    await engine.close();
  });

  it("jetstream server check - a raised max_payload carries a 10 MB message", async (t) => {
    const server = await serverWith("max_payload: 12MB\n");
    if (server === null) return t.skip(`SKIPPED: ${missing}`);
    const engine = await createJetStreamEngine({ natsUrl: server.url, namespace: "big", maxMessageBytes: 10_000_000 });
    try {
      const topic = "projects/check/topics/big-messages";
      await engine.createTopic({ name: topic });
      const data = Buffer.alloc(10_000_000 - "size10MB".length, 7);
      const [ref] = await engine.publish(topic, [{ data, attributes: { size: "10MB" }, orderingKey: "" }]);
      const [stored] = await engine.readTopic(topic, ref!.offset, { maxMessages: 1, maxBytes: 20_000_000 });
      assert.equal(stored?.data.length, data.length);
      assert.deepEqual(stored?.attributes, { size: "10MB" });
    } finally {
      await engine.destroy();
      await engine.close();
    }
  });

  it("jetstream server check - a server without JetStream is refused with the fix", async (t) => {
    const server = await serverWith("", { jetstream: false });
    if (server === null) return t.skip(`SKIPPED: ${missing}`);
    const error = await startFailure(server.url);
    assert.equal(error.reason, "NATS_NO_JETSTREAM");
    assert.equal(error.code, Code.FAILED_PRECONDITION);
    assert.match(error.message, /-js/);
  });

  it("jetstream server check - an account without JetStream is refused with the fix", async (t) => {
    const server = await serverWith(accounts(""));
    if (server === null) return t.skip(`SKIPPED: ${missing}`);
    const error = await startFailure(server.url);
    assert.equal(error.reason, "NATS_NO_JETSTREAM");
    assert.match(error.message, /enable jetstream in this account/);
  });

  it("jetstream server check - an account without file storage is refused with the fix", async (t) => {
    const server = await serverWith(accounts("jetstream { max_file: 0, max_mem: 1M },"));
    if (server === null) return t.skip(`SKIPPED: ${missing}`);
    const error = await startFailure(server.url);
    assert.equal(error.reason, "NATS_NO_STORAGE");
    assert.match(error.message, /max_file/);
  });

  it("jetstream server check - a publish past the account's storage is RESOURCE_EXHAUSTED with the fix", async (t) => {
    const server = await serverWith(accounts("jetstream { max_file: 4K, max_mem: 0 },"));
    if (server === null) return t.skip(`SKIPPED: ${missing}`);
    const engine = await createJetStreamEngine({ natsUrl: server.url, namespace: "full" });
    try {
      const topic = "projects/check/topics/full-account";
      await engine.createTopic({ name: topic });
      await assert.rejects(
        engine.publish(topic, [{ data: Buffer.alloc(8_000), attributes: {}, orderingKey: "" }]),
        (error: unknown) =>
          error instanceof StreamgateError &&
          error.code === Code.RESOURCE_EXHAUSTED &&
          error.reason === "NATS_STORAGE_FULL" &&
          /max_file/.test(error.message),
      );
    } finally {
      await engine.close();
    }
  });
});
