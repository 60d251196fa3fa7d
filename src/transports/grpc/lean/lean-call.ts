// One call on the lean gRPC path: its stream, context, deadline, cancellation, and how it ends (OK or an error status).
import { constants, type ServerHttp2Stream } from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { endWithTrailers, respondGrpc } from "../../../tunnel/server/grpc-stream.js";
import type { GrpcCompression } from "./grpc-compression.js";
import { copyHeaders, errorTrailers, okTrailers, RESPONSE_CONTENT_TYPE } from "./grpc-response.js";
import type { LeanHandlerContext } from "./lean-context.js";

/** The reason the context's signal carries once the call has ended normally. */
const CALL_ENDED = new ConnectError("the call has ended", Code.Canceled);

/** The error a client's RST_STREAM means, as connect-node reports it to the handler's signal. */
function resetError(rstCode: number): ConnectError {
  const code =
    rstCode === constants.NGHTTP2_CANCEL || rstCode === constants.NGHTTP2_NO_ERROR ? Code.Canceled : Code.Unavailable;
  return new ConnectError(`http/2 stream closed with error code 0x${rstCode.toString(16)}`, code);
}

/**
 * The state of one call. Exactly one of `finish()` (OK) or `fail()` (an error status) ends it; a client
 * reset or the deadline ends it too, and every later write or ending is a no-op. `closeUnread` (streaming
 * requests) resets a stream whose request body is still arriving once the status is out.
 */
export class LeanCall {
  /** True once the call has a final status (or the client went away). */
  done = false;
  private headersSent = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly stream: ServerHttp2Stream,
    readonly context: LeanHandlerContext,
    private readonly compression: GrpcCompression | null,
    private readonly closeUnread: boolean,
    private readonly mapError: (error: unknown) => ConnectError,
  ) {
    // `on`, not `once`: a stream closes once, and once() would wrap the listener (an allocation per call).
    stream.on("close", this.onClose);
  }

  /** Ends the call with DEADLINE_EXCEEDED after `timeoutMs` (connect's deadline error). */
  startDeadline(timeoutMs: number): void {
    this.timer = setTimeout(
      () => this.fail(new ConnectError("the operation timed out", Code.DeadlineExceeded)),
      Math.min(timeoutMs, 2 ** 31 - 1),
    );
  }

  private readonly onClose = () => {
    if (this.done) return;
    this.done = true;
    this.cleanup(resetError(this.stream.rstCode));
  };

  private cleanup(reason: unknown): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.context.abort(reason);
  }

  private responseHeaders() {
    const headers = copyHeaders(this.context.peekResponseHeader(), { "content-type": RESPONSE_CONTENT_TYPE });
    if (this.compression !== null) headers["grpc-encoding"] = this.compression.name;
    return headers;
  }

  /** Writes one framed message (headers first); resolves when the stream can take more, at once if it can. */
  write(frame: Buffer): Promise<void> | undefined {
    if (this.done) return undefined;
    if (!this.headersSent) {
      this.headersSent = true;
      respondGrpc(this.stream, this.responseHeaders());
    }
    if (this.stream.write(frame)) return undefined;
    return new Promise((resolve) => {
      const go = () => {
        this.stream.off("drain", go);
        this.stream.off("close", go);
        resolve();
      };
      this.stream.once("drain", go);
      this.stream.once("close", go);
    });
  }

  /**
   * Ends a call whose request has been read to its end OK with its one response message: headers, message and
   * trailers go out together (one write, then the trailers), as a bare node:http2 server answers, instead of a
   * write() followed by finish(). Used by unary and client-streaming calls.
   */
  finishWith(frame: Buffer): void {
    if (this.done) return;
    if (this.headersSent) {
      void this.write(frame);
      this.finish();
      return;
    }
    this.done = true;
    const stream = this.stream;
    if (!stream.destroyed && !stream.closed) {
      const trailers = okTrailers(this.context.peekResponseTrailer());
      this.headersSent = true;
      const headers = copyHeaders(this.context.peekResponseHeader(), {
        ":status": 200,
        "content-type": RESPONSE_CONTENT_TYPE,
      });
      if (this.compression !== null) headers["grpc-encoding"] = this.compression.name;
      stream.respond(headers, { waitForTrailers: true });
      stream.once("wantTrailers", () => {
        if (!stream.destroyed && !stream.closed) stream.sendTrailers(trailers);
      });
      stream.end(frame);
    }
    this.cleanup(CALL_ENDED);
  }

  /** Ends the call OK: trailers after the messages (or trailers-only when there were none). */
  finish(): void {
    if (this.done) return;
    this.done = true;
    const trailers = okTrailers(this.context.peekResponseTrailer());
    endWithTrailers(
      this.stream,
      this.headersSent ? trailers : { ...this.responseHeaders(), ...trailers },
      this.closeUnread,
    );
    this.cleanup(CALL_ENDED);
  }

  /** Ends the call with the status of `error` (mapped as the server's errorInterceptor maps it). */
  fail(error: unknown): void {
    if (this.done) return;
    this.done = true;
    const mapped = this.mapError(error);
    const trailers = errorTrailers(mapped, this.context.peekResponseTrailer());
    endWithTrailers(
      this.stream,
      this.headersSent ? trailers : { ...this.responseHeaders(), ...trailers },
      this.closeUnread,
    );
    this.cleanup(mapped);
  }
}
