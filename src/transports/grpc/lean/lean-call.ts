// One call on the lean gRPC path: its stream, context, deadline, cancellation, request body (unary) and how it ends.
import { constants, type OutgoingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { endWithTrailers, respondGrpc } from "../../../tunnel/server/grpc-stream.js";
import {
  type Envelope,
  EnvelopeSplitter,
  endedByReset,
  incompleteEnvelopeError,
  tooLargeError,
} from "./envelope-reader.js";
import type { GrpcCompression } from "./grpc-compression.js";
import { copyHeaders, errorTrailers, okTrailers, RESPONSE_CONTENT_TYPE } from "./grpc-response.js";
import type { LeanHandlerContext } from "./lean-context.js";

/** The reason the context's signal carries once the call has ended normally. */
const CALL_ENDED = new ConnectError("the call has ended", Code.Canceled);

/** Headers and trailers of a unary answer nobody added to: shared (node copies what it is given, never edits it). */
const OK_HEADERS: OutgoingHttpHeaders = Object.freeze({ ":status": 200, "content-type": RESPONSE_CONTENT_TYPE });
const OK_TRAILERS: OutgoingHttpHeaders = Object.freeze({ "grpc-status": "0" });
const RESPOND_WITH_TRAILERS = Object.freeze({ waitForTrailers: true });

/*
 * The stream holds its call only while the call runs. node:http2 keeps a stream object reachable until a full
 * (mark-compact) collection, long after the call: whatever the stream references survives the young-generation
 * collections and is copied into the old generation, which made the lean path's garbage collection cost several
 * times the bare floor's. So the stream's listeners are module functions (no closure per call) that reach the call
 * through this slot, and the slot is emptied when the call ends: the call, its context, its request and its
 * answer then die young.
 */
const kCall = Symbol("streamgate.leanCall");
const kTrailers = Symbol("streamgate.leanTrailers");
interface CallStream extends ServerHttp2Stream {
  [kCall]?: LeanCall | undefined;
  [kTrailers]?: OutgoingHttpHeaders | undefined;
}

function onCallStreamClose(this: CallStream): void {
  this[kCall]?.streamClosed();
}

function onCallStreamData(this: CallStream, chunk: Buffer): void {
  this[kCall]?.bodyData(chunk);
}

function onCallStreamEnd(this: CallStream): void {
  this[kCall]?.bodyEnded();
}

function onTrailersWanted(this: CallStream): void {
  const trailers = this[kTrailers];
  this[kTrailers] = undefined;
  if (trailers !== undefined && !this.destroyed && !this.closed) this.sendTrailers(trailers);
}

/** The error a client's RST_STREAM means, as connect-node reports it to the handler's signal. */
function resetError(rstCode: number): ConnectError {
  const code =
    rstCode === constants.NGHTTP2_CANCEL || rstCode === constants.NGHTTP2_NO_ERROR ? Code.Canceled : Code.Unavailable;
  return new ConnectError(`http/2 stream closed with error code 0x${rstCode.toString(16)}`, code);
}

function cancelledByClient(): ConnectError {
  return new ConnectError("the client cancelled the call (RST_STREAM)", Code.Canceled);
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
  // The one-message request body (readSingleMessage): made only when the body is not one chunk holding exactly one
  // envelope (the usual unary request).
  private splitter: EnvelopeSplitter | undefined;
  private found: Envelope | undefined;
  private readMaxBytes = 0;
  private kind = "";
  private resolveBody: ((envelope: Envelope) => void) | undefined;
  private rejectBody: ((error: unknown) => void) | undefined;

  constructor(
    private readonly stream: ServerHttp2Stream,
    readonly context: LeanHandlerContext,
    private readonly compression: GrpcCompression | null,
    private readonly closeUnread: boolean,
    private readonly mapError: (error: unknown) => ConnectError,
  ) {
    (stream as CallStream)[kCall] = this;
    stream.on("close", onCallStreamClose);
  }

  /** Ends the call with DEADLINE_EXCEEDED after `timeoutMs` (connect's deadline error). */
  startDeadline(timeoutMs: number): void {
    this.timer = setTimeout(
      () => this.fail(new ConnectError("the operation timed out", Code.DeadlineExceeded)),
      Math.min(timeoutMs, 2 ** 31 - 1),
    );
  }

  /**
   * Reads the whole request body of a unary or server-streaming call and resolves to its one envelope. Rejects as
   * connect does: no message or a second one is UNIMPLEMENTED, a truncated one INVALID_ARGUMENT, an oversized one
   * RESOURCE_EXHAUSTED (at once, from its prefix). Never settles when the call ends first (deadline, reset): nothing
   * is left to run for it.
   */
  readSingleMessage(readMaxBytes: number, kind: string): Promise<Envelope> {
    this.readMaxBytes = readMaxBytes;
    this.kind = kind;
    const body = new Promise<Envelope>((resolve, reject) => {
      this.resolveBody = resolve;
      this.rejectBody = reject;
    });
    this.stream.on("data", onCallStreamData);
    this.stream.on("end", onCallStreamEnd);
    return body;
  }

  /** @internal A chunk of the request body (listener of the stream). */
  bodyData(chunk: Buffer): void {
    if (this.rejectBody === undefined) return;
    if (this.splitter === undefined && this.found === undefined && chunk.length >= 5) {
      const length = chunk.readUInt32BE(1);
      if (length > this.readMaxBytes) {
        this.settleBody(tooLargeError(length, this.readMaxBytes));
        return;
      }
      if (chunk.length === 5 + length) {
        this.found = { flags: chunk[0]!, data: chunk.subarray(5) };
        return;
      }
    }
    this.splitter ??= new EnvelopeSplitter(this.readMaxBytes);
    let envelopes: Envelope[];
    try {
      envelopes = this.splitter.push(chunk);
    } catch (error) {
      this.settleBody(error);
      return;
    }
    for (const envelope of envelopes) {
      if (this.found !== undefined) {
        this.settleBody(
          new ConnectError(`protocol error: received extra input message for ${this.kind} method`, Code.Unimplemented),
        );
        return;
      }
      this.found = envelope;
    }
  }

  /** @internal The request body ended (its client half-closed), or the stream closed before it did. */
  bodyEnded(): void {
    const reject = this.rejectBody;
    if (reject === undefined) return;
    const partial = this.splitter?.partial ?? false;
    if (this.found !== undefined && !partial) {
      const resolve = this.resolveBody!;
      this.settleBody(undefined);
      resolve(this.found);
      return;
    }
    this.settleBody(undefined);
    const kind = this.kind;
    // A body that ended short may have been cut by the client's RST_STREAM (a cancel): see endedByReset.
    void endedByReset(this.stream).then((reset) => {
      if (reset) reject(cancelledByClient());
      else if (partial) reject(incompleteEnvelopeError());
      else reject(new ConnectError(`protocol error: missing input message for ${kind} method`, Code.Unimplemented));
    });
  }

  /** Stops reading the body: rejects with `error` when there is one. Later chunks and ends are ignored. */
  private settleBody(error: unknown): void {
    const reject = this.rejectBody;
    this.resolveBody = undefined;
    this.rejectBody = undefined;
    if (error !== undefined) reject?.(error);
  }

  /** @internal The stream closed: a client reset or the end of an answered call. */
  streamClosed(): void {
    if (!this.done) {
      this.done = true;
      this.cleanup(resetError(this.stream.rstCode));
    }
    // A stream reset before its body ended: the call is cancelled above; the read just stops.
    this.bodyEnded();
  }

  private cleanup(reason: unknown): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.context.abort(reason);
    // A body still being read when the call ends (deadline) is read no further; see kCall.
    this.resolveBody = undefined;
    this.rejectBody = undefined;
    (this.stream as CallStream)[kCall] = undefined;
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
    const stream = this.stream as CallStream;
    if (!stream.destroyed && !stream.closed) {
      const trailer = this.context.peekResponseTrailer();
      stream[kTrailers] = trailer === undefined ? OK_TRAILERS : okTrailers(trailer);
      this.headersSent = true;
      const header = this.context.peekResponseHeader();
      let headers = OK_HEADERS;
      if (header !== undefined || this.compression !== null) {
        headers = copyHeaders(header, { ":status": 200, "content-type": RESPONSE_CONTENT_TYPE });
        if (this.compression !== null) headers["grpc-encoding"] = this.compression.name;
      }
      stream.respond(headers, RESPOND_WITH_TRAILERS);
      // `on`, not `once`: a stream asks for its trailers once, and once() would wrap the listener (an allocation).
      stream.on("wantTrailers", onTrailersWanted);
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
