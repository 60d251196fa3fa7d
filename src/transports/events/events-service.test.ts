// Unit tests of the Events service and its output queue over an in-test fake hub (the real hub is covered by test/integration).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import type { StoredMessage } from "../../broker/types.js";
import type { Engine } from "../../engines/engine.js";
import { Code, errors, StreamgateError } from "../../errors/index.js";
import {
  type ConnectRequest,
  ConnectRequestSchema,
  type ConnectResponse,
  type Event as StreamEvent,
  SubscribeRequestSchema,
} from "../../gen/streamgate/v1/events_pb.js";
import { type FeedEvent, type FeedSubscribeOptions, OutputQueue, type StreamHub } from "../../streams/index.js";
import { createEventsService } from "./events-service.js";

const topic = "projects/proj/topics/orders";

function stored(offset: number): StoredMessage {
  return {
    offset,
    messageId: `id-${offset}`,
    publishTimeMs: 1_700_000_000_000 + offset,
    data: Buffer.from(`m${offset}`),
    attributes: {},
    orderingKey: "",
  };
}

/** A hub that replays `events` then throws `failure` (if any); records the options of each subscribe. */
function fakeHub(events: FeedEvent[], failure?: unknown): StreamHub & { calls: FeedSubscribeOptions[] } {
  const calls: FeedSubscribeOptions[] = [];
  return {
    calls,
    async subscribe(options) {
      calls.push(options);
      let lastOffset = 0;
      const iterator = (async function* () {
        for (const event of events) {
          if (event.kind === "message") lastOffset = event.message.offset;
          yield event;
        }
        if (failure !== undefined) throw failure;
        await new Promise((resolve) => options.signal.addEventListener("abort", resolve, { once: true }));
      })();
      return {
        get lastOffset() {
          return lastOffset;
        },
        caughtUp: Promise.resolve(),
        [Symbol.asyncIterator]: () => iterator,
        nextBatch: async () => {
          const result = await iterator.next();
          return result.done === true ? null : [result.value];
        },
      };
    },
    stats: () => ({ topics: 0, subscribers: 0, droppedSlowConsumers: 0 }),
    close: async () => {},
  };
}

function context(signal = new AbortController().signal): HandlerContext {
  return { signal } as HandlerContext;
}

function service(hub: StreamHub) {
  return createEventsService({ engine: {} as Engine, hub, maxMessageBytes: 1_000_000, heartbeatMs: 60_000 });
}

describe("events service", () => {
  test("events service - Subscribe maps position and events, and a slow consumer error says where to resume", async () => {
    const slow = errors.resourceExhausted("SLOW_CONSUMER", "the client fell behind");
    const hub = fakeHub(
      [
        { kind: "gap", fromOffset: 1, firstAvailable: 3, lost: 2 },
        { kind: "message", message: stored(3) },
        { kind: "heartbeat" },
      ],
      slow,
    );
    const request = create(SubscribeRequestSchema, {
      topic,
      position: { kind: { case: "afterOffset", value: 0n } },
      filter: 'attributes.k = "v"',
    });
    const kinds: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const event of service(hub).subscribe(request, context()))
          kinds.push(String((event as StreamEvent).kind.case));
      })(),
      (error: unknown) =>
        error instanceof StreamgateError &&
        error.code === Code.RESOURCE_EXHAUSTED &&
        /after_offset/.test(error.message) &&
        error.details.lastOffset === "3",
    );
    assert.deepEqual(kinds, ["gap", "message", "heartbeat"]);
    assert.deepEqual(hub.calls[0]?.from, { kind: "after", offset: 0 });
    assert.equal(hub.calls[0]?.filter, 'attributes.k = "v"');
  });

  test("events service - Subscribe rejects a bad filter and a negative offset before touching the hub", async () => {
    const hub = fakeHub([]);
    const run = async (request: Parameters<ReturnType<typeof service>["subscribe"]>[0]) => {
      for await (const _ of service(hub).subscribe(request, context())) break;
    };
    await assert.rejects(run(create(SubscribeRequestSchema, { topic, filter: "attributes.k =" })), /filter/);
    await assert.rejects(
      run(create(SubscribeRequestSchema, { topic, position: { kind: { case: "afterOffset", value: -1n } } })),
      /after_offset/,
    );
    assert.equal(hub.calls.length, 0);
  });

  test("events service - Connect answers subscribed before the subscription's events and ends on half-close", async () => {
    const hub = fakeHub([{ kind: "message", message: stored(1) }, { kind: "heartbeat" }]);
    async function* requests(): AsyncGenerator<ConnectRequest> {
      yield create(ConnectRequestSchema, { kind: { case: "subscribe", value: { id: "a", topic } } });
      await new Promise((resolve) => setTimeout(resolve, 20));
      yield create(ConnectRequestSchema, { kind: { case: "unsubscribe", value: { id: "a" } } });
    }
    const seen: string[] = [];
    for await (const init of service(hub).connect(requests(), context())) {
      const response = init as ConnectResponse;
      seen.push(
        response.kind.case === "event" ? `event:${response.kind.value.event?.kind.case}` : String(response.kind.case),
      );
    }
    assert.deepEqual(
      seen,
      ["subscribed", "event:message", "unsubscribed"],
      "hub heartbeats are folded into the stream's",
    );
  });
});

describe("output queue", () => {
  test("output queue - push waits while full; pushNow past maxForced fails the stream", async () => {
    const queue = new OutputQueue<number>({ maxQueued: 2, maxForced: 3 });
    await queue.push(1);
    await queue.push(2);
    let third = false;
    const pending = queue.push(3).then(() => {
      third = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(third, false, "the producer waits for room");
    const reader = queue.drain();
    assert.deepEqual(await reader.next(), { value: 1, done: false });
    await pending;
    assert.equal(third, true);
    queue.pushNow(4);
    queue.pushNow(5);
    assert.equal(queue.closed, true, "the fourth queued item exceeded maxForced");
    const rest: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const item of reader) rest.push(item);
      })(),
      /not reading/,
    );
    assert.deepEqual(rest, [2, 3, 4]);
  });
});
