// WebSocket /v1/ws against a real server with the `ws` client: subscribe, publish, resume, gaps, bad input.
import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import type { EmbeddedEngine } from "../../src/engines/embedded/index.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";
import { decode, encode, WsClient } from "./streams-clients.js";

describe("streams - WebSocket", () => {
  let server: TestServer;
  let engine: EmbeddedEngine;
  before(async () => {
    server = await startTestServer({ heartbeatMs: 500 });
    engine = server.server.baseEngine as EmbeddedEngine;
  });
  after(async () => {
    await server.close();
  });

  const newTopic = async (retentionBytes: number | null = null) => {
    const name = `projects/p/topics/${uniqueName("ws")}`;
    await engine.createTopic({ name, retentionBytes });
    return name;
  };

  it("streams ws - publish over the socket, receive on two subscriptions, ping/pong, unsubscribe", async () => {
    const first = await newTopic();
    const second = await newTopic();
    const client = await WsClient.open(server.url);
    client.send({ type: "subscribe", id: "a", topic: first, from: "latest" });
    client.send({ type: "subscribe", id: "b", topic: second, from: "earliest", filter: 'attributes.keep = "1"' });
    await client.until((c) => c.frames.filter((frame) => frame.type === "subscribed").length === 2);
    client.send({
      type: "publish",
      ref: "r1",
      topic: first,
      messages: [{ data: encode("one"), attributes: { x: "y" } }],
    });
    client.send({
      type: "publish",
      ref: "r2",
      topic: second,
      messages: [{ data: encode("skip") }, { data: encode("keep"), attributes: { keep: "1" }, orderingKey: "k" }],
    });
    await client.until((c) => c.messages("a").length === 1 && c.messages("b").length === 1);
    const published = client.frames.filter((frame) => frame.type === "published");
    assert.deepEqual(
      published.map((frame) => [frame.ref, frame.offsets]),
      [
        ["r1", ["1"]],
        ["r2", ["1", "2"]],
      ],
    );
    assert.equal(decode(client.messages("a")[0]!.data), "one");
    assert.deepEqual(client.messages("b")[0], {
      ...client.messages("b")[0],
      offset: "2",
      attributes: { keep: "1" },
      orderingKey: "k",
    });
    client.send({ type: "ping" });
    await client.until((c) => c.frames.some((frame) => frame.type === "pong"));
    client.send({ type: "unsubscribe", id: "a" });
    await client.until((c) => c.frames.some((frame) => frame.type === "unsubscribed" && frame.id === "a"));
    await engine.publish(first, [{ data: Buffer.from("after"), attributes: {}, orderingKey: "" }]);
    await engine.publish(second, [{ data: Buffer.from("later"), attributes: { keep: "1" }, orderingKey: "" }]);
    await client.until((c) => c.messages("b").length === 2);
    assert.equal(client.messages("a").length, 1, "no delivery after unsubscribe");
    await client.close();
  });

  it("streams ws - subscribe with from = last offset seen resumes exactly once; below retention a gap frame comes first", async () => {
    const topic = await newTopic();
    await engine.publish(
      topic,
      Array.from({ length: 20 }, (_, index) => ({
        data: Buffer.from(`m${index + 1}`),
        attributes: {},
        orderingKey: "",
      })),
    );
    const client = await WsClient.open(server.url);
    client.send({ type: "subscribe", id: "r", topic, from: "15" });
    await client.until((c) => c.messages("r").length === 5);
    assert.deepEqual(
      client.messages("r").map((message) => message.offset),
      ["16", "17", "18", "19", "20"],
    );
    const capped = await newTopic(100);
    await engine.publish(
      capped,
      Array.from({ length: 10 }, (_, index) => ({
        data: Buffer.from(`${index}`.padStart(30, "x")),
        attributes: {},
        orderingKey: "",
      })),
    );
    await engine.runMaintenance();
    const { firstOffset } = await engine.topicStats(capped);
    client.send({ type: "subscribe", id: "g", topic: capped, from: "0" });
    await client.until((c) => c.messages("g").length === 11 - firstOffset);
    const gap = client.frames.find((frame) => frame.type === "gap");
    assert.deepEqual(gap, {
      type: "gap",
      id: "g",
      fromOffset: "1",
      firstAvailable: String(firstOffset),
      lost: firstOffset - 1,
    });
    const gapIndex = client.frames.indexOf(gap!);
    const firstMessage = client.frames.findIndex((frame) => frame.type === "message" && frame.id === "g");
    assert.ok(gapIndex < firstMessage, "gap before the first message");
    await client.close();
  });

  it("streams ws - bad input gets error frames (unknown topic, bad offset, bad filter, malformed JSON); oversized frames close 1009; others unaffected", async () => {
    const topic = await newTopic();
    const bystander = await WsClient.open(server.url);
    bystander.send({ type: "subscribe", id: "s", topic, from: "latest" });
    await bystander.until((c) => c.frames.some((frame) => frame.type === "subscribed"));
    const client = await WsClient.open(server.url);
    client.send({ type: "subscribe", id: "missing", topic: `projects/p/topics/${uniqueName("none")}` });
    client.send({ type: "subscribe", id: "offset", topic, from: "-1" });
    client.send({ type: "subscribe", id: "filter", topic, filter: "attributes.a ==" });
    client.send("{not json");
    client.send({ type: "publish", ref: "bad", topic, messages: [{ data: "***" }] });
    client.send({ type: "nope" });
    await client.until((c) => c.frames.filter((frame) => frame.type === "error").length === 6);
    const errorsById = Object.fromEntries(
      client.frames
        .filter((frame) => frame.type === "error")
        .map((frame) => [frame.id ?? frame.ref ?? "-", frame.status]),
    );
    assert.equal(errorsById.missing, "NOT_FOUND");
    assert.equal(errorsById.offset, "INVALID_ARGUMENT");
    assert.equal(errorsById.filter, "INVALID_ARGUMENT");
    assert.equal(errorsById.bad, "INVALID_ARGUMENT");
    client.send({ type: "ping" });
    await client.until((c) => c.frames.some((frame) => frame.type === "pong"), 5_000);
    client.send("x".repeat(2 * 1024 * 1024));
    const closed = await client.closed();
    assert.equal(closed.code, 1009);
    await engine.publish(topic, [{ data: Buffer.from("fine"), attributes: {}, orderingKey: "" }]);
    await bystander.until((c) => c.messages("s").length === 1);
    const ok = await fetch(`${server.url}/healthz`, { headers: { connection: "close" } });
    assert.equal(ok.status, 200);
    await ok.text();
    await bystander.close();
  });
});

/** docs/protocol.md: a connection that answered no pong for 10 s is terminated. */
const DOCUMENTED_SILENCE_MS = 10_000;

describe("streams - WebSocket dead peers", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ heartbeatMs: 500 });
  });
  after(async () => {
    await server.close();
  });

  it("streams ws - a client that answers no ping is terminated after 10 s of silence; one that answers stays", async () => {
    const url = `${server.url.replace(/^http/, "ws")}/v1/ws`;
    const silent = new WebSocket(url, { autoPong: false });
    const live = new WebSocket(url);
    await Promise.all([once(silent, "open"), once(live, "open")]);
    const openedAt = performance.now();
    const [code] = (await once(silent, "close")) as [number];
    const silentFor = performance.now() - openedAt;
    assert.equal(code, 1006, "a dead peer is terminated, not closed with a handshake");
    // Two missed pings would be 1 s at this interval: the 10 s floor docs/protocol.md states decides.
    assert.ok(silentFor >= DOCUMENTED_SILENCE_MS, `terminated after ${Math.round(silentFor)} ms`);
    assert.ok(silentFor < DOCUMENTED_SILENCE_MS + 5_000, `terminated after ${Math.round(silentFor)} ms`);
    assert.equal(live.readyState, WebSocket.OPEN, "the client that answers pings is kept");
    live.close();
    await once(live, "close");
  });
});
