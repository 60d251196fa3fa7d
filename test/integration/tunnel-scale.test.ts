// Tunnel under load, through the gRPC entry and one real agent: 1,000 concurrent bidi streams; a stalled
// stream (client stops reading) that stalls nothing else and pins no unbounded buffer; 8 MiB messages.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import type { EchoMessage } from "../harness/interop-backend.js";
import { createInteropClients, type InteropClients } from "../harness/interop-cases.js";
import { startTunnelStack, type TunnelStack } from "../harness/interop-tunnel.js";
import { delay, waitFor, withTimeout } from "../harness/wait-for.js";

type UnaryFn = (
  request: EchoMessage,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: EchoMessage) => void,
) => grpc.ClientUnaryCall;
type StreamFn = (
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
) => grpc.ClientDuplexStream<EchoMessage, EchoMessage>;
type FloodFn = (
  request: { count: number; size: number },
  options: grpc.CallOptions,
) => grpc.ClientReadableStream<EchoMessage>;

const echoMessage = (sequence: number, size = 32): EchoMessage => ({
  body: Buffer.alloc(size, sequence % 251),
  sequence,
  delayMs: 0,
  failCode: 0,
});

function unary(clients: InteropClients, request: EchoMessage, timeoutMs = 20_000): Promise<EchoMessage> {
  return new Promise((resolve, reject) => {
    (clients.echo as unknown as { Unary: UnaryFn }).Unary.call(
      clients.echo,
      request,
      new grpc.Metadata(),
      { deadline: Date.now() + timeoutMs },
      (error, response) => (error === null ? resolve(response!) : reject(error)),
    );
  });
}

/** Streams hold here after their first echo, still open, until the test releases them all. */
interface Barrier {
  /** Called by each stream once; `reached` resolves at the `parties`-th call. */
  arrive(): void;
  reached: Promise<void>;
  release(): void;
  released: Promise<void>;
}

function createBarrier(parties: number): Barrier {
  let arrived = 0;
  let onReached!: () => void;
  let onReleased!: () => void;
  const reached = new Promise<void>((resolve) => {
    onReached = resolve;
  });
  const released = new Promise<void>((resolve) => {
    onReleased = resolve;
  });
  return {
    arrive() {
      arrived += 1;
      if (arrived === parties) onReached();
    },
    reached,
    release: () => onReleased(),
    released,
  };
}

/**
 * One bidi stream: writes `count` messages, expects each echoed in order, half-closes, expects OK. With a
 * `barrier`, it writes only its first message, arrives at the barrier once that is echoed, and writes the
 * others after the release: until then no stream can finish, so every stream is open at once.
 */
function echoStream(clients: InteropClients, first: number, count: number, barrier?: Barrier): Promise<void> {
  return new Promise((resolve, reject) => {
    const call = (clients.echo as unknown as { Stream: StreamFn }).Stream.call(clients.echo, new grpc.Metadata(), {
      deadline: Date.now() + 45_000,
    });
    const writeRest = () => {
      for (let index = 1; index < count; index += 1) call.write(echoMessage(first + index));
    };
    let expected = first;
    call.on("data", (message: EchoMessage) => {
      if (Number(message.sequence) !== expected || !message.body.equals(echoMessage(expected).body)) {
        call.cancel();
        reject(new Error(`stream ${first}: got sequence ${message.sequence}, expected ${expected}`));
        return;
      }
      expected += 1;
      if (barrier !== undefined && expected === first + 1) {
        barrier.arrive();
        void barrier.released.then(writeRest);
      }
      if (expected === first + count) call.end();
    });
    call.on("error", () => {});
    call.on("status", (status: grpc.StatusObject) => {
      if (status.code !== grpc.status.OK)
        reject(new Error(`stream ${first}: ${grpc.status[status.code]} ${status.details}`));
      else if (expected !== first + count) reject(new Error(`stream ${first}: ended after ${expected - first} echoes`));
      else resolve();
    });
    call.write(echoMessage(first));
    if (barrier === undefined) writeRest();
  });
}

describe("tunnel scale", () => {
  let stack: TunnelStack;
  const clients: InteropClients[] = [];

  before(async () => {
    stack = await startTunnelStack();
  });
  after(async () => {
    for (const client of clients) client.close();
    await stack?.close();
  });

  test("tunnel scale - 1,000 concurrent bidi streams over one agent all complete with their own echoes", async () => {
    // Four client connections (the entry allows 1,000 streams per connection); one agent carries all.
    const channels = Array.from({ length: 4 }, () => createInteropClients(stack.grpcTarget()));
    clients.push(...channels);
    const { started: startedBefore, active: activeBefore } = stack.backend.stats();
    const barrier = createBarrier(1_000);
    const streams = Array.from({ length: 1_000 }, (_, index) =>
      echoStream(channels[index % channels.length]!, index * 10, 3, barrier),
    );
    const finished = Promise.all(streams);
    // A stream that fails before its first echo never arrives: the race reports its error instead of a hang.
    await withTimeout(Promise.race([barrier.reached, finished]), 45_000, "the first echo on all 1,000 streams");
    // Every stream has had an echo and none has half-closed: all 1,000 are open at the backend at once
    // (concurrency, not a queue).
    assert.equal(stack.backend.stats().active - activeBefore, 1_000, "streams open at the backend at once");
    barrier.release();
    await withTimeout(finished, 45_000, "1,000 bidi streams to complete");
    assert.equal(stack.backend.stats().started - startedBefore, 1_000);
    await waitFor(() => stack.tunnelStats().inFlight === 0, {
      timeoutMs: 5_000,
      describe: () => JSON.stringify(stack.tunnelStats()),
    });
  });

  test("tunnel scale - a stream whose client stops reading stalls only itself and buffers a bounded amount", async () => {
    const stalledClients = createInteropClients(stack.grpcTarget());
    const otherClients = createInteropClients(stack.grpcTarget());
    clients.push(stalledClients, otherClients);
    const MESSAGE = 64 * 1024;
    const COUNT = 2_048; // 128 MiB if nothing pushed back
    const rssBefore = process.memoryUsage().rss;
    const sentBefore = stack.backend.stats().floodMessagesSent;
    const flood = (stalledClients.echo as unknown as { Flood: FloodFn }).Flood.call(
      stalledClients.echo,
      { count: COUNT, size: MESSAGE },
      { deadline: Date.now() + 60_000 },
    );
    flood.on("error", () => {});
    // Read one message, then stop reading: grpc-js stops reading from the HTTP/2 stream while paused.
    await new Promise<void>((resolve) => flood.once("data", () => resolve()));
    flood.pause();

    // The backend must come to a stop: its writes block once every hop's window and buffer is full.
    let last = -1;
    let stableSince = Date.now();
    await waitFor(
      () => {
        const sent = stack.backend.stats().floodMessagesSent - sentBefore;
        if (sent !== last) {
          last = sent;
          stableSince = Date.now();
        }
        return Date.now() - stableSince > 1_000;
      },
      { timeoutMs: 20_000, describe: () => `the backend kept sending (${last} of ${COUNT} messages)` },
    );
    const bufferedBytes = last * MESSAGE;
    assert.ok(last < COUNT, "the whole flood went out although the client read one message");
    assert.ok(
      bufferedBytes <= 32 * 1024 * 1024,
      `${last} messages (${Math.round(bufferedBytes / 2 ** 20)} MiB) left the backend for a client that stopped reading`,
    );

    // While it is stalled, other calls and streams on the same agent (and another connection) go through.
    const started = Date.now();
    const unaries = Array.from({ length: 200 }, (_, index) => unary(otherClients, echoMessage(index)));
    const streams = Array.from({ length: 50 }, (_, index) => echoStream(otherClients, 100_000 + index * 10, 5));
    const answers = await withTimeout(Promise.all(unaries), 20_000, "200 unary calls beside the stalled stream");
    await withTimeout(Promise.all(streams), 20_000, "50 bidi streams beside the stalled stream");
    const elapsedMs = Date.now() - started;
    for (const [index, answer] of answers.entries()) assert.equal(Number(answer.sequence), index);
    assert.ok(elapsedMs < 15_000, `the other calls took ${elapsedMs} ms beside the stalled stream`);
    // Same stalled stream on the same connection as new calls: those pass as well (no connection-level block).
    await withTimeout(unary(stalledClients, echoMessage(7)), 10_000, "a call on the stalled stream's connection");

    // The stall still holds (nothing was drained behind the client's back) and memory stayed bounded.
    assert.ok(stack.backend.stats().floodMessagesSent - sentBefore <= last + 4, "the stalled stream advanced unread");
    const growth = process.memoryUsage().rss - rssBefore;
    assert.ok(growth < 96 * 1024 * 1024, `RSS grew by ${Math.round(growth / 2 ** 20)} MiB during the stall`);

    // Reading again resumes the stream; cancelling it frees the tunnel stream.
    flood.resume();
    await waitFor(() => stack.backend.stats().floodMessagesSent - sentBefore > last + 16, {
      timeoutMs: 10_000,
      describe: () => "the flood did not resume once the client read again",
    });
    flood.cancel();
    await waitFor(() => stack.tunnelStats().inFlight === 0 && stack.backend.stats().active === 0, {
      timeoutMs: 10_000,
      describe: () => `tunnel ${JSON.stringify(stack.tunnelStats())}, backend ${JSON.stringify(stack.backend.stats())}`,
    });
    await delay(0);
  });
});

describe("tunnel scale large messages", () => {
  const MAX = 16 * 1024 * 1024;
  let stack: TunnelStack;
  let clients: InteropClients;
  before(async () => {
    stack = await startTunnelStack({ maxMessageBytes: MAX });
    clients = createInteropClients(stack.grpcTarget());
  });
  after(async () => {
    clients?.close();
    await stack?.close();
  });

  test("tunnel scale - an 8 MiB message passes both ways when the maximum is raised", async () => {
    const body = Buffer.alloc(8 * 1024 * 1024);
    for (let index = 0; index < body.length; index += 4096) body[index] = index % 251;
    const answer = await unary(clients, { body, sequence: 1, delayMs: 0, failCode: 0 }, 30_000);
    assert.equal(answer.body.length, body.length);
    assert.ok(answer.body.equals(body), "the echoed 8 MiB body differs");

    const call = (clients.echo as unknown as { Stream: StreamFn }).Stream.call(clients.echo, new grpc.Metadata(), {
      deadline: Date.now() + 30_000,
    });
    const echoed: Buffer[] = [];
    call.on("data", (message: EchoMessage) => echoed.push(message.body));
    call.on("error", () => {});
    const status = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
    call.write({ body, sequence: 2, delayMs: 0, failCode: 0 });
    call.write({ body, sequence: 3, delayMs: 0, failCode: 0 });
    call.end();
    assert.equal((await withTimeout(status, 30_000, "8 MiB bidi")).code, grpc.status.OK);
    assert.equal(echoed.length, 2);
    for (const received of echoed) assert.ok(received.equals(body));
  });

  test("tunnel scale - a message above the raised maximum fails with RESOURCE_EXHAUSTED", async () => {
    const tooBig = Buffer.alloc(MAX + 1024);
    await assert.rejects(unary(clients, { body: tooBig, sequence: 1, delayMs: 0, failCode: 0 }, 30_000), (error) => {
      assert.equal((error as grpc.ServiceError).code, grpc.status.RESOURCE_EXHAUSTED);
      return true;
    });
    // Nothing else is disturbed.
    const answer = await unary(clients, echoMessage(5));
    assert.equal(Number(answer.sequence), 5);
  });
});
