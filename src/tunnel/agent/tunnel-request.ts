// One tunnel stream on the agent: a standby until the server assigns a request, then that request to its backend.
import { type ClientHttp2Stream, constants } from "node:http2";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, StreamgateError } from "../../errors/index.js";
import {
  Protocol,
  type RequestHead,
  type TunnelFrame,
  TunnelFrameSchema,
} from "../../gen/streamgate/tunnel/v1/tunnel_pb.js";
import type { Logger } from "../../observability/index.js";
import { encodeDataFrame, encodeFrameIds } from "../protocol/data-frame.js";
import { type FrameChannel, SENT } from "../protocol/frame-channel.js";
import type { FrameSequence } from "../protocol/frame-sequence.js";
import { encodeResponseHeadFrame, encodeTrailersFrame } from "../protocol/head-frame.js";
import { type AgentRules, grpcFromPath, matchAgentRoute, type RequestFacts } from "../rules/index.js";
import { type ResponseSink, type UpstreamForwarder, WRITTEN } from "../upstream/index.js";
import { BodyQueue } from "./body-queue.js";

/**
 * Request body bytes the agent reads ahead of a backend that is slower than the client (one HTTP/2
 * stream window); beyond it the tunnel stream is not read, so flow control stalls the client.
 */
const BODY_READ_AHEAD_BYTES = 64 * 1024;

/** Abort reason (a constant: abort() without one builds a DOMException with a stack per request). */
const STREAM_GONE = "the tunnel request ended";

/** What serving a request needs from the agent. */
export interface RequestContext {
  rules(): AgentRules;
  forwarder: UpstreamForwarder;
  logger: Logger;
}

type FrameKind = MessageInitShape<typeof TunnelFrameSchema>["kind"];

/** What the agent's bookkeeping hears from one tunnel stream. */
export interface StreamEvents {
  /** A RequestHead arrived: the standby became busy. */
  onRequest(): void;
  /** A clean exchange ended on a stream kept for reuse: it is a standby again. */
  onIdle(): void;
}

/**
 * Serves the requests that arrive on a standby stream whose Attach was sent. Resolves when the stream is done:
 * the server ended it without a request, or a request finished (any way) and the stream is not reused. With
 * `reuse` (the server's Registered.reuse_streams) a clean exchange leaves the stream open: it waits for the
 * server's next RequestHead, or for the server to end it.
 */
export async function serveTunnelStream(
  stream: ClientHttp2Stream,
  channel: FrameChannel<TunnelFrame, TunnelFrame>,
  sequence: FrameSequence,
  context: RequestContext,
  events: StreamEvents,
  reuse = false,
): Promise<void> {
  const frames = channel[Symbol.asyncIterator]();
  let next: Promise<IteratorResult<TunnelFrame>> = frames.next();
  for (let reused = false; ; reused = true) {
    let first: IteratorResult<TunnelFrame>;
    try {
      first = await next;
    } catch {
      return;
    }
    if (first.done) return;
    const frame = first.value;
    if (frame.kind.case !== "requestHead") {
      if (reused && (frame.kind.case === "cancel" || frame.kind.case === "error")) {
        // A Cancel of the request just finished crossed our last frame: the server ends this stream; so do we.
        channel.end();
        await drain(frames);
        return;
      }
      // Whatever the server meant (an Error, a Cancel of nothing), this standby is over.
      channel.destroy();
      return;
    }
    events.onRequest();
    const after = await serveRequest(stream, channel, frames, sequence, context, frame, frame.kind.value, reuse);
    if (after === null) return;
    sequence.reset();
    events.onIdle();
    next = after.next;
  }
}

/** A frame channel's SENT as the sink contract's WRITTEN (taken at once); any other promise as it is. */
function written(sent: Promise<void>): Promise<void> {
  return sent === SENT ? WRITTEN : sent;
}

/** Reads a stream to its end (frames the exchange no longer needs), ignoring errors. */
async function drain(frames: AsyncIterator<TunnelFrame>): Promise<void> {
  try {
    while (!(await frames.next()).done) {
      // dropped
    }
  } catch {
    // the stream broke: nothing left to read
  }
}

/**
 * Serves one request whose RequestHead is `frame`. Returns null when the stream is done; with `reuse` and a
 * clean exchange, the stream's next frame (the next RequestHead, or its end) as a promise.
 */
async function serveRequest(
  stream: ClientHttp2Stream,
  channel: FrameChannel<TunnelFrame, TunnelFrame>,
  frames: AsyncIterator<TunnelFrame>,
  sequence: FrameSequence,
  context: RequestContext,
  frame: TunnelFrame,
  head: RequestHead,
  reuse: boolean,
): Promise<{ next: Promise<IteratorResult<TunnelFrame>> } | null> {
  const { requestId, traceId } = frame;
  const receivedAtMs = Date.now();
  // A child logger per request costs on the hot path: only made when something is logged.
  let child: Logger | undefined;
  const log = () => {
    child ??= context.logger.child({ request_id: requestId, trace_id: traceId });
    return child;
  };
  try {
    sequence.check("server", frame);
  } catch (error) {
    await finishWith(channel, requestId, traceId, StreamgateError.from(error));
    return null;
  }
  const send = (kind: FrameKind) => channel.send(create(TunnelFrameSchema, { requestId, traceId, kind }));
  const ids = encodeFrameIds(requestId, traceId);

  const controller = new AbortController();
  const abort = () => controller.abort(STREAM_GONE);
  stream.once("close", abort);
  const body = new BodyQueue(BODY_READ_AHEAD_BYTES);
  if (head.endStream) body.end();
  const reader = new RequestReader(frames, sequence, body, controller, log, reuse);
  const following = reader.run();

  /** Set once the response's last frame went out (ResponseHead with end_stream, or Trailers). */
  let responseEnded = false;
  const sink: ResponseSink = {
    head: (response) => {
      if (response.endStream) responseEnded = true;
      const encoded = encodeResponseHeadFrame(ids, response.status, response.headers, response.endStream);
      // WRITTEN when the stream took the frame at once: the forwarder's relay goes on without a promise chain.
      if (encoded !== null) return written(channel.sendEncoded(encoded));
      return send({
        case: "responseHead",
        value: { status: response.status, headers: response.headers, endStream: response.endStream },
      });
    },
    data: (bytes) => written(channel.sendEncoded(encodeDataFrame(ids, bytes, false))),
    trailers: (headers) => {
      responseEnded = true;
      return written(channel.sendEncoded(encodeTrailersFrame(ids, headers)));
    },
    error: (error) => {
      responseEnded = false;
      log().debug({ code: error.code, reason: error.reason }, `tunnel request failed: ${error.message}`);
      return send({ case: "error", value: { code: error.code, message: error.message } });
    },
  };

  let clean = false;
  try {
    const matched = matchAgentRoute(context.rules(), factsOf(head));
    if (matched === null) {
      await sink.error(noRoute(head));
    } else {
      await context.forwarder.forward(
        { head, body, signal: controller.signal, receivedAtMs, traceId },
        matched.upstream,
        sink,
      );
    }
    // The server sees the same: our last frame ended the response, its body ended, no Cancel either way.
    clean = reuse && responseEnded && reader.requestEnded && !reader.cancelled && !controller.signal.aborted;
    if (!clean) channel.end();
  } catch {
    // The tunnel stream broke under a send: the forwarder already stopped; reset what is left.
    if (!stream.destroyed) stream.close(constants.NGHTTP2_CANCEL);
  } finally {
    stream.off("close", abort);
    body.end();
  }
  return clean ? { next: following } : null;
}

/**
 * Feeds request Data into the body queue; Cancel, Error, a broken stream or a protocol violation abort the
 * backend call. Without reuse it reads the stream to its end. With reuse, once the body ended, a RequestHead
 * is the next request (the server saw this one end cleanly): `run()` resolves with it, unread by the exchange.
 */
class RequestReader {
  cancelled = false;
  /** The request body ended with end_stream (not cut short). */
  requestEnded = false;

  constructor(
    private readonly frames: AsyncIterator<TunnelFrame>,
    private readonly sequence: FrameSequence,
    private readonly body: BodyQueue,
    private readonly controller: AbortController,
    private readonly log: () => Logger,
    private readonly reuse: boolean,
  ) {
    this.requestEnded = sequence.requestComplete;
  }

  async run(): Promise<IteratorResult<TunnelFrame>> {
    const { body, controller } = this;
    let result: IteratorResult<TunnelFrame> = { done: true, value: undefined };
    try {
      for (;;) {
        result = await this.frames.next();
        if (result.done) break;
        const frame = result.value;
        // The next request of a reused stream: left to serveTunnelStream.
        if (this.reuse && this.requestEnded && !this.cancelled && frame.kind.case === "requestHead") return result;
        // After a Cancel the rest is only read to the end, so the stream closes without a reset.
        if (this.cancelled) continue;
        if (this.sequence.check("server", frame) === "ignore") continue;
        switch (frame.kind.case) {
          case "data": {
            // Awaited only when the queue is full: no extra turn per frame otherwise.
            const full = body.push(frame.kind.value.data);
            if (full !== undefined) await full;
            if (frame.kind.value.endStream) {
              this.requestEnded = true;
              body.end();
            }
            break;
          }
          case "cancel":
          case "error":
            this.log().debug({ kind: frame.kind.case }, "tunnel request cancelled by the server");
            // Abort first, then fail the body: ending it would half-close the backend call, which could
            // then complete OK before the abort lands (the backend must see a cancel).
            this.cancelled = true;
            controller.abort(STREAM_GONE);
            body.fail(new StreamgateError(Code.CANCELLED, "the request was cancelled", { reason: "TUNNEL_CANCELLED" }));
            break;
          default:
            break;
        }
      }
      // The server half-closed: a body still open was cut short.
      if (!this.cancelled && !body.closed) {
        body.fail(new StreamgateError(Code.CANCELLED, "the request body ended early", { reason: "TUNNEL_CANCELLED" }));
        controller.abort(STREAM_GONE);
      }
    } catch (error) {
      this.cancelled = true;
      body.fail(StreamgateError.from(error));
      controller.abort(STREAM_GONE);
    }
    return result.done === true ? result : { done: true, value: undefined };
  }
}

async function finishWith(
  channel: FrameChannel<TunnelFrame, TunnelFrame>,
  requestId: string,
  traceId: string,
  error: StreamgateError,
): Promise<void> {
  try {
    await channel.send(
      create(TunnelFrameSchema, {
        requestId,
        traceId,
        kind: { case: "error", value: { code: error.code, message: error.message } },
      }),
    );
    channel.end();
  } catch {
    channel.destroy();
  }
}

/** The request facts agent routes match on. */
export function factsOf(head: RequestHead): RequestFacts {
  return new HeadFacts(head);
}

/**
 * RequestFacts of a RequestHead whose header object is built on first use: only a route with header conditions
 * reads it, and building it for every request cost more than matching.
 */
class HeadFacts implements RequestFacts {
  readonly authority: string;
  readonly path: string;
  readonly method: string;
  readonly grpc: RequestFacts["grpc"];
  private built: Record<string, string | string[]> | undefined;

  constructor(private readonly head: RequestHead) {
    this.authority = head.authority;
    this.path = head.path;
    this.method = head.method;
    this.grpc = head.protocol === Protocol.GRPC ? grpcFromPath(head.path) : null;
  }

  get headers(): Record<string, string | string[]> {
    if (this.built !== undefined) return this.built;
    const headers: Record<string, string | string[]> = {};
    for (const { name, value } of this.head.headers) {
      const existing = headers[name];
      if (existing === undefined) headers[name] = value;
      else if (Array.isArray(existing)) existing.push(value);
      else headers[name] = [existing, value];
    }
    this.built = headers;
    return headers;
  }
}

function noRoute(head: RequestHead): StreamgateError {
  const grpc = head.protocol === Protocol.GRPC;
  const what = grpc ? `gRPC method ${head.path}` : `${head.method} ${head.authority}${head.path}`;
  return new StreamgateError(grpc ? Code.UNIMPLEMENTED : Code.NOT_FOUND, `no agent route matches ${what}`, {
    reason: "TUNNEL_NO_ROUTE",
  });
}
