// Forwards one exchange to an HTTP/1.1 backend: a streamed request/response, or a WebSocket upgrade then raw bytes.
import { type Agent, type ClientRequest, type IncomingMessage, request } from "node:http";
import { type Agent as HttpsAgent, request as secureRequest } from "node:https";
import type { Socket } from "node:net";
import { StreamgateError } from "../../errors/index.js";
import { childTraceparent, formatTraceparent } from "../../observability/trace-context.js";
import {
  endToEndHeaders,
  headerObject,
  type ResponseSink,
  rawHeaderEntries,
  type UpstreamExchange,
} from "./exchange.js";
import { type ForwardOutcome, writable } from "./http2-forwarder.js";
import { startForwardRelay } from "./sink-relay.js";
import { failureDetail, upstreamCancelled, upstreamDeadline, upstreamUnavailable } from "./upstream-errors.js";

export interface Http1ForwardOptions {
  /** Keep-alive agents shared by the forwarder, for `http://` and `https://` addresses. */
  agent: Agent;
  secureAgent: HttpsAgent;
  /** Perform a WebSocket upgrade (PROTOCOL_WEBSOCKET). */
  websocket: boolean;
  /** Names the backend in errors. */
  target: string;
}

/** Forwards `exchange` to the HTTP/1.1 backend at `address` (`http://h:p` or `https://h:p`); resolves after the sink's terminal call. */
export function forwardHttp1(
  exchange: UpstreamExchange,
  address: string,
  sink: ResponseSink,
  options: Http1ForwardOptions,
): Promise<ForwardOutcome> {
  const outcome: ForwardOutcome = { connectFailed: false };
  let req: ClientRequest | undefined;
  let upgraded: Socket | undefined;
  const cancel = () => {
    upgraded?.destroy();
    req?.destroy();
  };
  const { relay, fail, remaining, settled } = startForwardRelay(exchange, sink, options.target, cancel);
  if (settled) return relay.done.then(() => outcome);

  const url = new URL(address);
  const { head } = exchange;
  const keep = options.websocket ? ["upgrade"] : [];
  const entries = endToEndHeaders(head.headers, keep).filter(({ name }) => name !== "traceparent");
  const headers = headerObject(entries);
  headers.host = head.authority || url.host;
  headers.traceparent = formatTraceparent(
    childTraceparent(
      head.headers.find(({ name }) => name === "traceparent")?.value ??
        (exchange.traceId ? { traceId: exchange.traceId, parentId: "0000000000000001", flags: 1 } : undefined),
    ),
  );
  if (options.websocket) {
    headers.connection = "Upgrade";
    headers.upgrade ??= "websocket";
  }
  try {
    const secure = url.protocol === "https:";
    const requestOptions = {
      host: url.hostname,
      port: url.port || (secure ? 443 : 80),
      method: head.method || "GET",
      path: head.path || "/",
      headers,
      setHost: false,
    };
    req = secure
      ? secureRequest({
          ...requestOptions,
          servername: url.hostname,
          ...options.secureAgent.options,
          // An upgraded socket leaves the pool, so WebSocket requests use their own connection.
          agent: options.websocket ? false : options.secureAgent,
        })
      : request({ ...requestOptions, agent: options.websocket ? false : options.agent });
  } catch (error) {
    void relay.error(upstreamUnavailable(options.target, failureDetail(error), error));
    return relay.done.then(() => outcome);
  }
  const active = req;

  const onAbort = () => fail(upstreamCancelled(options.target));
  exchange.signal.addEventListener("abort", onAbort, { once: true });
  let timer =
    remaining === undefined ? undefined : setTimeout(() => fail(upstreamDeadline(options.target, false)), remaining);
  let responded = false;

  const relayReadable = (source: IncomingMessage | Socket) => {
    source.on("data", (chunk: Buffer) => {
      if (relay.closed) return;
      source.pause();
      void relay.data(chunk).then(() => {
        if (!relay.closed) source.resume();
      });
    });
  };

  active.on("response", (res: IncomingMessage) => {
    responded = true;
    const status = res.statusCode ?? 502;
    void relay.head({ status, headers: endToEndHeaders(rawHeaderEntries(res.rawHeaders)), endStream: false });
    relayReadable(res);
    res.on("end", () => void relay.trailers(rawHeaderEntries(res.rawTrailers)));
    res.on("close", () => {
      if (!res.complete) fail(upstreamUnavailable(options.target, "the backend closed the connection mid-response"));
    });
  });
  active.on("upgrade", (res: IncomingMessage, socket: Socket, early: Buffer) => {
    responded = true;
    upgraded = socket;
    clearTimeout(timer);
    timer = undefined;
    const responseHeaders = endToEndHeaders(rawHeaderEntries(res.rawHeaders), ["upgrade"]);
    void relay.head({ status: res.statusCode ?? 101, headers: responseHeaders, endStream: false });
    if (early.length > 0) void relay.data(early);
    relayReadable(socket);
    socket.on("end", () => void relay.trailers([]));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      if (!relay.closed) fail(upstreamUnavailable(options.target, "the backend closed the WebSocket connection"));
    });
    void pumpBody(exchange, socket, fail);
  });
  active.on("error", (error) => {
    if (relay.closed) return;
    if (!responded) outcome.connectFailed = true;
    fail(upstreamUnavailable(options.target, failureDetail(error), error));
  });

  if (options.websocket || head.endStream) active.end();
  else void pumpBody(exchange, active, fail);

  return relay.done.then(() => {
    clearTimeout(timer);
    exchange.signal.removeEventListener("abort", onAbort);
    return outcome;
  });
}

/** Writes the exchange body to `target` honouring backpressure, then ends it. */
async function pumpBody(
  exchange: UpstreamExchange,
  target: ClientRequest | Socket,
  fail: (error: StreamgateError) => void,
): Promise<void> {
  try {
    for await (const chunk of exchange.body) {
      if (target.destroyed || target.writableEnded) return;
      if (!target.write(chunk)) await writable(target);
    }
    if (!target.destroyed && !target.writableEnded) target.end();
  } catch (error) {
    fail(StreamgateError.from(error));
  }
}
