// Soak load: REST and gRPC publishers, StreamingPull subscribers with acks, SSE / WebSocket / gRPC Events
// live streams that disconnect at random and resume from their last offset (checked: no gap, no duplicate).
import { type ClientRequest, request as httpRequest } from "node:http";
import WebSocket from "ws";
import { bidi, createGrpcJsClients, type GrpcJsClients, unary } from "../../test/harness/grpc-js-clients.js";
import { createLiveClients, type grpc, type LiveClients } from "../../test/harness/live-clients.js";

/** Counters every driver adds to. */
export interface LoadCounters {
  published: number;
  delivered: number;
  acked: number;
  reconnects: number;
  /** Unexpected failures (a failed publish, a stream error other than our own disconnects). */
  errors: number;
  /** Live-stream resumes that skipped or repeated an offset. */
  orderViolations: number;
  /** The first few error texts, for the report. */
  errorSamples: string[];
}

export interface LoadOptions {
  url: string;
  hostPort: string;
  topic: string;
  subscription: string;
  /** Total publish rate, messages/s, split over 2 REST and 2 gRPC publishers (batches of 10). */
  rate: number;
  sseClients: number;
  wsClients: number;
  grpcEventClients: number;
  pullClients: number;
  /** Chance per live client per second of a disconnect (half abrupt socket kills, half clean closes). */
  disconnectChance: number;
}

export interface Load {
  counters: LoadCounters;
  /** Stops every driver and closes every client. */
  stop(): Promise<void>;
}

const PAYLOAD = Buffer.alloc(100, 120).toString("base64");

export function startLoad(options: LoadOptions): Load {
  const counters: LoadCounters = {
    published: 0,
    delivered: 0,
    acked: 0,
    reconnects: 0,
    errors: 0,
    orderViolations: 0,
    errorSamples: [],
  };
  const fail = (what: string, error: unknown) => {
    counters.errors++;
    if (counters.errorSamples.length < 20) counters.errorSamples.push(`${what}: ${String(error).slice(0, 200)}`);
  };
  let stopped = false;
  const timers: NodeJS.Timeout[] = [];
  const stoppers: (() => void | Promise<void>)[] = [];
  const every = (ms: number, tick: () => void) => timers.push(setInterval(tick, ms));
  const grpcClients: GrpcJsClients = createGrpcJsClients(options.hostPort);
  stoppers.push(() => grpcClients.close());

  // Publishers: batches of 10 at rate/40 batches per second each (4 publishers).
  const batchEveryMs = Math.max(5, Math.round(1000 / Math.max(0.1, options.rate / 40)));
  const restBody = JSON.stringify({
    messages: Array.from({ length: 10 }, (_, i) => ({ data: PAYLOAD, attributes: { i: String(i) } })),
  });
  for (let p = 0; p < 2; p++) {
    let inFlight = false;
    every(batchEveryMs, () => {
      if (inFlight || stopped) return;
      inFlight = true;
      fetch(`${options.url}/v1/${options.topic}:publish`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: restBody,
      })
        .then(async (response) => {
          await response.arrayBuffer();
          if (response.status === 200) counters.published += 10;
          else fail("REST publish", `HTTP ${response.status}`);
        })
        .catch((error: unknown) => fail("REST publish", error))
        .finally(() => {
          inFlight = false;
        });
    });
  }
  const grpcMessages = Array.from({ length: 10 }, () => ({ data: Buffer.alloc(100, 121) }));
  for (let p = 0; p < 2; p++) {
    let inFlight = false;
    every(batchEveryMs, () => {
      if (inFlight || stopped) return;
      inFlight = true;
      unary(grpcClients.publisher, "Publish", { topic: options.topic, messages: grpcMessages })
        .then(() => {
          counters.published += 10;
        })
        .catch((error: unknown) => fail("gRPC publish", error))
        .finally(() => {
          inFlight = false;
        });
    });
  }

  // StreamingPull: ack everything received; reopened at random like the live streams.
  for (let c = 0; c < options.pullClients; c++) {
    let call: { cancel(): void } | null = null;
    const open = () => {
      if (stopped) return;
      const current = bidi(grpcClients.subscriber, "StreamingPull");
      let cancelled = false;
      call = {
        cancel: () => {
          cancelled = true;
          current.cancel();
        },
      };
      current.on("data", (response: { receivedMessages: { ackId: string }[] }) => {
        counters.delivered += response.receivedMessages.length;
        counters.acked += response.receivedMessages.length;
        current.write({ ackIds: response.receivedMessages.map((m) => m.ackId) });
      });
      // After our own cancel, grpc-js may still report the late data it drops: not a server fault.
      current.on("error", (error: grpc.ServiceError) => {
        if (!cancelled && !stopped) fail("StreamingPull", error);
      });
      current.write({ subscription: options.subscription, streamAckDeadlineSeconds: 30, maxOutstandingMessages: 1000 });
    };
    open();
    every(1000, () => {
      if (stopped || Math.random() >= options.disconnectChance) return;
      counters.reconnects++;
      call?.cancel();
      setTimeout(open, Math.random() * 500);
    });
    stoppers.push(() => call?.cancel());
  }

  /** A live stream of the topic that records the last offset and checks each resume continues from it. */
  const liveClient = (
    name: string,
    connect: (after: number, onOffset: (offset: number) => void, onEnd: () => void) => () => void,
  ) => {
    let last = -1;
    let close: (() => void) | null = null;
    let expectedNext = -1;
    const onOffset = (offset: number) => {
      if (expectedNext !== -1 && offset !== expectedNext) {
        counters.orderViolations++;
        if (counters.errorSamples.length < 20)
          counters.errorSamples.push(`${name}: offset ${offset}, expected ${expectedNext}`);
      }
      expectedNext = offset + 1;
      last = offset;
      counters.delivered++;
    };
    // Events still in flight on a connection we are closing belong to it, not to the next one.
    let generation = 0;
    const open = () => {
      if (stopped) return;
      const mine = ++generation;
      close = connect(
        last,
        (offset) => {
          if (mine === generation) onOffset(offset);
        },
        () => {
          // The server ended the stream (not us): resume.
          if (!stopped && mine === generation) setTimeout(open, 100);
        },
      );
    };
    // The first connection starts at the log's end (latest); every later one resumes after `last`.
    open();
    every(1000, () => {
      if (stopped || Math.random() >= options.disconnectChance) return;
      counters.reconnects++;
      const current = close;
      close = null;
      generation++;
      current?.();
      setTimeout(open, Math.random() * 500);
    });
    stoppers.push(() => close?.());
  };

  const fromOf = (after: number) => (after < 0 ? "latest" : String(after));

  for (let c = 0; c < options.sseClients; c++) {
    liveClient(`SSE ${c}`, (after, onOffset, onEnd) => {
      let ended = false;
      const request: ClientRequest = httpRequest(
        `${options.url}/v1/${options.topic}/events?from=${fromOf(after)}`,
        { headers: { accept: "text/event-stream" } },
        (response) => {
          let buffer = "";
          response.setEncoding("utf8");
          response.on("data", (chunk: string) => {
            buffer += chunk;
            let end = buffer.indexOf("\n\n");
            while (end >= 0) {
              const event = buffer.slice(0, end);
              buffer = buffer.slice(end + 2);
              const id = /^id: (\d+)$/m.exec(event);
              if (id !== null && /^event: message$/m.test(event)) onOffset(Number(id[1]));
              end = buffer.indexOf("\n\n");
            }
          });
          response.on("end", () => {
            if (!ended) onEnd();
          });
          response.on("error", () => undefined);
        },
      );
      request.on("error", (error) => {
        if (!ended && !stopped) fail("SSE", error);
      });
      request.end();
      return () => {
        ended = true;
        // Half the time an abrupt cut (socket destroyed), half a clean abort.
        if (Math.random() < 0.5) request.socket?.destroy();
        request.destroy();
      };
    });
  }

  for (let c = 0; c < options.wsClients; c++) {
    liveClient(`WebSocket ${c}`, (after, onOffset, onEnd) => {
      let ended = false;
      const ws = new WebSocket(`${options.url.replace(/^http/, "ws")}/v1/ws`);
      ws.on("open", () =>
        ws.send(JSON.stringify({ type: "subscribe", id: "s", topic: options.topic, from: fromOf(after) })),
      );
      ws.on("message", (data) => {
        const frame = JSON.parse(String(data)) as { type: string; message?: { offset: string } };
        if (frame.type === "message" && frame.message !== undefined) onOffset(Number(frame.message.offset));
        else if (frame.type === "error" && !stopped) fail("WebSocket", JSON.stringify(frame));
      });
      ws.on("close", () => {
        if (!ended) onEnd();
      });
      ws.on("error", (error) => {
        if (!ended && !stopped) fail("WebSocket", error);
      });
      return () => {
        ended = true;
        if (Math.random() < 0.5) ws.terminate();
        else ws.close(1000);
      };
    });
  }

  const live: LiveClients = createLiveClients(options.hostPort);
  stoppers.push(() => live.close());
  for (let c = 0; c < options.grpcEventClients; c++) {
    liveClient(`Events/Subscribe ${c}`, (after, onOffset, onEnd) => {
      let ended = false;
      const position = after < 0 ? { latest: true } : { afterOffset: String(after) };
      const call = (
        live.events as unknown as Record<string, (r: unknown) => grpc.ClientReadableStream<unknown>>
      ).Subscribe!.call(live.events, { topic: options.topic, position });
      call.on("data", (event: { kind?: string; message?: { offset: string } }) => {
        if (event.kind === "message" && event.message !== undefined) onOffset(Number(event.message.offset));
      });
      call.on("error", (error: grpc.ServiceError) => {
        if (!ended && !stopped && error.code !== 1) fail("Events/Subscribe", error);
        if (!ended) onEnd();
      });
      call.on("end", () => {
        if (!ended) onEnd();
      });
      return () => {
        ended = true;
        call.cancel();
      };
    });
  }

  return {
    counters,
    async stop() {
      stopped = true;
      for (const timer of timers) clearInterval(timer);
      for (const stop of stoppers) await stop();
    },
  };
}
