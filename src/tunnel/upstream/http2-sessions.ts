// HTTP/2 client sessions to backend origins (h2c or TLS): as many per origin as its streams need, none idle to spare.
import { readFileSync } from "node:fs";
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type ClientSessionRequestOptions,
  connect,
  type OutgoingHttpHeaders,
  type SecureClientSessionOptions,
} from "node:http2";
import type { TLSSocket } from "node:tls";
import { StreamResetBudget } from "../../limits/stream-reset-budget.js";

/**
 * Streams one backend session carries at most (fewer when the backend advertises a lower
 * SETTINGS_MAX_CONCURRENT_STREAMS). Node's client session refuses a stream's response headers with
 * RST_STREAM ENHANCE_YOUR_CALM once its own accounting passes `maxSessionMemory` (10 MB by default): an idle
 * gRPC stream costs about 1,050 bytes of it on Node 24.22 (830 on Node 20), so one session stops at ~9,500
 * streams, after the backend got the request. 1,000 uses a tenth of that budget, leaving room for larger
 * headers and buffered frames, and keeps one TCP connection's head-of-line blocking and shared flow-control
 * window to a modest share of the traffic; 10,000 streams take 10 connections.
 */
export const DEFAULT_MAX_STREAMS_PER_SESSION = 1_000;

/**
 * What the first session to an origin is assumed to take before the backend's SETTINGS arrive: node's client
 * assumes the same (its `peerMaxConcurrentStreams` default) and queues the streams past it until the SETTINGS
 * say more. Later sessions assume what the origin last advertised.
 */
const STREAMS_BEFORE_SETTINGS = 100;

/** TLS settings for `https://` backends. */
export interface UpstreamTlsOptions {
  /** PEM CA bundle trusted for backend certificates, in addition to the system's. Default: system CAs only. */
  caPath?: string;
  /** Skip certificate verification (self-signed backends in tests). Default false. */
  insecureSkipVerify?: boolean;
}

export interface Http2SessionPoolOptions {
  /** TLS for `https://` backends. Default: system CAs, verification on. */
  tls?: UpstreamTlsOptions;
  /**
   * Streams one session carries at most; past it (or past the backend's advertised limit, when lower) the next
   * stream opens another session to the same origin. Default {@link DEFAULT_MAX_STREAMS_PER_SESSION}.
   */
  maxStreamsPerSession?: number;
}

/**
 * The origin URL node's http2 client connects to for a backend address: `h2c://h:p` and
 * `http://h:p` are h2c with prior knowledge, `https://h:p` is TLS with ALPN h2.
 */
export function http2Origin(address: string): string {
  const known = origins.get(address);
  if (known !== undefined) return known;
  const origin = parseOrigin(address);
  // Addresses come from the rules file: a handful, asked for on every request (URL parsing is not cheap).
  if (origins.size >= 1024) origins.clear();
  origins.set(address, origin);
  return origin;
}

const origins = new Map<string, string>();
const schemes = new Map<string, string>();

/** `new URL(address).protocol` (e.g. `h2c:`), parsed once per address. */
export function addressScheme(address: string): string {
  let scheme = schemes.get(address);
  if (scheme === undefined) {
    scheme = new URL(address).protocol;
    if (schemes.size >= 1024) schemes.clear();
    schemes.set(address, scheme);
  }
  return scheme;
}

function parseOrigin(address: string): string {
  const url = new URL(address);
  if (url.protocol === "h2c:" || url.protocol === "http:") return `http://${url.host}`;
  if (url.protocol === "https:") return `https://${url.host}`;
  throw new Error(`unsupported backend address ${address} (expected h2c://, http:// or https://)`);
}

/** What the pool keeps of one session. */
interface PooledSession {
  readonly session: ClientHttp2Session;
  readonly origin: string;
  /** Resets sent on it (see noteReset). */
  readonly resets: StreamResetBudget;
  /** Streams open on it (requests made through `request`). */
  openStreams: number;
  /** The backend's SETTINGS_MAX_CONCURRENT_STREAMS on it; undefined until its SETTINGS arrive. */
  advertisedStreams: number | undefined;
  /** Taken out of service (reset budget, GOAWAY, error, spare once idle): closed once its last stream is done. */
  retired: boolean;
}

/** HTTP/2 sessions keyed by origin, each carrying a bounded number of streams. */
export class Http2SessionPool {
  /** The sessions that take new streams, per origin. */
  private readonly inService = new Map<string, PooledSession[]>();
  /** Every session not closed yet, retired ones included (close() and destroy() reach them all). */
  private readonly open = new Map<ClientHttp2Session, PooledSession>();
  /** What each origin's sessions last advertised, assumed of its new sessions until their SETTINGS arrive. */
  private readonly advertisedStreams = new Map<string, number>();
  /** Sessions replaced because their reset budget ran low (for tests and logs). */
  replacedForResets = 0;
  /** TLS options of `https://` backends (CA, verification), shared with the HTTP/1.1 agent. */
  readonly tls: SecureClientSessionOptions;
  readonly maxStreamsPerSession: number;
  private closed = false;

  constructor(options: Http2SessionPoolOptions = {}) {
    const { tls = {}, maxStreamsPerSession = DEFAULT_MAX_STREAMS_PER_SESSION } = options;
    if (!Number.isInteger(maxStreamsPerSession) || maxStreamsPerSession < 1)
      throw new RangeError(`maxStreamsPerSession must be a positive integer, got ${maxStreamsPerSession}`);
    this.maxStreamsPerSession = maxStreamsPerSession;
    this.tls = {};
    if (tls.caPath !== undefined) this.tls.ca = readFileSync(tls.caPath);
    if (tls.insecureSkipVerify === true) this.tls.rejectUnauthorized = false;
  }

  /**
   * Opens a stream to `origin` on the least-loaded session that has room, connecting another session (lazily,
   * without waiting) when none has; the pool follows the stream until it closes (see noteReset).
   */
  request(
    origin: string,
    headers: OutgoingHttpHeaders,
    options: ClientSessionRequestOptions = {},
  ): { session: ClientHttp2Session; stream: ClientHttp2Stream } {
    const entry = this.pick(origin);
    const stream = entry.session.request(headers, options);
    entry.openStreams++;
    stream.once("close", () => {
      entry.openStreams--;
      if (entry.openStreams === 0) this.onIdle(entry);
    });
    return { session: entry.session, stream };
  }

  /** Open streams of each in-service session to `origin`, in the order they were opened. */
  loads(origin: string): number[] {
    return (this.inService.get(origin) ?? []).map((entry) => entry.openStreams);
  }

  /**
   * Counts a stream reset sent on `session` (a cancelled call). The agent carries all its clients' cancels to a
   * backend on few sessions, so they add up there: when the session's reset budget (see STREAM_RESET_BUDGET)
   * runs low it leaves service: new streams go to the other sessions or a new one, this one closes once its
   * streams are done.
   */
  noteReset(session: ClientHttp2Session): void {
    const entry = this.open.get(session);
    if (entry === undefined || !entry.resets.spend() || entry.retired) return;
    this.replacedForResets++;
    this.retire(entry);
    // Closed once idle, not now: node's client refuses (REFUSED_STREAM) a request made on it this turn whose
    // HEADERS are not out yet.
    if (entry.openStreams === 0) entry.session.close();
  }

  /**
   * Makes `socket`, a TLS connection to `origin` that already negotiated `h2` by ALPN (the ALPN
   * probe's), a session of the origin, so that handshake serves requests. Closes it when the pool
   * already has a session in service to `origin` or is closed.
   */
  adopt(origin: string, socket: TLSSocket): void {
    if (this.closed || (this.inService.get(origin)?.length ?? 0) > 0) {
      socket.destroy();
      return;
    }
    this.add(origin, connect(origin, { ...this.tls, createConnection: () => socket }));
  }

  /** Closes every session: live streams finish, no new ones start. */
  close(): void {
    this.closed = true;
    for (const session of [...this.open.keys()]) session.close();
    this.inService.clear();
  }

  /** Destroys every session at once (live streams fail). */
  destroy(): void {
    this.closed = true;
    for (const session of [...this.open.keys()]) session.destroy();
    this.inService.clear();
    this.open.clear();
  }

  private pick(origin: string): PooledSession {
    if (this.closed) throw new Error("the upstream session pool is closed");
    let best: PooledSession | undefined;
    for (const entry of this.inService.get(origin) ?? []) {
      if (entry.openStreams >= this.capacity(entry)) continue;
      if (best === undefined || entry.openStreams < best.openStreams) best = entry;
    }
    return best ?? this.add(origin, connect(origin, origin.startsWith("https:") ? this.tls : {}));
  }

  /**
   * Streams `entry` may carry: our cap, or the backend's SETTINGS_MAX_CONCURRENT_STREAMS when lower. Streams
   * past the backend's limit would not fail but wait in node's queue until others end: forever for idle streams.
   */
  private capacity(entry: PooledSession): number {
    const advertised = entry.advertisedStreams ?? this.advertisedStreams.get(entry.origin) ?? STREAMS_BEFORE_SETTINGS;
    return Math.min(this.maxStreamsPerSession, advertised);
  }

  /** A session's last stream ended: closed when retired, or when another session of its origin has room. */
  private onIdle(entry: PooledSession): void {
    if (entry.session.closed || entry.session.destroyed) return;
    if (!entry.retired) {
      const others = (this.inService.get(entry.origin) ?? []).filter((other) => other !== entry);
      if (!others.some((other) => other.openStreams < this.capacity(other))) return;
      this.retire(entry);
    }
    entry.session.close();
  }

  /** Takes `entry` out of service: no new streams go to it. */
  private retire(entry: PooledSession): void {
    entry.retired = true;
    const list = this.inService.get(entry.origin);
    if (list === undefined) return;
    const index = list.indexOf(entry);
    if (index >= 0) list.splice(index, 1);
    if (list.length === 0) this.inService.delete(entry.origin);
  }

  private add(origin: string, session: ClientHttp2Session): PooledSession {
    const entry: PooledSession = {
      session,
      origin,
      resets: new StreamResetBudget(),
      openStreams: 0,
      advertisedStreams: undefined,
      retired: false,
    };
    session.on("remoteSettings", (settings) => {
      // Absent from the frame means unlimited (node reports 2^32 - 1).
      const advertised = settings.maxConcurrentStreams ?? 2 ** 32 - 1;
      entry.advertisedStreams = advertised;
      this.advertisedStreams.set(origin, advertised);
    });
    // Node's client sockets keep Nagle's algorithm on: every small frame (a unary call's headers, message,
    // trailers) would wait for the peer's ACK. grpc-js turns it off for the same reason.
    session.once("connect", (_session, socket) => socket.setNoDelay(true));
    // Errors reach the streams that were pending on it; the session itself only leaves service.
    const leave = () => this.retire(entry);
    session.on("error", leave);
    session.on("goaway", leave);
    session.once("close", () => {
      this.retire(entry);
      this.open.delete(session);
    });
    // An idle pooled session must not keep the process alive.
    session.unref();
    this.open.set(session, entry);
    const list = this.inService.get(origin);
    if (list === undefined) this.inService.set(origin, [entry]);
    else list.push(entry);
    return entry;
  }
}
