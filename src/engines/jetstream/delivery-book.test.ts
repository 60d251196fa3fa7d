// The lease book and the ordering lease on a real nats-server: compare-and-set verdicts, counters, lease expiry.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { startNatsPeer, startNatsServer } from "../../../test/harness/nats-server.js";
import { DeliveryBook } from "./delivery-book.js";
import { OrderingLeases } from "./ordering-lease.js";

const { peer: server, missing } = await startNatsPeer(() => startNatsServer());

describe("delivery book", { skip: missing }, () => {
  let connection: NatsConnection;
  let book: DeliveryBook;
  const namespace = `b${randomBytes(3).toString("hex")}`;

  before(async () => {
    connection = await connect({ servers: server!.url });
    book = await DeliveryBook.open(connection, namespace, 1, 60_000);
  });

  after(async () => {
    await connection?.close();
    await server?.stop();
  });

  it("delivery book - an ack of the first delivery is current once; a repeated claim is current until JetStream confirmed it", async () => {
    assert.equal(await book.claim("c-1", 1, 1, "a"), "current");
    assert.equal(await book.claim("c-1", 1, 1, "a"), "current", "a retried ack of the same delivery");
    await book.confirm("c-1", 1, 1);
    assert.equal(await book.claim("c-1", 1, 1, "a"), "stale", "confirmed: any further ack is stale");
    assert.equal(
      (await book.recordDelivery("c-1", 1, 2)).verdict,
      "acked",
      "a redelivery after the ack is not handed out",
    );
  });

  it("delivery book - a redelivery recorded first makes the older delivery's ack and nack stale, and its own current", async () => {
    assert.equal((await book.recordDelivery("c-1", 2, 2)).verdict, "deliver");
    assert.equal(await book.claim("c-1", 2, 1, "a"), "stale");
    assert.equal(await book.claim("c-1", 2, 1, "n"), "stale");
    assert.equal(await book.check("c-1", 2, 1), "stale");
    assert.equal(await book.check("c-1", 2, 2), "current");
    assert.equal(await book.claim("c-1", 2, 2, "a"), "current");
  });

  it("delivery book - an ack claimed before the redelivery is recorded wins: the redelivery is dropped", async () => {
    assert.equal(await book.claim("c-1", 3, 1, "a"), "current");
    assert.equal((await book.recordDelivery("c-1", 3, 2)).verdict, "acked");
    assert.equal(await book.claim("c-1", 3, 2, "a"), "stale", "the dropped redelivery's id is stale too");
  });

  it("delivery book - a nack ends its delivery: an ack of it is stale, the next delivery's is current", async () => {
    assert.equal(await book.claim("c-1", 4, 1, "n"), "current");
    assert.equal(await book.claim("c-1", 4, 1, "a"), "stale");
    assert.equal(await book.check("c-1", 4, 1), "stale");
    assert.equal((await book.recordDelivery("c-1", 4, 2)).verdict, "deliver");
    assert.equal(await book.claim("c-1", 4, 2, "a"), "current");
  });

  it("delivery book - concurrent claims of two deliveries of one message: exactly one is current", async () => {
    const [ack, record] = await Promise.all([book.claim("c-1", 5, 1, "a"), book.recordDelivery("c-1", 5, 2)]);
    const redelivery = record.verdict;
    assert.ok(
      (ack === "current" && redelivery === "acked") || (ack === "stale" && redelivery === "deliver"),
      `ack ${ack}, redelivery ${redelivery}`,
    );
  });

  it("delivery book - deliveries released unseen are counted out of the next delivery's attempt, once each; a client's nack is not", async () => {
    await book.release("c-1", 6, 1);
    await book.release("c-1", 6, 1);
    assert.deepEqual(
      await book.recordDelivery("c-1", 6, 2),
      { verdict: "deliver", uncounted: 1 },
      "released twice, one delivery",
    );
    await book.release("c-1", 6, 2);
    assert.deepEqual(await book.recordDelivery("c-1", 6, 3), { verdict: "deliver", uncounted: 2 });
    assert.equal(await book.claim("c-1", 6, 3, "n"), "current", "a client nacks delivery 3 through another instance");
    await book.release("c-1", 6, 3);
    assert.deepEqual(
      await book.recordDelivery("c-1", 6, 4),
      { verdict: "deliver", uncounted: 2 },
      "the nacked one counts",
    );
    assert.equal(await book.claim("c-1", 6, 3, "a"), "stale", "an ack of a released or older delivery is stale");
    await book.release("c-1", 6, 3);
    assert.deepEqual(
      await book.recordDelivery("c-1", 6, 5),
      { verdict: "deliver", uncounted: 2 },
      "a late release of an old delivery",
    );
  });

  it("delivery book - dead-letter counts add up over concurrent writers and are forgotten with the subscription", async () => {
    await Promise.all(Array.from({ length: 10 }, () => book.countDeadLetter("sub")));
    assert.equal(await book.deadLettered("sub"), 10);
    await book.forget("sub");
    assert.equal(await book.deadLettered("sub"), 0);
  });

  it("ordering lease - one holder at a time; it renews, releases, and a dead holder's lease expires", async () => {
    const a = await OrderingLeases.open(connection, namespace, 1, 3_000, "instance-a");
    const b = await OrderingLeases.open(connection, namespace, 1, 3_000, "instance-b");
    const leaseA = a.lease("sub");
    const leaseB = b.lease("sub");
    assert.equal(await leaseA.acquire(), true);
    assert.equal(await leaseB.acquire(), false, "held by A");
    assert.equal(await leaseA.renew(), true);
    await leaseA.release();
    assert.equal(leaseA.held, false);
    assert.equal(await leaseB.acquire(), true, "free after A released it");
    // B stops renewing (it died): after the lease, A takes over, and B's renew fails.
    const started = Date.now();
    while (!(await leaseA.acquire())) {
      assert.ok(
        Date.now() - started < 8_000,
        "B's lease expired within the lease time (plus the server's expiry tick)",
      );
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    assert.ok(Date.now() - started >= 2_000, `not before the lease ran out (${Date.now() - started} ms)`);
    assert.equal(await leaseB.renew(), false, "B lost it");
    await leaseA.release();
  });
});
