// Options of the tunnel agent, their defaults, and the one place they are checked.
import { hostname } from "node:os";
import { Code, StreamgateError } from "../../errors/index.js";
import type { Logger } from "../../observability/index.js";
import type { AgentRules } from "../rules/index.js";
import type { UpstreamTlsOptions } from "../upstream/index.js";

/** TLS towards the tunnel server (`https://` URLs); certificate and key together enable mTLS. */
export interface AgentTlsOptions {
  /** PEM CA bundle that signed the server's certificate, in addition to the system CAs. Default: system CAs. */
  caPath?: string;
  /** PEM client certificate for mTLS. Default: none. */
  certPath?: string;
  /** PEM private key of `certPath`. */
  keyPath?: string;
}

/** Reconnect backoff: exponential from `initialMs` up to `maxMs`, full jitter (a random delay below the cap). */
export interface AgentReconnectOptions {
  /** Cap of the first retry's delay. Default 500 ms. */
  initialMs?: number;
  /** Largest delay between attempts. Default 30000 ms (a restarting server is retried at least twice a minute). */
  maxMs?: number;
}

export interface TunnelAgentOptions {
  /** The streamgate server's main port: `http://host:port` (h2c) or `https://host:port` (TLS). Required. */
  serverUrl: string;
  /** Agent token; the server's rules scope it to groups. Required. */
  token: string;
  /** The client group this agent serves. Required. */
  group: string;
  /** Stable name of this agent. Default `<hostname>-<pid>`. */
  clientId?: string;
  /** Parsed agent rules. Exactly one of `rules` and `rulesPath`. */
  rules?: AgentRules;
  /** Agent rules file, reloaded when it changes (a bad edit keeps the rules in force and is logged). */
  rulesPath?: string;
  /**
   * Standby streams opened right after registering when the server asks for none. Default 4. The server
   * usually says how many (`Registered.standby_streams`) and asks for more as load grows.
   */
  standbyStreams?: number;
  tls?: AgentTlsOptions;
  /** TLS settings for `https://` backends. Default: system CAs. */
  upstreamTls?: UpstreamTlsOptions;
  /** Most tunnel streams (standby + busy) per session, announced to the server. Default 1000. */
  maxConcurrentStreams?: number;
  /** Largest gRPC message carried either way. Default 4 MiB (gRPC's default). */
  maxMessageBytes?: number;
  reconnect?: AgentReconnectOptions;
  /** Longest `drain()` waits for live requests before cutting them. Default 30000 ms. */
  drainTimeoutMs?: number;
  /** JSON logger. Default: silent. */
  logger?: Logger;
}

export interface ResolvedTunnelAgentOptions
  extends Required<Omit<TunnelAgentOptions, "rules" | "rulesPath" | "tls" | "upstreamTls" | "reconnect" | "logger">> {
  rules: AgentRules | undefined;
  rulesPath: string | undefined;
  tls: AgentTlsOptions;
  upstreamTls: UpstreamTlsOptions;
  reconnect: Required<AgentReconnectOptions>;
  logger: Logger | undefined;
}

const invalid = (field: string, message: string) =>
  new StreamgateError(Code.INVALID_ARGUMENT, `${field}: ${message}`, { reason: "INVALID_OPTION", details: { field } });

/** Fills defaults and rejects missing or contradictory options with a clear message. */
export function resolveTunnelAgentOptions(options: TunnelAgentOptions): ResolvedTunnelAgentOptions {
  let url: URL;
  try {
    url = new URL(options.serverUrl);
  } catch {
    throw invalid("serverUrl", `not a URL: ${JSON.stringify(options.serverUrl)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw invalid("serverUrl", `must start with http:// (h2c) or https:// (TLS), got ${url.protocol}`);
  }
  if (!options.token) throw invalid("token", "an agent token is required");
  if (!options.group) throw invalid("group", "a client group is required");
  if ((options.rules === undefined) === (options.rulesPath === undefined)) {
    throw invalid("rules", "give exactly one of rules and rulesPath");
  }
  const tls = options.tls ?? {};
  if ((tls.certPath === undefined) !== (tls.keyPath === undefined)) {
    throw invalid("tls", "certPath and keyPath go together (mTLS)");
  }
  const positive = (field: string, value: number | undefined, fallback: number, min = 1) => {
    const chosen = value ?? fallback;
    if (!Number.isInteger(chosen) || chosen < min) throw invalid(field, `must be an integer >= ${min}, got ${chosen}`);
    return chosen;
  };
  const initialMs = positive("reconnect.initialMs", options.reconnect?.initialMs, 500);
  const maxMs = positive("reconnect.maxMs", options.reconnect?.maxMs, 30_000);
  if (maxMs < initialMs) throw invalid("reconnect.maxMs", `must be >= reconnect.initialMs (${initialMs})`);
  return {
    serverUrl: url.origin,
    token: options.token,
    group: options.group,
    clientId: options.clientId || `${hostname()}-${process.pid}`,
    rules: options.rules,
    rulesPath: options.rulesPath,
    standbyStreams: positive("standbyStreams", options.standbyStreams, 4, 0),
    tls,
    upstreamTls: options.upstreamTls ?? {},
    maxConcurrentStreams: positive("maxConcurrentStreams", options.maxConcurrentStreams, 1000),
    maxMessageBytes: positive("maxMessageBytes", options.maxMessageBytes, 4 * 1024 * 1024),
    reconnect: { initialMs, maxMs },
    drainTimeoutMs: positive("drainTimeoutMs", options.drainTimeoutMs, 30_000, 0),
    logger: options.logger,
  };
}

/** Full-jitter exponential backoff: a random delay in [0, min(maxMs, initialMs * 2^attempt)). */
export function backoffDelayMs(attempt: number, reconnect: Required<AgentReconnectOptions>, random = Math.random) {
  const cap = Math.min(reconnect.maxMs, reconnect.initialMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * cap);
}
