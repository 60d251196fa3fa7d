// One WebSocket client: many topic subscriptions, publishes and pings over JSON text frames.
import { AsyncResource } from "node:async_hooks";
import type { Socket } from "node:net";
import type { WebSocket } from "ws";
import { validateMessages } from "../../broker/message-limits.js";
import { parseTopicName } from "../../broker/names.js";
import type { MessageInput, PublishedRef, TopicName } from "../../broker/types.js";
import { Code, errors, StreamgateError } from "../../errors/index.js";
import { runWithTraceContext, type TraceContext, traceContextFromHeaders } from "../../observability/index.js";
import { type FeedSubscription, parseStreamPosition, type StreamHub } from "../../streams/index.js";
import {
  type ClientFrame,
  encodeEventPage,
  errorFrame,
  frameCorrelation,
  messageFramePrefix,
  parseClientFrame,
} from "./ws-frames.js";

export interface WsConnectionContext {
  hub: StreamHub;
  publish(topic: TopicName, messages: MessageInput[]): Promise<PublishedRef[]>;
  /** Bytes the socket may hold unsent before the client is dropped as a slow consumer (close 1013). */
  maxBufferBytes: number;
  /** Subscriptions one connection may hold. */
  maxSubscriptions: number;
  /** Malformed frames in a row after which the connection is closed (1008). */
  maxMalformedFrames: number;
}

/** Close code for "try again later": a slow consumer resumes from its cursor. */
export const CLOSE_TRY_AGAIN_LATER = 1013;

export class WsConnection {
  /** Pings sent without a pong since; the endpoint terminates the connection as a dead peer past its limit. */
  missedPongs = 0;
  private readonly subscriptions = new Map<string, AbortController>();
  private malformedInRow = 0;
  private corked = false;
  private closing = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly socket: Socket,
    private readonly context: WsConnectionContext,
    /** The upgrade request's W3C trace context: publishes without their own carry it. */
    private readonly trace?: TraceContext,
  ) {
    // Frames arrive in the socket's async context; run in the upgrade request's, they act as its principal (auth,
    // limits). One AsyncResource per connection: `AsyncLocalStorage.snapshot()` is `AsyncResource.bind`, which adds
    // a bound function, a deprecated `asyncResource` getter and their contexts to the resource.
    this.upgradeScope = new AsyncResource("streamgate.WsConnection");
    // Shared listeners (`this` is the socket, which points back here): no closures per connection.
    connectionOf.set(ws, this);
    ws.on("message", onMessage);
    ws.on("pong", onPong);
    ws.on("close", onClosed);
    ws.on("error", onClosed);
  }

  /** The async context of the upgrade request. */
  private readonly upgradeScope: AsyncResource;

  /** A frame from the client (the socket's `message` listener). */
  received(data: Buffer, isBinary: boolean): void {
    this.upgradeScope.runInAsyncScope(this.onFrame, this, data, isBinary);
  }

  /** Ends every subscription (the socket closed or failed). */
  stopAll(): void {
    for (const controller of this.subscriptions.values()) controller.abort();
    this.subscriptions.clear();
  }

  /** Closes with a code and reason (reason cut to the 123 bytes a close frame allows). */
  close(code: number, reason: string): void {
    if (this.closing) return;
    this.closing = true;
    this.stopAll();
    let text = reason;
    while (Buffer.byteLength(text) > 123) text = text.slice(0, -1);
    this.ws.close(code, text);
  }

  /** A close frame is on its way (or the socket is gone): ws's own close timeout (30 s) ends it, not pings. */
  get isClosing(): boolean {
    return this.closing || this.ws.readyState !== this.ws.OPEN;
  }

  ping(): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.ping();
  }

  terminate(): void {
    this.closing = true;
    this.stopAll();
    this.ws.terminate();
  }

  private onFrame(data: Buffer, isBinary: boolean): void {
    if (this.closing) return;
    const text = isBinary ? null : data.toString("utf8");
    let frame: ClientFrame;
    try {
      if (text === null) throw errors.invalidArgument("frame", "binary frames are not accepted; send JSON text frames");
      frame = parseClientFrame(text);
    } catch (error) {
      this.malformedInRow++;
      if (this.malformedInRow >= this.context.maxMalformedFrames) {
        this.close(1008, `too many malformed frames (${this.malformedInRow} in a row)`);
        return;
      }
      this.send(errorFrame(StreamgateError.from(error), text === null ? {} : frameCorrelation(text)));
      return;
    }
    this.malformedInRow = 0;
    switch (frame.type) {
      case "ping":
        this.send('{"type":"pong"}');
        return;
      case "subscribe":
        void this.subscribe(frame);
        return;
      case "unsubscribe": {
        const controller = this.subscriptions.get(frame.id);
        if (controller === undefined) {
          this.send(errorFrame(notSubscribed(frame.id), { id: frame.id }));
          return;
        }
        controller.abort();
        this.subscriptions.delete(frame.id);
        this.send(JSON.stringify({ type: "unsubscribed", id: frame.id }));
        return;
      }
      case "publish":
        void this.publish(frame);
        return;
    }
  }

  private async publish(frame: Extract<ClientFrame, { type: "publish" }>): Promise<void> {
    try {
      parseTopicName(frame.topic, "topic");
      validateMessages(frame.messages);
      const own = traceContextFromHeaders({ traceparent: frame.traceparent, tracestate: frame.tracestate });
      const refs = await runWithTraceContext(own ?? this.trace, () =>
        this.context.publish(frame.topic, frame.messages),
      );
      this.send(
        JSON.stringify({
          type: "published",
          ref: frame.ref,
          offsets: refs.map((ref) => String(ref.offset)),
          messageIds: refs.map((ref) => ref.messageId),
        }),
      );
    } catch (error) {
      this.send(errorFrame(StreamgateError.from(error), { ref: frame.ref }));
    }
  }

  private async subscribe(frame: Extract<ClientFrame, { type: "subscribe" }>): Promise<void> {
    const { id } = frame;
    if (this.subscriptions.has(id)) {
      this.send(
        errorFrame(
          new StreamgateError(Code.ALREADY_EXISTS, `subscription id ${id} is already in use on this connection`, {
            reason: "SUBSCRIPTION_ID_IN_USE",
          }),
          { id },
        ),
      );
      return;
    }
    if (this.subscriptions.size >= this.context.maxSubscriptions) {
      this.send(
        errorFrame(
          errors.resourceExhausted(
            "TOO_MANY_SUBSCRIPTIONS",
            `a connection may hold at most ${this.context.maxSubscriptions} subscriptions`,
          ),
          { id },
        ),
      );
      return;
    }
    const controller = new AbortController();
    this.subscriptions.set(id, controller);
    // Where the client resumes after a drop: the hub's cursor (last event sent, else the pinned start; never
    // `latest`, which would skip what was published while the client lagged).
    let subscription: FeedSubscription | null = null;
    try {
      parseTopicName(frame.topic, "topic");
      subscription = await runWithTraceContext(this.trace, () =>
        this.context.hub.subscribe({
          topic: frame.topic,
          from: parseStreamPosition(frame.from, "from"),
          filter: frame.filter,
          signal: controller.signal,
        }),
      );
      if (controller.signal.aborted) return;
      this.send(JSON.stringify({ type: "subscribed", id }));
      const prefix = messageFramePrefix(id);
      for (;;) {
        const events = await subscription.nextBatch();
        if (events === null) break;
        const page = encodeEventPage(id, prefix, events);
        if (page === null) continue; // idle: the endpoint's WebSocket pings keep the connection alive
        this.sendFrames(page);
        // Past the limit, stop pulling: history is then read at the client's pace, and at the live tail the
        // hub's byte-bounded queue fills and drops this subscription as a slow consumer (close 1013).
        if (this.ws.bufferedAmount > this.context.maxBufferBytes) await this.drained();
      }
    } catch (error) {
      const failure = StreamgateError.from(error);
      if (failure.reason === "SLOW_CONSUMER") {
        this.close(CLOSE_TRY_AGAIN_LATER, `slow consumer: resume from ${subscription?.lastOffset ?? frame.from}`);
        return;
      }
      if (!controller.signal.aborted) this.send(errorFrame(failure, { id }));
    } finally {
      if (this.subscriptions.get(id) === controller) this.subscriptions.delete(id);
      // Page-at-a-time reading does not end the subscription on its own, as leaving a for-await loop does.
      void subscription?.[Symbol.asyncIterator]().return?.();
    }
  }

  /** Resolves when the socket drained or closed (no listener is left behind). */
  private drained(): Promise<void> {
    if (this.closing || this.ws.readyState !== this.ws.OPEN) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off("drain", done);
        this.socket.off("close", done);
        resolve();
      };
      this.socket.on("drain", done);
      this.socket.on("close", done);
    });
  }

  /**
   * Writes complete, already framed WebSocket frames (see `encodeEventPage`) to the socket, after any frame
   * sent before. Safe beside `ws.send`: with permessage-deflate off and no Blob payloads, ws writes each frame to
   * the socket synchronously (its sender queues nothing), so socket order is send order; `ws.bufferedAmount`
   * counts these bytes too (it reads the socket's buffer).
   */
  private sendFrames(frames: Buffer): void {
    if (this.closing || this.ws.readyState !== this.ws.OPEN) return;
    this.socket.write(frames);
  }

  /** Sends a text frame; frames sent in the same tick leave in one socket write. */
  private send(text: string): void {
    if (this.closing || this.ws.readyState !== this.ws.OPEN) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      setImmediate(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.ws.send(text);
  }
}

/** Each socket's connection, for the listeners shared by every connection. */
const connectionOf = new WeakMap<WebSocket, WsConnection>();

function onMessage(this: WebSocket, data: unknown, isBinary: boolean): void {
  connectionOf.get(this)?.received(data as Buffer, isBinary);
}

function onPong(this: WebSocket): void {
  const connection = connectionOf.get(this);
  if (connection !== undefined) connection.missedPongs = 0;
}

function onClosed(this: WebSocket): void {
  connectionOf.get(this)?.stopAll();
}

function notSubscribed(id: string): StreamgateError {
  return new StreamgateError(Code.NOT_FOUND, `no subscription with id ${id} on this connection`, {
    reason: "SUBSCRIPTION_ID_NOT_FOUND",
  });
}
