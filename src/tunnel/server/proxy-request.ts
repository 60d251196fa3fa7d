// One request from a public entry: rule, bearer check, agent pick, standby stream, exchange, accounting.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { Code, StreamgateError } from "../../errors/index.js";
import type { TunnelMetrics } from "../../observability/metrics.js";
import { matchServerRule, type ServerRule, type ServerRules, type UpstreamSpec } from "../rules/index.js";
import type { ResponseSink, UpstreamExchange } from "../upstream/exchange.js";
import { GrpcMessageScanner } from "../upstream/grpc-message-scanner.js";
import { upstreamProtocolError } from "../upstream/upstream-errors.js";
import type { AgentRegistry } from "./agent-registry.js";
import type { AgentSession } from "./agent-session.js";
import { httpStatusOfError } from "./entry-sinks.js";
import { buildRequestHead, type IncomingRequest, requestFacts } from "./request-head.js";
import { deadlineExceeded, runTunnelExchange } from "./tunnel-exchange.js";

/** Forwards a request to a rule's direct upstream (no agent), or null when the forwarders are not available. */
export type DirectForwarder = (upstream: UpstreamSpec, exchange: UpstreamExchange, sink: ResponseSink) => Promise<void>;

export interface ProxyContext {
  rules(): ServerRules;
  registry: AgentRegistry;
  metrics: TunnelMetrics | null;
  /** Largest gRPC message either way. */
  maxMessageBytes: number;
  /** Longest wait for a standby stream before UNAVAILABLE. */
  standbyWaitMs: number;
  direct: DirectForwarder | null;
  /** Requests being served, for stats and drain. */
  inFlight: Set<AbortController>;
  /** Requests waiting for a standby. */
  pending: { count: number };
}

/** The request as the entry received it, plus its body and cancellation. */
export interface ProxyInput {
  request: IncomingRequest;
  grpc: boolean;
  body: AsyncIterable<Uint8Array> | null;
  /** grpc-timeout in ms, or null. */
  timeoutMs: number | null;
  /**
   * Aborted by the entry when the client goes away; proxyRequest aborts it too on shutdown. Owned by this request
   * (one controller per request, not one per layer).
   */
  controller: AbortController;
  sink: ResponseSink;
}

const noRule = (grpc: boolean, path: string) =>
  new StreamgateError(grpc ? Code.UNIMPLEMENTED : Code.NOT_FOUND, `no tunnel rule matches ${path}`, {
    reason: "TUNNEL_NO_RULE",
  });

const noAgent = (group: string, detail: string) =>
  new StreamgateError(Code.UNAVAILABLE, `no agent of group ${JSON.stringify(group)} can take the request: ${detail}`, {
    reason: "TUNNEL_NO_AGENT",
  });

/** Proxies one request; resolves when the client got its whole answer (or went away). Never throws. */
export async function proxyRequest(context: ProxyContext, input: ProxyInput): Promise<void> {
  const startedAt = Date.now();
  const { request, grpc, sink } = input;
  const abort = input.controller;
  context.inFlight.add(abort);
  const labels = { rule: "", group: "", agent: "", grpc_method: grpc ? grpcMethodLabel(request.path) : "", status: "" };
  let session: AgentSession | null = null;
  let bytesIn = 0;
  let bytesOut = 0;
  const fail = async (error: StreamgateError) => {
    labels.status = grpc ? codeLabel(error.code) : String(httpStatusOfError(error));
    await sink.error(error).catch(() => undefined);
  };
  try {
    const rules = context.rules();
    const rule = matchServerRule(rules, requestFacts(request, grpc));
    if (rule === null) return await fail(noRule(grpc, request.path));
    labels.rule = rule.name;
    if (!bearerAllowed(rule, request.headers.authorization)) {
      return await fail(
        new StreamgateError(Code.UNAUTHENTICATED, `rule ${rule.name} requires a valid bearer token`, {
          reason: "TUNNEL_BAD_BEARER",
        }),
      );
    }
    const timeouts = [input.timeoutMs, rule.timeoutMs].filter((value): value is number => value !== null);
    const deadlineAtMs = timeouts.length === 0 ? null : startedAt + Math.min(...timeouts);
    const body = input.body === null ? null : grpc ? scanned(input.body, context.maxMessageBytes) : input.body;
    const target = rule.target;
    labels.group = target.kind === "group" ? target.group : `upstream:${target.upstream.name}`;
    const { head, traceId } = buildRequestHead(request, {
      rule: rule.name,
      group: target.kind === "group" ? target.group : "",
      dropAuthorization: rule.bearerTokens !== null,
    });

    if (target.kind === "upstream") {
      if (context.direct === null) {
        return await fail(
          new StreamgateError(
            Code.UNIMPLEMENTED,
            `rule ${rule.name} targets a direct upstream, which this build cannot forward to`,
            {
              reason: "TUNNEL_DIRECT_UNSUPPORTED",
            },
          ),
        );
      }
      if (deadlineAtMs !== null) head.timeoutMs = BigInt(Math.max(1, deadlineAtMs - Date.now()));
      const counting: ResponseSink = {
        ...sink,
        data: (bytes) => {
          bytesOut += bytes.length;
          return sink.data(bytes);
        },
        head: async (value) => {
          labels.status = grpc ? (value.endStream ? statusOf(value.headers) : "") : String(value.status);
          try {
            await sink.head(value);
          } catch (error) {
            // A head the sink refused was not written (the forwarder stops on the rejection): answer the client.
            const refused = StreamgateError.from(error);
            if (refused.reason !== "TUNNEL_CLIENT_GONE") {
              await counting.error(
                refused.reason === "TUNNEL_BAD_RESPONSE"
                  ? upstreamProtocolError(target.upstream.name, refused.message)
                  : refused,
              );
            }
            throw error;
          }
        },
        trailers: (headers) => {
          if (grpc) labels.status = statusOf(headers);
          return sink.trailers(headers);
        },
        error: (error) => {
          labels.status = grpc ? codeLabel(error.code) : String(httpStatusOfError(error));
          return sink.error(error);
        },
      };
      await context.direct(
        target.upstream,
        { head, body: body ?? empty(), signal: abort.signal, receivedAtMs: Date.now(), traceId },
        counting,
      );
      return;
    }

    const group = target.group;
    context.metrics?.inFlight.inc({ group });
    try {
      const tunnel = await takeStream(context, group, deadlineAtMs, abort.signal);
      if (tunnel === null) {
        if (abort.signal.aborted) {
          labels.status = "cancelled";
          return;
        }
        // The deadline passed while waiting for a stream: that is the client's deadline, not a missing agent.
        if (deadlineAtMs !== null && Date.now() >= deadlineAtMs) {
          context.metrics?.deadlineMisses.inc({ group });
          return await fail(deadlineExceeded());
        }
        const members = context.registry.members(group);
        return await fail(
          noAgent(group, members.length === 0 ? "none is connected" : "none had a free tunnel stream in time"),
        );
      }
      session = tunnel.session;
      labels.agent = session.clientId;
      tunnel.claim();
      session.begin(tunnel);
      let reusable = false;
      try {
        const outcome = await runTunnelExchange(
          tunnel,
          { head, requestId: nextRequestId(), traceId, body, deadlineAtMs, signal: abort.signal },
          sink,
        );
        reusable = outcome.reusable;
        bytesIn = outcome.bytesIn;
        bytesOut = outcome.bytesOut;
        // Failures of a session that ended (agent killed, connection lost) say nothing about a reconnected agent.
        if (!session.ended) context.registry.recordResult(session, outcome.agentUnavailable);
        if (outcome.cancelled) {
          labels.status = "cancelled";
          context.metrics?.cancels.inc({ group });
        } else if (outcome.deadlineExceeded) {
          labels.status = grpc ? codeLabel(Code.DEADLINE_EXCEEDED) : "504";
          context.metrics?.deadlineMisses.inc({ group });
        } else if (outcome.error !== null) {
          labels.status = grpc ? codeLabel(outcome.error.code) : String(httpStatusOfError(outcome.error));
        } else {
          labels.status = grpc ? codeLabel(outcome.grpcStatus ?? Code.UNKNOWN) : String(outcome.httpStatus);
        }
      } finally {
        session.end(tunnel);
        if (reusable) tunnel.recycle();
      }
    } finally {
      context.metrics?.inFlight.dec({ group });
    }
  } catch (error) {
    await fail(StreamgateError.from(error));
  } finally {
    context.inFlight.delete(abort);
    const metrics = context.metrics;
    if (metrics !== null) {
      metrics.requests.inc(labels);
      metrics.duration.observe({ rule: labels.rule, group: labels.group }, (Date.now() - startedAt) / 1000);
      if (bytesIn > 0) metrics.bytes.inc({ group: labels.group, direction: "in" }, bytesIn);
      if (bytesOut > 0) metrics.bytes.inc({ group: labels.group, direction: "out" }, bytesOut);
    }
  }
}

/**
 * Request ids: this process's random prefix and a counter, unique per server process and short (every tunnel
 * frame of a request carries its id, and both ends decode it per frame); a UUID per request cost more.
 */
const REQUEST_ID_PREFIX = randomBytes(6).toString("base64url");
let requestCounter = 0;
function nextRequestId(): string {
  requestCounter += 1;
  return `${REQUEST_ID_PREFIX}.${requestCounter.toString(36)}`;
}

/** Longest wait for a standby, in multiples of standbyWaitMs, while the agent keeps attaching new ones. */
const EXTENDED_WAIT_FACTOR = 5;

/**
 * A standby stream of some agent of `group`: tries the balancer's choice, waiting for it to open a
 * stream, then the others, within `standbyWaitMs` (and the deadline). Null when none came.
 */
async function takeStream(context: ProxyContext, group: string, deadlineAtMs: number | null, signal: AbortSignal) {
  const deadline = deadlineAtMs ?? Number.POSITIVE_INFINITY;
  // A burst (a thousand calls at once) queues behind the agent opening streams: while it keeps attaching
  // new ones the wait goes on, up to EXTENDED_WAIT_FACTOR times standbyWaitMs; a silent agent fails fast.
  const hardStop = Math.min(Date.now() + context.standbyWaitMs * EXTENDED_WAIT_FACTOR, deadline);
  let giveUpAt = Math.min(Date.now() + context.standbyWaitMs, deadline);
  const tried = new Set<AgentSession>();
  context.pending.count++;
  try {
    for (;;) {
      if (signal.aborted) return null;
      let session = context.registry.pick(group, tried);
      if (session === null) {
        // Every session was tried once: try again while time is left (one may have got a standby meanwhile).
        tried.clear();
        session = context.registry.pick(group);
        if (session === null) return null;
      }
      tried.add(session);
      const remaining = giveUpAt - Date.now();
      const perSession = Math.max(0, Math.min(remaining, Math.ceil(context.standbyWaitMs / 4)));
      const stream = await session.takeStandby(perSession, signal);
      if (stream !== null && !stream.closed) return stream;
      if (stream !== null) continue;
      const now = Date.now();
      if (now >= giveUpAt) {
        const progressing = session.lastAttachAtMs > now - context.standbyWaitMs;
        if (!progressing || now >= hardStop) return null;
        giveUpAt = Math.min(now + context.standbyWaitMs, hardStop);
      }
    }
  } finally {
    context.pending.count--;
  }
}

/** `body` with each chunk checked by a message-size scanner (a plain wrapper: no async generator per request). */
function scanned(body: AsyncIterable<Uint8Array>, maxMessageBytes: number): AsyncIterable<Uint8Array> {
  return {
    [Symbol.asyncIterator]() {
      const scanner = new GrpcMessageScanner(maxMessageBytes, "request");
      const inner = body[Symbol.asyncIterator]();
      const check = (result: IteratorResult<Uint8Array>) => {
        if (result.done !== true) scanner.push(result.value);
        return result;
      };
      return {
        next: () => inner.next().then(check),
        return: (value?: unknown) =>
          inner.return?.(value) ?? Promise.resolve({ value: undefined, done: true } as IteratorResult<Uint8Array>),
      };
    },
  };
}

async function* empty(): AsyncIterable<Uint8Array> {}

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

function bearerAllowed(rule: ServerRule, authorization: string | string[] | undefined): boolean {
  if (rule.bearerTokens === null) return true;
  const match = typeof authorization === "string" ? /^Bearer\s+(.+)$/i.exec(authorization.trim()) : null;
  if (match === null) return false;
  const presented = digest(match[1]!);
  let allowed = false;
  for (const token of rule.bearerTokens) if (timingSafeEqual(presented, digest(token))) allowed = true;
  return allowed;
}

const CODE_NAMES = Object.fromEntries(Object.entries(Code).map(([name, value]) => [value, name]));

function codeLabel(code: number): string {
  return CODE_NAMES[code] ?? String(code);
}

function statusOf(headers: readonly { name: string; value: string }[]): string {
  const status = headers.find((header) => header.name === "grpc-status")?.value;
  return status === undefined ? "UNKNOWN" : codeLabel(Number(status));
}

/** Distinct gRPC methods labelled before the rest are counted as "other" (bounds metric cardinality). */
const MAX_METHOD_LABELS = 500;
const methodLabels = new Set<string>();
/** Label per request path seen (most calls repeat a few paths): no split and regex per request. */
const labelByPath = new Map<string, string>();

function grpcMethodLabel(path: string): string {
  const known = labelByPath.get(path);
  if (known !== undefined) return known;
  const method = path.split("?")[0]!.replace(/^\//, "");
  let label = method;
  if (!methodLabels.has(method)) {
    if (methodLabels.size >= MAX_METHOD_LABELS || method.length > 200) label = "other";
    else methodLabels.add(method);
  }
  // Bounded like the labels: past it, paths are worked out each time.
  if (labelByPath.size < MAX_METHOD_LABELS * 2) labelByPath.set(path, label);
  return label;
}
