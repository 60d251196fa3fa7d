// Carries one request over an attached tunnel stream: RequestHead, body as Data, response frames into a sink.
import { create } from "@bufbuild/protobuf";
import { Code, StreamgateError } from "../../errors/index.js";
import { type RequestHead, type TunnelFrame, TunnelFrameSchema } from "../../gen/streamgate/tunnel/v1/tunnel_pb.js";
import { encodeFrameIds } from "../protocol/data-frame.js";
import { SENT } from "../protocol/frame-channel.js";
import { type ResponseSink, WRITTEN } from "../upstream/exchange.js";
import type { TunnelStream } from "./tunnel-stream.js";

/** A request as the entry prepared it. */
export interface EntryRequest {
  /** RequestHead without timeout (set when sent). */
  head: RequestHead;
  requestId: string;
  traceId: string;
  /** Request body; null when `head.endStream`. Pulled only as fast as the tunnel accepts it. */
  body: AsyncIterable<Uint8Array> | null;
  /** Absolute deadline (ms since epoch) or null. */
  deadlineAtMs: number | null;
  /** Aborts when the client went away. */
  signal: AbortSignal;
}

/** How an exchange ended, for metrics, ejection and logs. */
export interface ExchangeOutcome {
  /** gRPC status (or the Code of the error) the client got; null for HTTP responses. */
  grpcStatus: number | null;
  /** HTTP status of the response head (0 when none was sent). */
  httpStatus: number;
  /** The agent answered UNAVAILABLE, or was lost: counts towards ejection. */
  agentUnavailable: boolean;
  cancelled: boolean;
  deadlineExceeded: boolean;
  bytesIn: number;
  bytesOut: number;
  /** The error the client got, if any. */
  error: StreamgateError | null;
  /**
   * The exchange ended cleanly on a session with reuse_streams and the stream was left open: the caller hands it
   * back with `tunnel.recycle()` (after `session.end`). False: the stream was ended here.
   */
  reusable: boolean;
}

const closedSignal = Symbol("aborted");
const EMPTY = new Uint8Array(0);

export const agentLost = (detail: string) =>
  new StreamgateError(Code.UNAVAILABLE, `the tunnel agent went away: ${detail}`, { reason: "TUNNEL_AGENT_LOST" });

export const deadlineExceeded = () =>
  new StreamgateError(Code.DEADLINE_EXCEEDED, "deadline exceeded in the tunnel", { reason: "TUNNEL_DEADLINE" });

/** Runs `request` over `tunnel` (already claimed), writing the response into `sink`. Never throws. */
export async function runTunnelExchange(
  tunnel: TunnelStream,
  request: EntryRequest,
  sink: ResponseSink,
): Promise<ExchangeOutcome> {
  const outcome: ExchangeOutcome = {
    grpcStatus: null,
    httpStatus: 0,
    agentUnavailable: false,
    cancelled: false,
    deadlineExceeded: false,
    bytesIn: 0,
    bytesOut: 0,
    error: null,
    reusable: false,
  };
  const grpc = request.head.protocol === 1;
  const ids = encodeFrameIds(request.requestId, request.traceId);
  const frame = (kind: TunnelFrame["kind"]) =>
    create(TunnelFrameSchema, { requestId: request.requestId, traceId: request.traceId, kind });
  // The client going away or the deadline passing interrupts the one wait in progress (and every later one).
  // (Not Promise.race against one long-lived promise: that allocates per frame and keeps a reaction per
  // frame on that promise for the whole life of a long stream.)
  let isStopped = false;
  let interrupt: ((reason: typeof closedSignal) => void) | null = null;
  const stop = (reason: "cancel" | "deadline") => {
    if (reason === "deadline") outcome.deadlineExceeded = true;
    else outcome.cancelled = true;
    isStopped = true;
    const pending = interrupt;
    interrupt = null;
    pending?.(closedSignal);
  };
  const stopped = <T>(work: Promise<T>): Promise<T> => {
    if (isStopped) return Promise.reject(closedSignal);
    return new Promise<T>((resolve, reject) => {
      interrupt = reject;
      work.then(
        (value) => {
          interrupt = null;
          resolve(value);
        },
        (error: unknown) => {
          interrupt = null;
          reject(error);
        },
      );
    });
  };
  const onAbort = () => stop("cancel");
  if (request.signal.aborted) onAbort();
  else request.signal.addEventListener("abort", onAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  let timeoutMs = 0;
  if (request.deadlineAtMs !== null) {
    timeoutMs = request.deadlineAtMs - Date.now();
    if (timeoutMs <= 0) stop("deadline");
    else timer = setTimeout(() => stop("deadline"), timeoutMs);
  }

  let done = false;
  let responseStarted = false;
  const failClient = async (error: StreamgateError) => {
    outcome.error = error;
    if (grpc) outcome.grpcStatus = error.code;
    await sink.error(error).catch(() => undefined);
  };

  try {
    if (outcome.cancelled || outcome.deadlineExceeded) throw closedSignal;
    request.head.timeoutMs = BigInt(Math.max(0, Math.ceil(timeoutMs)));
    const headSent = tunnel.sendRequestHead(ids, request.requestId, request.traceId, request.head);
    if (headSent !== SENT) await stopped(headSent);
    const pump = request.body === null ? Promise.resolve() : pumpBody(request.body);
    pump.catch(() => undefined);

    for (;;) {
      const next = tunnel.nextReady() ?? (await stopped(tunnel.next()));
      if (isStopped) throw closedSignal;
      if (next === null) {
        if (tunnel.sequence.responseBodyComplete) {
          await stopped(sink.trailers([]));
          break;
        }
        throw agentLost("its stream ended before the response was complete");
      }
      const kind = next.kind;
      if (kind.case === "responseHead") {
        responseStarted = true;
        outcome.httpStatus = kind.value.status;
        if (kind.value.endStream) {
          outcome.grpcStatus = grpc ? grpcStatusOf(kind.value.headers) : null;
          outcome.agentUnavailable = outcome.grpcStatus === Code.UNAVAILABLE;
        }
        const written = sink.head({
          status: kind.value.status,
          headers: kind.value.headers,
          endStream: kind.value.endStream,
        });
        if (written !== WRITTEN) await stopped(written);
        if (kind.value.endStream) break;
      } else if (kind.case === "data") {
        outcome.bytesOut += kind.value.data.length;
        if (kind.value.data.length > 0) {
          // A sink that took the bytes at once says so with WRITTEN: no wait, no turn of the event loop.
          const written = sink.data(kind.value.data);
          if (written !== WRITTEN) await stopped(written);
        }
      } else if (kind.case === "trailers") {
        outcome.grpcStatus = grpc ? grpcStatusOf(kind.value.headers) : null;
        outcome.agentUnavailable = outcome.grpcStatus === Code.UNAVAILABLE;
        const written = sink.trailers(kind.value.headers);
        if (written !== WRITTEN) await stopped(written);
        break;
      } else if (kind.case === "error" || kind.case === "cancel") {
        const code = kind.case === "error" ? (kind.value.code as Code) : Code.CANCELLED;
        const message = kind.case === "error" ? kind.value.message : `the agent cancelled: ${kind.value.reason}`;
        outcome.agentUnavailable = code === Code.UNAVAILABLE;
        await failClient(
          new StreamgateError(
            code >= 0 && code <= 16 ? code : Code.UNKNOWN,
            message || "the agent failed the request",
            {
              reason: code === Code.UNAVAILABLE ? "TUNNEL_UPSTREAM_UNAVAILABLE" : "TUNNEL_AGENT_ERROR",
            },
          ),
        );
        done = true;
        tunnel.finish(null);
        return outcome;
      }
    }
    done = true;
    // A clean exchange (response complete, request body ended, no Cancel or Error) leaves the stream for the next request.
    if (tunnel.session.reuseStreams && tunnel.sequence.reusable && !isStopped && !tunnel.closed)
      outcome.reusable = true;
    else tunnel.finish(null);
  } catch (error) {
    done = true;
    if (error === closedSignal) {
      // Tell the agent, so the backend call is cancelled too.
      const reason = outcome.deadlineExceeded ? "deadline exceeded" : "the client cancelled";
      if (tunnel.sequence.isAttached && !tunnel.closed && !tunnel.sequence.finished) {
        try {
          await Promise.race([tunnel.send(frame({ case: "cancel", value: { reason } as never })), delay(1_000)]);
        } catch {
          // The tunnel stream is already gone.
        }
      }
      tunnel.finish(null);
      if (outcome.deadlineExceeded) await failClient(deadlineExceeded());
    } else {
      const failure = StreamgateError.from(error);
      const lost =
        failure.reason === "TUNNEL_STREAM_CLOSED" || failure.reason === "TUNNEL_AGENT_LOST"
          ? agentLost(
              failure.reason === "TUNNEL_AGENT_LOST" ? failure.message.replace(/^.*: /, "") : "its stream broke",
            )
          : failure.code === Code.INVALID_ARGUMENT || failure.code === Code.RESOURCE_EXHAUSTED
            ? new StreamgateError(Code.UNAVAILABLE, `the tunnel agent broke the protocol: ${failure.message}`, {
                reason: "TUNNEL_AGENT_PROTOCOL",
              })
            : failure;
      // A lost stream is not the agent answering UNAVAILABLE: it does not count towards ejection.
      outcome.agentUnavailable = lost.code === Code.UNAVAILABLE && lost.reason !== "TUNNEL_AGENT_LOST";
      tunnel.finish(
        failure.reason === "TUNNEL_AGENT_LOST" || failure.reason === "TUNNEL_STREAM_CLOSED" ? null : failure,
      );
      if (!tunnel.closed) tunnel.destroy();
      await failClient(lost);
    }
  } finally {
    clearTimeout(timer);
    request.signal.removeEventListener("abort", onAbort);
  }
  return outcome;

  async function pumpBody(body: AsyncIterable<Uint8Array>): Promise<void> {
    try {
      for await (const chunk of body) {
        if (done) return;
        outcome.bytesIn += chunk.length;
        const sent = tunnel.sendData(ids, chunk, false);
        if (sent !== SENT) await sent;
      }
      // A client's RST_STREAM ends node's request iterator normally, and the stream reports 'aborted' only
      // later (about 1 ms on an idle machine, more under load; not within one turn of the event loop). Once
      // the response has begun (a streaming call), the half-close waits up to HALF_CLOSE_HOLD_MS for that
      // abort, so a cancel is not forwarded as a half-close (the backend would finish the call OK, and commit
      // whatever it does, while the Cancel is on its way). Before that (every unary call, where grpc-js sends
      // END_STREAM with the message) the end goes at once.
      if (responseStarted && !request.signal.aborted) await abortedOrAfter(request.signal, HALF_CLOSE_HOLD_MS);
      if (!done && !tunnel.sequence.finished && !request.signal.aborted) {
        await tunnel.sendData(ids, EMPTY, true);
      }
    } catch (error) {
      // A body the entry rejected (e.g. a message above the limit) fails the request; a closed tunnel shows in the response loop.
      if (error instanceof StreamgateError && error.reason !== "TUNNEL_STREAM_CLOSED" && !done) {
        done = true;
        outcome.error = error;
        try {
          await tunnel.send(frame({ case: "cancel", value: { reason: error.message } as never }));
        } catch {
          // already closed
        }
        tunnel.finish(null);
        await failClient(error);
        stop("cancel");
        outcome.cancelled = false;
      }
    }
  }
}

/** How long a streaming call's half-close waits for a reset that node reports after the end (see pumpBody). */
const HALF_CLOSE_HOLD_MS = 25;

/** Resolves when `signal` aborts or after `ms`, whichever is first. */
function abortedOrAfter(signal: AbortSignal, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function grpcStatusOf(headers: readonly { name: string; value: string }[]): number {
  for (const header of headers) if (header.name === "grpc-status") return Number(header.value);
  return Code.UNKNOWN;
}
