// The engine's request paths on a real nats-server: the reply inbox (answers, timeouts, no responders, close), the stream publisher and the lease book's key writes.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { startNatsPeer, startNatsServer } from "../../../test/harness/nats-server.js";
import type { MessageInput } from "../../broker/types.js";
import { KeyWrites } from "./key-writes.js";
import { isNoResponders, ReplyInbox } from "./reply-inbox.js";
import { StreamPublisher } from "./stream-publisher.js";

const { peer: server, missing } = await startNatsPeer(() => startNatsServer());

describe("reply inbox", { skip: missing }, () => {
  let connection: NatsConnection;
  const subject = (name: string) => `ri.${randomBytes(4).toString("hex")}.${name}`;

  before(async () => {
    connection = await connect({ servers: server!.url });
  });

  after(async () => {
    await connection?.close();
    await server?.stop();
  });

  it("reply inbox - each of many concurrent requests gets its own answer", async () => {
    const echo = subject("echo");
    const responder = connection.subscribe(echo, { callback: (_error, message) => void message.respond(message.data) });
    const inbox = new ReplyInbox(connection, 2_000);
    try {
      const answers = await Promise.all(Array.from({ length: 500 }, (_, index) => inbox.request(echo, `m${index}`)));
      assert.deepEqual(
        answers.map((answer) => answer?.string()),
        Array.from({ length: 500 }, (_, index) => `m${index}`),
      );
      assert.equal(inbox.size, 0);
    } finally {
      responder.unsubscribe();
      inbox.close();
    }
  });

  it("reply inbox - a request nobody answers resolves null after the timeout; one nobody listens to gets the 503 status", async () => {
    const silent = subject("silent");
    const listener = connection.subscribe(silent, { callback: () => {} });
    const inbox = new ReplyInbox(connection, 200);
    try {
      const started = Date.now();
      assert.equal(await inbox.request(silent, "x"), null);
      const waited = Date.now() - started;
      assert.ok(waited >= 190 && waited < 2_000, `timed out after ${waited} ms`);
      const status = await inbox.request(subject("nobody"), "x");
      assert.ok(status !== null && isNoResponders(status), "a 503 status message");
    } finally {
      listener.unsubscribe();
      inbox.close();
    }
  });

  it("reply inbox - closing lets answers in flight arrive, and a later request still gets its answer", async () => {
    const slow = subject("slow");
    const responder = connection.subscribe(slow, {
      callback: (_error, message) => {
        setTimeout(() => message.respond("late"), 100);
      },
    });
    const inbox = new ReplyInbox(connection, 2_000);
    try {
      const inFlight = inbox.request(slow, "x");
      inbox.close();
      assert.equal((await inFlight)?.string(), "late");
      assert.equal((await inbox.request(slow, "y"))?.string(), "late", "a request after close is still answered");
      let idle = false;
      inbox.whenIdle(() => {
        idle = true;
      });
      assert.ok(idle, "nothing left in flight");
    } finally {
      responder.unsubscribe();
    }
  });

  it("reply inbox - requests waiting when the connection closes resolve null well before their timeout", async () => {
    const own = await connect({ servers: server!.url });
    const silent = subject("closing");
    const listener = own.subscribe(silent, { callback: () => {} });
    const inbox = new ReplyInbox(own, 5_000);
    const waiting = inbox.request(silent, "x");
    await own.flush();
    listener.unsubscribe();
    const started = Date.now();
    await own.close();
    assert.equal(await waiting, null);
    assert.ok(Date.now() - started < 2_000, `answered after ${Date.now() - started} ms`);
    assert.equal(await inbox.request(silent, "y"), null, "a closed connection takes no request");
  });

  it("stream publisher - resolves sequences in batch order; a subject without a stream is refused with its name", async () => {
    const jsm = await jetstreamManager(connection);
    const name = `RI${randomBytes(4).toString("hex")}`;
    const streamSubject = subject("stream");
    await jsm.streams.add({ name, subjects: [streamSubject] });
    const publisher = new StreamPublisher(connection);
    try {
      const messages: MessageInput[] = Array.from({ length: 50 }, (_, index) => ({
        data: new TextEncoder().encode(`m${index}`),
        attributes: index % 2 === 0 ? { n: String(index) } : ({} as Record<string, string>),
        orderingKey: index % 5 === 0 ? "k" : "",
      }));
      const refs = await publisher.publish(streamSubject, "tag", messages);
      assert.deepEqual(
        refs.map((ref) => ref.offset),
        Array.from({ length: 50 }, (_, index) => index + 1),
      );
      assert.equal(refs[0]!.messageId, "tag-1");
      const stored = await jsm.streams.getMessage(name, { seq: 3 });
      assert.equal(stored?.string(), "m2");
      assert.ok(stored?.header.get("Sg-Attributes"), "attributes travel as a header");
      const missingSubject = subject("no-stream");
      await assert.rejects(publisher.publish(missingSubject, "tag", messages.slice(0, 2)), (error: Error) =>
        error.message.includes(missingSubject),
      );
      assert.deepEqual(await publisher.publish(streamSubject, "tag", []), []);
    } finally {
      publisher.close();
      await jsm.streams.delete(name);
    }
  });

  it("key writes - create only where the key never had a message; put overwrites; the KV client reads both", async () => {
    const bucket = `ri${randomBytes(4).toString("hex")}`;
    const kv = await new Kvm(connection).create(bucket, { history: 1 });
    const writes = new KeyWrites(connection, bucket);
    try {
      assert.equal(await writes.createIfAbsent("c-1.7", "a1"), true);
      assert.equal(await writes.createIfAbsent("c-1.7", "a2"), false, "a second create loses");
      assert.equal((await kv.get("c-1.7"))?.string(), "a1");
      await writes.put("c-1.7", "c1");
      assert.equal((await kv.get("c-1.7"))?.string(), "c1");
      await kv.delete("c-1.7");
      assert.equal(
        await writes.createIfAbsent("c-1.7", "a3"),
        false,
        "a delete marker is a message: the caller reads it",
      );
    } finally {
      await kv.destroy();
    }
  });
});
