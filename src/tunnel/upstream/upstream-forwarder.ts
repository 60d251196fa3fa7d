// Carries exchanges to named upstreams: picks a healthy address, then the gRPC, HTTP or WebSocket forwarder.
import { Agent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { Code, StreamgateError } from "../../errors/index.js";
import { Protocol } from "../../gen/streamgate/tunnel/v1/tunnel_pb.js";
import { createDeadlineSignal } from "../../signals/index.js";
import type { UpstreamSpec } from "../rules/index.js";
import { AlpnCache, AlpnProtocol } from "./alpn-cache.js";
import { type ResponseSink, remainingMs, type UpstreamExchange } from "./exchange.js";
import { DEFAULT_MAX_MESSAGE_BYTES } from "./grpc-message-scanner.js";
import { forwardHttp1 } from "./http1-forwarder.js";
import { type ForwardOutcome, forwardHttp2 } from "./http2-forwarder.js";
import {
  addressScheme,
  DEFAULT_MAX_STREAMS_PER_SESSION,
  Http2SessionPool,
  type UpstreamTlsOptions,
} from "./http2-sessions.js";
import { failureDetail, upstreamCancelled, upstreamDeadline, upstreamUnavailable } from "./upstream-errors.js";
import { type AddressStatus, UpstreamPool } from "./upstream-pool.js";

export interface UpstreamForwarderOptions {
  /** Largest gRPC message carried either way. Default 4 MiB ({@link DEFAULT_MAX_MESSAGE_BYTES}). */
  maxMessageBytes?: number;
  /** TLS for `https://` backends. Default: system CAs, verification on. */
  tls?: UpstreamTlsOptions;
  /**
   * Streams one HTTP/2 connection to a backend carries at most; more open further connections to it.
   * Default {@link DEFAULT_MAX_STREAMS_PER_SESSION} (1,000: see there why).
   */
  maxStreamsPerBackendSession?: number;
  /** Called (with every address's status) when a health probe changes an address's verdict. */
  onHealthChange?: (statuses: AddressStatus[]) => void;
}

/** Forwards exchanges to upstreams and tracks their health. */
export interface UpstreamForwarder {
  /**
   * Forwards `exchange` to one healthy address of `upstream`, writing the response to `sink`.
   * Never rejects: failures reach the sink as `error` (UNAVAILABLE when no address is healthy).
   */
  forward(exchange: UpstreamExchange, upstream: UpstreamSpec, sink: ResponseSink): Promise<void>;
  /** Declares the upstreams in use: starts their probes, stops those of upstreams no longer listed. */
  setUpstreams(upstreams: readonly UpstreamSpec[]): void;
  /** Every known address's health. */
  health(): AddressStatus[];
  /** Requests in progress per upstream and address. */
  outstanding(): Record<string, Record<string, number>>;
  /** Runs a probe round on every upstream with health checks now. */
  probeNow(): Promise<void>;
  /** Stops probes and closes backend connections (live streams finish). */
  close(): void;
}

export function createUpstreamForwarder(options: UpstreamForwarderOptions = {}): UpstreamForwarder {
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const sessions = new Http2SessionPool({
    tls: options.tls,
    maxStreamsPerSession: options.maxStreamsPerBackendSession,
  });
  const agent = new Agent({ keepAlive: true });
  const secureAgent = new HttpsAgent({
    keepAlive: true,
    ca: sessions.tls.ca,
    rejectUnauthorized: sessions.tls.rejectUnauthorized,
  });
  const alpn = new AlpnCache(sessions);
  const pools = new Map<string, UpstreamPool>();
  const health = () => [...pools.values()].flatMap((pool) => pool.statuses());
  const notify = () => options.onHealthChange?.(health());

  const poolOf = (config: UpstreamSpec): UpstreamPool => {
    const existing = pools.get(config.name);
    // The same rules object on every request until the rules file changes: identity first, no comparison.
    if (existing !== undefined && (existing.config === config || sameConfig(existing.config, config))) return existing;
    existing?.close();
    const pool = new UpstreamPool(config, sessions, notify);
    pools.set(config.name, pool);
    return pool;
  };

  return {
    async forward(exchange, upstream, sink) {
      const pool = poolOf(upstream);
      const address = pool.pick();
      if (address === undefined) {
        const details = pool
          .statuses()
          .map((status) => `${status.address}: ${status.detail || "not serving"}`)
          .join("; ");
        await sink
          .error(
            new StreamgateError(Code.UNAVAILABLE, `upstream ${upstream.name} has no healthy address (${details})`, {
              reason: "TUNNEL_UPSTREAM_UNAVAILABLE",
            }),
          )
          .catch(() => undefined);
        return;
      }
      pool.acquire(address);
      let outcome: ForwardOutcome = { connectFailed: false };
      try {
        outcome = await forwardTo(exchange, upstream, address, sink);
      } finally {
        pool.release(address, outcome.connectFailed);
      }
    },
    setUpstreams(upstreams) {
      const names = new Set(upstreams.map((upstream) => upstream.name));
      for (const [name, pool] of pools) {
        if (names.has(name)) continue;
        pool.close();
        pools.delete(name);
      }
      for (const upstream of upstreams) poolOf(upstream);
    },
    health,
    outstanding() {
      return Object.fromEntries([...pools].map(([name, pool]) => [name, pool.outstanding()]));
    },
    async probeNow() {
      await Promise.all([...pools.values()].map((pool) => pool.probeNow()));
    },
    close() {
      for (const pool of pools.values()) pool.close();
      pools.clear();
      alpn.close();
      // Destroyed, not closed gracefully: the agent closes the forwarder after its tunnel connections drained or
      // went, so a stream still open upstream has nobody left to answer. A graceful close would wait for it; its
      // (unref'd) connection then stayed open for good, and so did the backend's side of it (half-closed).
      sessions.destroy();
      agent.destroy();
      secureAgent.destroy();
    },
  };

  function forwardTo(
    exchange: UpstreamExchange,
    upstream: UpstreamSpec,
    address: string,
    sink: ResponseSink,
  ): Promise<ForwardOutcome> {
    const target = `${upstream.name} (${address})`;
    const scheme = addressScheme(address);
    if (exchange.head.protocol === Protocol.WEBSOCKET) {
      if (scheme === "h2c:")
        return unsupported(sink, `WebSocket needs an http:// or https:// address, ${target} is h2c`);
      return forwardHttp1(exchange, address, sink, { agent, secureAgent, websocket: true, target });
    }
    // gRPC needs HTTP/2; plain HTTP uses it for h2c://, HTTP/1.1 for http://, and what ALPN picks for https://.
    const grpc = upstream.protocol === "grpc" || exchange.head.protocol === Protocol.GRPC;
    if (grpc || scheme === "h2c:") {
      return forwardHttp2(exchange, address, sink, { pool: sessions, grpc, maxMessageBytes, target });
    }
    if (scheme === "https:") return forwardNegotiated(exchange, address, sink, target);
    return forwardHttp1(exchange, address, sink, { agent, secureAgent, websocket: false, target });
  }

  /** Plain HTTP to an `https://` address: over HTTP/2 when the backend picks `h2` by ALPN, else HTTP/1.1. */
  async function forwardNegotiated(
    exchange: UpstreamExchange,
    address: string,
    sink: ResponseSink,
    target: string,
  ): Promise<ForwardOutcome> {
    let picked = alpn.cached(address);
    let timed = exchange;
    if (picked === undefined) {
      // Time spent probing counts against the deadline: the forwarder subtracts it from here.
      const startedAtMs = Date.now();
      timed = { ...exchange, receivedAtMs: exchange.receivedAtMs ?? startedAtMs };
      const remaining = remainingMs(timed, startedAtMs);
      const deadline = remaining === undefined ? undefined : createDeadlineSignal(exchange.signal, remaining);
      try {
        picked = await alpn.negotiate(address, deadline?.signal ?? exchange.signal);
      } catch (error) {
        // As forwardHttp1 reports a connection that fails before any response.
        await sink.error(upstreamUnavailable(target, failureDetail(error), error)).catch(() => undefined);
        return { connectFailed: true };
      } finally {
        deadline?.dispose();
      }
      if (picked === undefined) {
        const error = exchange.signal.aborted ? upstreamCancelled(target) : upstreamDeadline(target, true);
        await sink.error(error).catch(() => undefined);
        return { connectFailed: false };
      }
    }
    const outcome =
      picked === AlpnProtocol.Http2
        ? await forwardHttp2(timed, address, sink, { pool: sessions, grpc: false, maxMessageBytes, target })
        : await forwardHttp1(timed, address, sink, { agent, secureAgent, websocket: false, target });
    // The backend may have been replaced by one that speaks another version: ask again next time.
    if (outcome.connectFailed) alpn.forget(address);
    return outcome;
  }
}

async function unsupported(sink: ResponseSink, message: string): Promise<ForwardOutcome> {
  await sink
    .error(new StreamgateError(Code.UNIMPLEMENTED, message, { reason: "TUNNEL_UPSTREAM_PROTOCOL" }))
    .catch(() => undefined);
  return { connectFailed: false };
}

function sameConfig(left: UpstreamSpec, right: UpstreamSpec): boolean {
  return (
    left.protocol === right.protocol &&
    left.pick === right.pick &&
    left.addresses.join("\n") === right.addresses.join("\n") &&
    JSON.stringify(left.healthCheck) === JSON.stringify(right.healthCheck)
  );
}
