// Raw gRPC over one node:http2 server stream: response headers, trailers, trailers-only errors, grpc-timeout.
import { constants, type OutgoingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import { Code, StreamgateError } from "../../errors/index.js";
import { grpcStatusHeaders } from "../../http/index.js";

/**
 * Sends `:status 200, content-type: application/grpc` and keeps the stream open for trailers.
 * The HTTP/2 compatibility layer (the listener's request handler) registers its own `wantTrailers`
 * listener that would send empty trailers first; it is removed because this stream is driven raw.
 */
export function respondGrpc(stream: ServerHttp2Stream, headers: OutgoingHttpHeaders = {}): void {
  if (stream.headersSent || stream.destroyed) return;
  stream.removeAllListeners("wantTrailers");
  stream.respond({ ":status": 200, "content-type": "application/grpc", ...headers }, { waitForTrailers: true });
}

/**
 * Ends the call with `trailers` after the data written so far (the headers must have been sent by respondGrpc).
 * With `closeUnread`, a request body still arriving once the trailers are out is not waited for: the stream is
 * reset right after them, and what is left of the body is read and dropped, so an answered call never stays
 * half-open, nor held by its unread body, on its connection (see closeIfUnread).
 */
export function endWithTrailers(stream: ServerHttp2Stream, trailers: OutgoingHttpHeaders, closeUnread = false): void {
  if (stream.destroyed) return;
  if (stream.closed) {
    // Closed by the peer (RST_STREAM NO_ERROR) before the answer: nothing to send, but the body still holds it.
    if (closeUnread) discardBody(stream);
    return;
  }
  if (!stream.headersSent) {
    stream.removeAllListeners("wantTrailers");
    stream.respond({ ":status": 200, "content-type": "application/grpc", ...trailers }, { endStream: true });
    if (closeUnread) closeIfUnread(stream, trailers);
    return;
  }
  if (stream.writableEnded) {
    if (closeUnread) closeIfUnread(stream, trailers);
    return;
  }
  stream.once("wantTrailers", () => {
    if (stream.destroyed || stream.closed) return;
    stream.sendTrailers(trailers);
    if (closeUnread) closeIfUnread(stream, trailers);
  });
  stream.end();
}

/**
 * Closes an answered stream whose request body has not ended (nobody will read it). After an OK status:
 * RST_STREAM NO_ERROR (RFC 9113 §8.1). After an error status: CANCEL, because a client whose body is blocked on
 * flow control (node's http2 client) never closes its stream on NO_ERROR; the status in the trailers stands.
 * Either way the rest of the body is read and dropped (see discardBody).
 */
function closeIfUnread(stream: ServerHttp2Stream, trailers: OutgoingHttpHeaders): void {
  if (stream.destroyed || stream.readableEnded) return;
  const code = String(trailers["grpc-status"] ?? "0") === "0" ? constants.NGHTTP2_NO_ERROR : constants.NGHTTP2_CANCEL;
  // Only once the status frame is written: a reset submitted earlier can overtake it. By then the peer may have
  // ended its body too, and HTTP/2 closed the stream without a reset: the body must still be read out.
  const close = () => {
    if (stream.destroyed || stream.readableEnded) return;
    discardBody(stream);
    if (!stream.closed) stream.close(code);
  };
  if (stream.writableFinished) setImmediate(close);
  else stream.once("finish", () => setImmediate(close));
}

/**
 * Reads and drops what is left of a request body. node destroys a server stream that closed without an error
 * code (both sides ended, or a NO_ERROR reset) only once its body has been read to the end; one the handler
 * stopped reading (a refused first frame leaves a DATA frame or more buffered) stays in its session for good, so
 * the session's close on the peer's GOAWAY waits forever and the connection stays open after the client is gone.
 * A `readable` listener of its own, because a reader left attached (the frame channel's) keeps the stream in
 * paused mode, where `resume()` does nothing; that reader then sees only the end.
 */
function discardBody(stream: ServerHttp2Stream): void {
  if (stream.destroyed || stream.readableEnded) return;
  const readOut = () => {
    while (stream.read() !== null);
  };
  stream.on("readable", readOut);
  readOut();
}

/**
 * Ends the call with a status: trailers-only when nothing was sent yet (`content-type`, `grpc-status`
 * and `grpc-message` in the one HEADERS frame), else trailers after the data.
 */
export function endGrpc(stream: ServerHttp2Stream, error: StreamgateError | null, closeUnread = false): void {
  endWithTrailers(stream, grpcStatusHeaders(error), closeUnread);
}

const TIMEOUT_UNITS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000_001 };

/** Milliseconds of a `grpc-timeout` header (e.g. `100m`, `5S`), or null when absent; throws on a malformed one. */
export function parseGrpcTimeout(value: string | string[] | undefined): number | null {
  if (value === undefined) return null;
  const text = Array.isArray(value) ? value[0] : value;
  const match = /^(\d{1,8})([HMSmun])$/.exec(text ?? "");
  if (match === null) {
    throw new StreamgateError(Code.INVALID_ARGUMENT, `malformed grpc-timeout header ${JSON.stringify(text)}`, {
      reason: "TUNNEL_BAD_TIMEOUT",
    });
  }
  // Up to 8 digits of hours is legal (11,000 years); timers take at most 2^31-1 ms (24.8 days), and a
  // longer one fires at once. Anything longer is as good as no deadline.
  return Math.min(Number(match[1]) * TIMEOUT_UNITS[match[2]!]!, MAX_TIMEOUT_MS);
}

/**
 * Longest deadline kept: 24 days, below the 2^31-1 ms node's timers (and grpc-js's, on the backend) accept,
 * with room for the next hop's grpc-timeout, which rounds up to whole seconds at this size.
 */
export const MAX_TIMEOUT_MS = 24 * 24 * 3_600_000;
