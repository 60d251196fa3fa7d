// Tests of the nats-server harness: start, accept a JetStream client, stop and clean up; optional cluster.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import { describe, test } from "node:test";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { findNatsServerBinary, NATS_SERVER_NOT_FOUND, startNatsCluster, startNatsServer } from "./nats-server.js";

/** Skip reason when the peer is missing locally; with CI=true a missing peer fails instead. */
function missingPeer(): string | false {
  try {
    findNatsServerBinary();
    return false;
  } catch (error) {
    if (process.env.CI === "true") return false;
    const message = error instanceof Error ? error.message : String(error);
    console.warn(`\n*** SKIPPING nats-server harness tests: ${message} ***\n`);
    return message;
  }
}

/** Resolves true if a TCP connection to the port succeeds. */
async function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

const skip = missingPeer();

describe("nats-server harness", { skip }, () => {
  test("nats-server harness - starts JetStream on a loopback port, publishes, and cleans up on stop", async () => {
    const server = await startNatsServer();
    const nc = await connect({ servers: server.url });
    try {
      assert.match(server.url, /^nats:\/\/127\.0\.0\.1:\d+$/);
      assert.ok(existsSync(server.storeDir));
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: "HARNESS", subjects: ["harness.>"] });
      const ack = await jetstream(nc).publish("harness.a", new TextEncoder().encode("hello"));
      assert.equal(ack.seq, 1);
    } finally {
      await nc.close();
      await server.stop();
    }
    assert.equal(existsSync(server.storeDir), false);
    assert.equal(await canConnect(server.port), false);
    await server.stop(); // idempotent
  });

  test("nats-server harness - a missing binary gives the install hint", async () => {
    await assert.rejects(startNatsServer({ binary: "/nonexistent/nats-server" }), { message: NATS_SERVER_NOT_FOUND });
  });

  test("nats-server harness - a 3-node cluster replicates a stream", async () => {
    const cluster = await startNatsCluster(3);
    const nc = await connect({ servers: [...cluster.urls] });
    try {
      const jsm = await jetstreamManager(nc);
      const info = await jsm.streams.add({ name: "REPLICATED", subjects: ["rep.>"], num_replicas: 3 });
      assert.equal(info.config.num_replicas, 3);
      const ack = await jetstream(nc).publish("rep.a", new TextEncoder().encode("x"));
      assert.equal(ack.seq, 1);
    } finally {
      await nc.close();
      await cluster.stop();
    }
  });
});
