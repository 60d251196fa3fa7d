// Which tunnel frame may follow which on one Stream call: a pure state machine both endpoints can run.
import { Code, StreamgateError } from "../../errors/index.js";
import type { TunnelFrame } from "../../gen/streamgate/tunnel/v1/tunnel_pb.js";

/** The endpoint that sent a frame. */
export const FrameSender = {
  /** The agent: Attach, ResponseHead, Data, Trailers, Error (and Cancel). */
  agent: "agent",
  /** The server: RequestHead, Data, Cancel, Error. */
  server: "server",
} as const;
export type FrameSender = (typeof FrameSender)[keyof typeof FrameSender];

/** What to do with a frame that broke no rule. */
export const FrameVerdict = {
  /** Process it. */
  accept: "accept",
  /** The exchange already ended (Cancel or Error crossed it in flight): drop it silently. */
  ignore: "ignore",
} as const;
export type FrameVerdict = (typeof FrameVerdict)[keyof typeof FrameVerdict];

/**
 * Tracks one tunnel stream in both directions. `check(sender, frame)` returns whether to accept or
 * ignore a frame, and throws a StreamgateError (INVALID_ARGUMENT, reason TUNNEL_FRAME_SEQUENCE or
 * TUNNEL_UNKNOWN_REQUEST) for a frame that may not come now: the caller ends the stream with it.
 */
export class FrameSequence {
  private attached = false;
  private requestId = "";
  private requestHeadSent = false;
  private requestEnded = false;
  private responseStarted = false;
  private responseEnded = false;
  private responseBodyEnded = false;
  private terminated = false;

  /** True once the exchange is over: response complete, or Cancel / Error sent by either side. */
  get finished(): boolean {
    return this.terminated || (this.responseEnded && (this.requestEnded || !this.requestHeadSent));
  }

  /** True once the response is complete (ResponseHead with end_stream, or Trailers) or the exchange ended. */
  get responseComplete(): boolean {
    return this.terminated || this.responseEnded;
  }

  /** True once the agent sent the last response body bytes (Data with end_stream); Trailers may follow. */
  get responseBodyComplete(): boolean {
    return this.responseBodyEnded || this.responseComplete;
  }

  /**
   * True once the exchange ended cleanly: the response complete (ResponseHead with end_stream, or Trailers), the
   * request body ended, and no Cancel or Error either way. With reuse_streams both sides then keep the stream
   * for the next request (see `reset`).
   */
  get reusable(): boolean {
    return !this.terminated && this.responseEnded && this.requestEnded;
  }

  /** Makes a reusable stream a standby again: the next server frame may be a new RequestHead. */
  reset(): void {
    this.requestId = "";
    this.requestHeadSent = false;
    this.requestEnded = false;
    this.responseStarted = false;
    this.responseEnded = false;
    this.responseBodyEnded = false;
    this.terminated = false;
  }

  /** True once the request body ended (RequestHead or Data with end_stream). */
  get requestComplete(): boolean {
    return this.requestEnded;
  }

  /** True once the agent attached the stream to its session. */
  get isAttached(): boolean {
    return this.attached;
  }

  check(sender: FrameSender, frame: TunnelFrame): FrameVerdict {
    const kind = frame.kind.case;
    if (kind === undefined) return this.violation(sender, "a frame without a kind");
    if (this.terminated) return FrameVerdict.ignore;
    if (
      this.requestHeadSent &&
      kind !== "requestHead" &&
      frame.requestId !== "" &&
      frame.requestId !== this.requestId
    ) {
      throw new StreamgateError(
        Code.INVALID_ARGUMENT,
        `tunnel frame for request ${JSON.stringify(frame.requestId)} on the stream of request ${JSON.stringify(this.requestId)}`,
        { reason: "TUNNEL_UNKNOWN_REQUEST" },
      );
    }
    return sender === FrameSender.agent ? this.fromAgent(kind, frame) : this.fromServer(kind, frame);
  }

  /** `check("server", …)` for a Data frame the server sends already encoded (encodeDataFrame): only its end flag matters. */
  checkServerData(endStream: boolean): FrameVerdict {
    return this.terminated ? FrameVerdict.ignore : this.serverData(endStream);
  }

  private serverData(endStream: boolean): FrameVerdict {
    if (!this.requestHeadSent) return this.violation("server", "Data before RequestHead");
    if (this.requestEnded) return this.violation("server", "Data after the request body ended");
    if (endStream) this.requestEnded = true;
    return FrameVerdict.accept;
  }

  private fromAgent(kind: NonNullable<TunnelFrame["kind"]["case"]>, frame: TunnelFrame): FrameVerdict {
    switch (kind) {
      case "attach":
        if (this.attached) return this.violation("agent", "a second Attach");
        this.attached = true;
        return FrameVerdict.accept;
      case "responseHead":
        this.requireRequest("agent", "ResponseHead");
        if (this.responseStarted) return this.violation("agent", "a second ResponseHead");
        this.responseStarted = true;
        if (frame.kind.case === "responseHead" && frame.kind.value.endStream) this.responseEnded = true;
        return FrameVerdict.accept;
      case "data":
      case "trailers": {
        const name = kind === "data" ? "Data" : "Trailers";
        this.requireRequest("agent", name);
        if (!this.responseStarted) return this.violation("agent", `${name} before ResponseHead`);
        if (this.responseEnded || (kind === "data" && this.responseBodyEnded))
          return this.violation("agent", `${name} after the response ended`);
        // Data{end_stream} ends the body; Trailers may still follow and end the response.
        if (kind === "trailers") this.responseEnded = true;
        else if (frame.kind.case === "data" && frame.kind.value.endStream) this.responseBodyEnded = true;
        return FrameVerdict.accept;
      }
      case "error":
      case "cancel":
        if (!this.attached) return this.violation("agent", "an Error before Attach");
        this.terminated = true;
        return FrameVerdict.accept;
      case "requestHead":
        return this.violation("agent", "a RequestHead (only the server sends one)");
    }
  }

  private fromServer(kind: NonNullable<TunnelFrame["kind"]["case"]>, frame: TunnelFrame): FrameVerdict {
    switch (kind) {
      case "requestHead":
        if (!this.attached) return this.violation("server", "a RequestHead before Attach");
        if (this.requestHeadSent) return this.violation("server", "a second RequestHead");
        this.requestHeadSent = true;
        this.requestId = frame.requestId;
        if (frame.kind.case === "requestHead" && frame.kind.value.endStream) this.requestEnded = true;
        return FrameVerdict.accept;
      case "data":
        return this.serverData(frame.kind.case === "data" && frame.kind.value.endStream);
      case "cancel":
      case "error":
        if (!this.requestHeadSent)
          return this.violation("server", `a ${kind === "cancel" ? "Cancel" : "Error"} before RequestHead`);
        this.terminated = true;
        return FrameVerdict.accept;
      default:
        return this.violation("server", `a ${kind} frame (only the agent sends one)`);
    }
  }

  private requireRequest(sender: FrameSender, what: string): void {
    if (!this.attached) this.violation(sender, `${what} before Attach`);
    if (!this.requestHeadSent) this.violation(sender, `${what} before any request was assigned`);
  }

  private violation(sender: FrameSender, what: string): never {
    throw new StreamgateError(Code.INVALID_ARGUMENT, `tunnel protocol error: the ${sender} sent ${what}`, {
      reason: "TUNNEL_FRAME_SEQUENCE",
    });
  }
}
