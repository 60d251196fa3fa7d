// The consumer channel on a real nats-server: pulls by count and bytes, and acks in bulk with one confirmation.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { AckPolicy, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { Msg, NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { startNatsPeer, startNatsServer } from "../../../test/harness/nats-server.js";
import { AckBody, ConsumerChannel, writeAcks } from "./consumer-channel.js";

const { peer: server, missing } = await startNatsPeer(() => startNatsServer());

describe("consumer channel", { skip: missing }, () => {
  let connection: NatsConnection;
  let jsm: JetStreamManager;

  before(async () => {
    connection = await connect({ servers: server!.url });
    jsm = await jetstreamManager(connection);
  });

  after(async () => {
    await connection?.close();
    await server?.stop();
  });

  /** A stream of `count` messages of `bytes` bytes each, with one explicit-ack consumer "c". */
  async function backlog(count: number, bytes: number): Promise<string> {
    const stream = `CC${randomBytes(4).toString("hex")}`;
    await jsm.streams.add({ name: stream, subjects: [`${stream}.m`] });
    await jsm.consumers.add(stream, { durable_name: "c", ack_policy: AckPolicy.Explicit, max_ack_pending: 10_000 });
    const js = jetstream(connection);
    const payload = new Uint8Array(bytes).fill(120);
    await Promise.all(Array.from({ length: count }, () => js.publish(`${stream}.m`, payload)));
    return stream;
  }

  it("consumer channel - acks sent in bulk are all applied once the call resolves (one confirmation for all)", async () => {
    const stream = await backlog(3_000, 64);
    const channel = new ConsumerChannel(connection);
    try {
      for (let round = 1; round <= 3; round++) {
        const deliveries: Msg[] = [];
        const received = await channel.pull(stream, "c", 1_000, null, (delivery) => deliveries.push(delivery));
        assert.equal(received, 1_000);
        assert.equal(await channel.ackAll(deliveries.map((delivery) => delivery.reply!)), true);
        const info = await jsm.consumers.info(stream, "c");
        assert.equal(info.num_ack_pending, 0, `round ${round}: every ack applied when ackAll resolved`);
        assert.equal(info.ack_floor.stream_seq, round * 1_000);
      }
    } finally {
      channel.close();
      await jsm.streams.delete(stream);
    }
  });

  it("consumer channel - acks written as one protocol buffer are applied, in order before a confirmed one", async () => {
    const stream = await backlog(500, 32);
    const channel = new ConsumerChannel(connection);
    const other = await connect({ servers: server!.url });
    try {
      const deliveries: Msg[] = [];
      assert.equal(await channel.pull(stream, "c", 500, null, (delivery) => deliveries.push(delivery)), 500);
      const replies = deliveries.map((delivery) => delivery.reply!);
      const before = connection.stats().outMsgs;
      assert.equal(writeAcks(connection, replies, 499), true, "the client's own connection takes the buffer path");
      assert.equal(connection.stats().outMsgs, before, "no publish() per ack");
      assert.equal(await channel.send(replies[499]!, AckBody.ack), true);
      const info = await jsm.consumers.info(stream, "c");
      assert.equal(info.num_ack_pending, 0);
      assert.equal(info.ack_floor.stream_seq, 500);
      await other.close();
      assert.equal(writeAcks(other, replies, 499), false, "a closed connection goes through publish(), which refuses");
    } finally {
      channel.close();
      await other.close().catch(() => undefined);
      await jsm.streams.delete(stream);
    }
  });

  it("consumer channel - a pull with max_bytes stops at the bytes asked for, whatever the batch", async () => {
    const stream = await backlog(50, 1_000);
    const channel = new ConsumerChannel(connection);
    try {
      const deliveries: Msg[] = [];
      await channel.pull(stream, "c", 50, null, (delivery) => deliveries.push(delivery), 5_500);
      // Each message counts its payload plus subject and headers: five fit in 5,500 bytes, six do not.
      assert.equal(deliveries.length, 5);
      assert.equal(await channel.ackAll(deliveries.map((delivery) => delivery.reply!)), true);
      const rest: Msg[] = [];
      await channel.pull(stream, "c", 50, null, (delivery) => rest.push(delivery));
      assert.equal(rest.length, 45);
    } finally {
      channel.close();
      await jsm.streams.delete(stream);
    }
  });
});
