// One agent Stream call on the server: a standby until a request is assigned, then that request's frames.
import { constants, type ServerHttp2Stream } from "node:http2";
import { Code, StreamgateError } from "../../errors/index.js";
import { type RequestHead, type TunnelFrame, TunnelFrameSchema } from "../../gen/streamgate/tunnel/v1/tunnel_pb.js";
import { encodeDataFrame } from "../protocol/data-frame.js";
import type { FrameChannel, FrameIterator } from "../protocol/frame-channel.js";
import { encodeFrame } from "../protocol/frame-codec.js";
import { FrameSequence } from "../protocol/frame-sequence.js";
import { encodeRequestHeadFrame } from "../protocol/head-frame.js";
import type { AgentSession } from "./agent-session.js";
import { endGrpc } from "./grpc-stream.js";

/** How long the agent may keep its side open after the exchange ended before the stream is reset. */
const LINGER_MS = 5_000;

export class TunnelStream {
  readonly sequence = new FrameSequence();
  /** Set once a request owns the stream; the standby watcher then stops acting on frames. */
  private owned = false;
  /** Standby periods so far: a watcher acts only on the period it was started in (streams are reused). */
  private period = 0;
  private pending: Promise<IteratorResult<TunnelFrame>> | null = null;
  private ended = false;
  private discarding = false;

  constructor(
    readonly session: AgentSession,
    readonly stream: ServerHttp2Stream,
    readonly channel: FrameChannel<TunnelFrame, TunnelFrame>,
    private readonly frames: FrameIterator<TunnelFrame>,
    private readonly onGone: (stream: TunnelStream) => void,
  ) {
    stream.once("close", () => {
      this.ended = true;
      this.onGone(this);
    });
  }

  get closed(): boolean {
    return this.ended || this.stream.destroyed || this.stream.closed;
  }

  /** Watches the standby: the agent closing it, or sending anything, takes it out of the pool. */
  watchStandby(): void {
    const period = ++this.period;
    this.pending = this.frames.next();
    this.pending.then(
      (result) => {
        if (this.owned || period !== this.period) return;
        this.session.removeStandby(this);
        if (result.done) this.finish(null);
        else
          this.finish(
            new StreamgateError(Code.INVALID_ARGUMENT, "tunnel protocol error: a frame on a standby stream", {
              reason: "TUNNEL_FRAME_SEQUENCE",
            }),
          );
      },
      (error: unknown) => {
        if (this.owned || period !== this.period) return;
        this.session.removeStandby(this);
        this.finish(StreamgateError.from(error));
      },
    );
  }

  /** Claims the stream for a request. */
  claim(): void {
    this.owned = true;
  }

  /**
   * After a clean exchange on a session with reuse_streams (`sequence.reusable`), the stream is a standby again:
   * back to the session's pool (or to a request waiting for one), or ended when the session cannot use it.
   * Call after `session.end(this)`.
   */
  recycle(): void {
    if (this.closed) return;
    this.sequence.reset();
    this.owned = false;
    this.watchStandby();
    if (!this.session.returnStandby(this)) this.finish(null);
  }

  /** Sends a frame (checked against the frame order). */
  send(frame: TunnelFrame): Promise<void> {
    this.sequence.check("server", frame);
    return this.channel.send(frame);
  }

  /** Sends the request's RequestHead (checked like `send`), encoded by hand (head-frame.ts) unless unusual. */
  sendRequestHead(ids: Uint8Array, requestId: string, traceId: string, head: RequestHead): Promise<void> {
    const frame = {
      $typeName: TunnelFrameSchema.typeName,
      requestId,
      traceId,
      kind: { case: "requestHead", value: head },
    };
    this.sequence.check("server", frame as TunnelFrame);
    return this.channel.sendEncoded(
      encodeRequestHeadFrame(ids, head) ?? encodeFrame(TunnelFrameSchema, frame as TunnelFrame),
    );
  }

  /** Sends a Data frame of the request whose ids are `ids` (encodeFrameIds), checked like `send`. */
  sendData(ids: Uint8Array, data: Uint8Array, endStream: boolean): Promise<void> {
    this.sequence.checkServerData(endStream);
    return this.channel.sendEncoded(encodeDataFrame(ids, data, endStream));
  }

  /**
   * The agent's next frame that is not to be ignored, or null when the agent ended its side.
   * Throws a StreamgateError for a frame out of order or a broken stream.
   */
  next(): Promise<TunnelFrame | null> {
    const pending = this.pending ?? this.frames.next();
    this.pending = null;
    // A promise chain rather than an async loop: one less promise per frame (frames to ignore are rare).
    return pending.then(this.accept);
  }

  /**
   * The agent's next frame when one is already decoded (several arrive in one read under load), checked like
   * `next()`, without a promise; undefined when none is waiting (then `next()` waits for one).
   */
  nextReady(): TunnelFrame | undefined {
    if (this.pending !== null) return undefined;
    for (;;) {
      const frame = this.frames.takeReady();
      if (frame === undefined || this.sequence.check("agent", frame) === "accept") return frame;
    }
  }

  private readonly accept = (result: IteratorResult<TunnelFrame>): Promise<TunnelFrame | null> | TunnelFrame | null => {
    if (result.done) return null;
    return this.sequence.check("agent", result.value) === "accept" ? result.value : this.next();
  };

  /**
   * Ends the Stream call (OK, or the error as grpc-status). A call ended with an error while the agent's side is
   * still open is reset (CANCEL) right after the status; after OK the agent gets LINGER_MS to half-close, then the
   * same reset. Either way what it still sends is read and dropped (see discardBody).
   */
  finish(error: StreamgateError | null): void {
    if (this.closed) return;
    endGrpc(this.stream, error, error !== null);
    if (this.stream.readableEnded) return;
    if (error === null) {
      // The agent should half-close right after its last frame; one that does not is reset. With CANCEL, not
      // NO_ERROR: node's http2 client ignores NO_ERROR while its upload waits on flow control, so the call stayed open.
      const timer = setTimeout(() => {
        if (!this.closed) this.stream.close(constants.NGHTTP2_CANCEL);
      }, LINGER_MS);
      timer.unref();
      this.stream.once("close", () => clearTimeout(timer));
    }
    this.discardBody();
  }

  /** Resets the stream at once (agent lost, server closing). */
  destroy(): void {
    if (!this.closed) this.stream.close(constants.NGHTTP2_CANCEL);
  }

  /**
   * Reads and drops what the agent still sends once the exchange is over: late frames, then (once they stop
   * parsing) raw bytes. node keeps a server stream, reset or not, until its body is read, and while one holds
   * unread data the connection's own close goes unseen (its socket stays open after the peer is gone). Reading
   * also returns the flow-control credit.
   */
  private discardBody(): void {
    if (this.discarding) return;
    this.discarding = true;
    void this.drainFrames().then(() => {
      if (this.stream.destroyed || this.stream.readableEnded) return;
      this.stream.removeAllListeners("readable");
      this.stream.on("data", () => undefined);
      this.stream.resume();
    });
  }

  private async drainFrames(): Promise<void> {
    try {
      for (;;) {
        const pending = this.pending ?? this.frames.next();
        this.pending = null;
        if ((await pending).done) return;
      }
    } catch {
      // The stream broke after the exchange ended: nothing left to report.
    }
  }
}
