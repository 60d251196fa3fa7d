// Forwards one exchange to an HTTP/2 backend (gRPC, or HTTP over h2c/TLS), streaming both ways with backpressure.
import { type ClientHttp2Session, type ClientHttp2Stream, constants, type IncomingHttpHeaders } from "node:http2";
import type { Writable } from "node:stream";
import { Code, StreamgateError } from "../../errors/index.js";
import { childTraceparent, formatTraceparent } from "../../observability/trace-context.js";
import {
  endToEndHeaders,
  formatGrpcTimeout,
  type HeaderEntry,
  headerEntries,
  type ResponseSink,
  type UpstreamExchange,
  WRITTEN,
} from "./exchange.js";
import { GrpcMessageScanner } from "./grpc-message-scanner.js";
import { type Http2SessionPool, http2Origin } from "./http2-sessions.js";
import { startForwardRelay } from "./sink-relay.js";
import {
  codeOfHttpStatus,
  codeOfRstStream,
  failureDetail,
  upstreamCancelled,
  upstreamDeadline,
  upstreamProtocolError,
  upstreamUnavailable,
} from "./upstream-errors.js";

/** Response chunks that may wait in the relay before the backend stream is paused. */
const RELAY_AHEAD = 4;

/** How one forward ended, for passive health and load accounting. */
export interface ForwardOutcome {
  /** The backend could not be reached at all (connect/TLS failure): the address is likely down. */
  connectFailed: boolean;
}

export interface Http2ForwardOptions {
  pool: Http2SessionPool;
  /** gRPC semantics: te/grpc-timeout headers, trailers required, message size scanning. */
  grpc: boolean;
  /** Largest gRPC message either way (grpc only). */
  maxMessageBytes: number;
  /** Names the backend in errors, e.g. `orders (h2c://10.0.0.5:50051)`. */
  target: string;
}

/** Forwards `exchange` to the HTTP/2 backend at `address`; resolves once the sink got its terminal call. */
export function forwardHttp2(
  exchange: UpstreamExchange,
  address: string,
  sink: ResponseSink,
  options: Http2ForwardOptions,
): Promise<ForwardOutcome> {
  const outcome: ForwardOutcome = { connectFailed: false };
  let stream: ClientHttp2Stream | undefined;
  let origin = "";
  let session: ClientHttp2Session | undefined;
  const cancel = () => {
    if (stream === undefined || stream.destroyed || stream.closed) return;
    stream.close(constants.NGHTTP2_CANCEL);
    if (session !== undefined) options.pool.noteReset(session);
  };
  const { relay, fail, remaining, settled } = startForwardRelay(exchange, sink, options.target, cancel);
  if (settled) return relay.done.then(() => outcome);

  try {
    origin = http2Origin(address);
    ({ session, stream } = options.pool.request(origin, requestHeaders(exchange, address, options.grpc, remaining), {
      endStream: exchange.head.endStream,
    }));
  } catch (error) {
    void relay.error(upstreamUnavailable(options.target, failureDetail(error), error));
    return relay.done.then(() => outcome);
  }
  const active = stream;

  const onAbort = () => fail(upstreamCancelled(options.target));
  exchange.signal.addEventListener("abort", onAbort, { once: true });
  const timer =
    remaining === undefined ? undefined : setTimeout(() => fail(upstreamDeadline(options.target, false)), remaining);
  const scanner = options.grpc ? new GrpcMessageScanner(options.maxMessageBytes, "response") : undefined;

  let responded = false;
  let ended = false;
  let relaying = 0;
  let trailers: HeaderEntry[] = [];
  let streamError: unknown;

  active.on("response", (headers: IncomingHttpHeaders, flags: number) => {
    responded = true;
    const status = Number(headers[":status"] ?? 0);
    const entries = endToEndHeaders(headerEntries(headers as Record<string, string | string[] | undefined>));
    const endStream = (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    if (options.grpc && status !== 200) {
      // A non-200 answer to gRPC (a proxy's error page): reported as gRPC clients do (HTTP status → code).
      fail(
        new StreamgateError(codeOfHttpStatus(status), `upstream ${options.target} answered HTTP ${status}`, {
          reason: "TUNNEL_UPSTREAM_PROTOCOL",
        }),
      );
      return;
    }
    // A sink that took the head at once (WRITTEN) needs no pause: the body follows in this turn.
    const headed = relay.head({ status, headers: entries, endStream });
    if (headed === WRITTEN) return;
    active.pause();
    void headed.then(() => {
      if (!relay.closed) active.resume();
    });
  });
  active.on("data", (chunk: Buffer) => {
    if (relay.closed) return;
    if (scanner !== undefined) {
      try {
        scanner.push(chunk);
      } catch (error) {
        fail(error as StreamgateError);
        return;
      }
    }
    // Up to RELAY_AHEAD chunks may wait in the relay: pausing and resuming the backend stream on every
    // chunk costs more than the chunk itself; beyond that the backend is paused (flow control holds it).
    const sent = relay.data(chunk);
    if (sent === WRITTEN) return;
    relaying++;
    if (relaying >= RELAY_AHEAD && !active.isPaused()) active.pause();
    void sent.then(() => {
      relaying--;
      if (relaying < RELAY_AHEAD && active.isPaused() && !relay.closed) active.resume();
    });
  });
  active.on("trailers", (received: IncomingHttpHeaders) => {
    trailers = headerEntries(received as Record<string, string | string[] | undefined>).filter(
      ({ name }) => !name.startsWith(":"),
    );
  });
  active.on("end", () => {
    // Ended without a response (a reset or refused stream, a closing session): 'close' tells the client why.
    if (!responded) return;
    ended = true;
    if (relay.closed) return;
    if (options.grpc && !trailers.some(({ name }) => name === "grpc-status")) {
      fail(upstreamProtocolError(options.target, "the gRPC response ended without grpc-status trailers"));
      return;
    }
    void relay.trailers(trailers);
  });
  active.on("error", (error) => {
    streamError = error;
  });
  active.on("close", () => {
    clearTimeout(timer);
    exchange.signal.removeEventListener("abort", onAbort);
    if (ended || relay.closed) return;
    if (!responded && streamError !== undefined) {
      outcome.connectFailed = true;
      fail(upstreamUnavailable(options.target, failureDetail(streamError), streamError));
      return;
    }
    const code = active.rstCode ?? constants.NGHTTP2_INTERNAL_ERROR;
    const detail =
      streamError !== undefined ? failureDetail(streamError) : `the backend reset the stream (HTTP/2 code ${code})`;
    const mapped = codeOfRstStream(code);
    fail(
      mapped === Code.INTERNAL || mapped === Code.CANCELLED
        ? upstreamUnavailable(options.target, detail, streamError)
        : new StreamgateError(mapped, `upstream ${options.target}: ${detail}`, { reason: "TUNNEL_UPSTREAM_RESET" }),
    );
  });

  if (!exchange.head.endStream) void pumpRequest(exchange, active, options, fail);
  return relay.done.then(() => {
    clearTimeout(timer);
    exchange.signal.removeEventListener("abort", onAbort);
    return outcome;
  });
}

/** Writes the request body to the backend stream, waiting for `drain` whenever its buffer is full. */
async function pumpRequest(
  exchange: UpstreamExchange,
  stream: ClientHttp2Stream,
  options: Http2ForwardOptions,
  fail: (error: StreamgateError) => void,
): Promise<void> {
  const scanner = options.grpc ? new GrpcMessageScanner(options.maxMessageBytes, "request") : undefined;
  try {
    for await (const chunk of exchange.body) {
      if (stream.destroyed || stream.writableEnded) return;
      scanner?.push(chunk);
      if (!stream.write(chunk)) await writable(stream);
    }
    if (!stream.destroyed && !stream.writableEnded) stream.end();
  } catch (error) {
    fail(StreamgateError.from(error));
  }
}

/** Resolves on `drain`, or when the stream closes (the caller then sees `destroyed`). */
export function writable(stream: Writable): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      stream.removeListener("drain", done);
      stream.removeListener("close", done);
      resolve();
    };
    stream.once("drain", done);
    stream.once("close", done);
  });
}

function requestHeaders(
  exchange: UpstreamExchange,
  address: string,
  grpc: boolean,
  remaining: number | undefined,
): Record<string, string | string[]> {
  const { head } = exchange;
  // One pass: endToEndHeaders less grpc-timeout, traceparent and content-length (set below), into a header object.
  const entries = endToEndHeaders(head.headers);
  const headers: Record<string, string | string[]> = {};
  for (const { name, value } of entries) {
    if (name === "grpc-timeout" || name === "traceparent" || name === "content-length") continue;
    const lower = name.toLowerCase();
    const existing = headers[lower];
    if (existing === undefined) headers[lower] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else headers[lower] = [existing, value];
  }
  const incoming = head.headers.find(({ name }) => name === "traceparent")?.value;
  const parent =
    incoming ?? (exchange.traceId ? { traceId: exchange.traceId, parentId: "0000000000000001", flags: 1 } : undefined);
  headers[":method"] = head.method || "POST";
  headers[":path"] = head.path || "/";
  headers[":authority"] = head.authority || new URL(address).host;
  headers.traceparent = formatTraceparent(childTraceparent(parent));
  if (grpc) {
    headers.te = "trailers";
    headers["content-type"] ??= "application/grpc";
    if (remaining !== undefined) headers["grpc-timeout"] = formatGrpcTimeout(remaining);
  } else {
    const length = head.headers.find(({ name }) => name === "content-length");
    if (length !== undefined) headers["content-length"] = length.value;
  }
  return headers;
}
