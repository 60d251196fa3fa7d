// One reusable HTTP/2 client session per backend origin (h2c or TLS), replaced once it closes or goes away.
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

/** TLS settings for `https://` backends. */
export interface UpstreamTlsOptions {
  /** PEM CA bundle trusted for backend certificates, in addition to the system's. Default: system CAs only. */
  caPath?: string;
  /** Skip certificate verification (self-signed backends in tests). Default false. */
  insecureSkipVerify?: boolean;
}

/**
 * The origin URL node's http2 client connects to for a backend address: `h2c://h:p` and
 * `http://h:p` are h2c with prior knowledge, `https://h:p` is TLS with ALPN h2.
 */
export function http2Origin(address: string): string {
  const url = new URL(address);
  if (url.protocol === "h2c:" || url.protocol === "http:") return `http://${url.host}`;
  if (url.protocol === "https:") return `https://${url.host}`;
  throw new Error(`unsupported backend address ${address} (expected h2c://, http:// or https://)`);
}

/** What the pool keeps of one session. */
interface SessionState {
  /** Resets sent on it (see noteReset). */
  resets: StreamResetBudget;
  /** Streams open on it (requests made through `request`), to close it when idle once retired. */
  openStreams: number;
  /** Taken out of the pool: closed once its last stream is done. */
  retired: boolean;
}

/** A pool of HTTP/2 sessions keyed by origin. */
export class Http2SessionPool {
  private readonly sessions = new Map<string, ClientHttp2Session>();
  private readonly states = new WeakMap<ClientHttp2Session, SessionState>();
  /** Sessions replaced because their reset budget ran low (for tests and logs). */
  replacedForResets = 0;
  /** TLS options of `https://` backends (CA, verification), shared with the HTTP/1.1 agent. */
  readonly tls: SecureClientSessionOptions;
  private closed = false;

  constructor(tls: UpstreamTlsOptions = {}) {
    this.tls = {};
    if (tls.caPath !== undefined) this.tls.ca = readFileSync(tls.caPath);
    if (tls.insecureSkipVerify === true) this.tls.rejectUnauthorized = false;
  }

  /** The live session to `origin`, connecting (lazily, without waiting) when there is none. */
  session(origin: string): ClientHttp2Session {
    if (this.closed) throw new Error("the upstream session pool is closed");
    const existing = this.sessions.get(origin);
    if (existing !== undefined && !existing.closed && !existing.destroyed) return existing;
    return this.open(origin, connect(origin, origin.startsWith("https:") ? this.tls : {}));
  }

  /** Opens a stream on `origin`'s session; the pool follows it until it closes (see noteReset). */
  request(
    origin: string,
    headers: OutgoingHttpHeaders,
    options: ClientSessionRequestOptions,
  ): { session: ClientHttp2Session; stream: ClientHttp2Stream } {
    const session = this.session(origin);
    const stream = session.request(headers, options);
    const state = this.stateOf(session);
    state.openStreams++;
    stream.once("close", () => {
      state.openStreams--;
      if (state.openStreams === 0 && state.retired && !session.closed) session.close();
    });
    return { session, stream };
  }

  /**
   * Counts a stream reset sent on `session` (a cancelled call). The agent carries all its clients' cancels to a
   * backend on one session, so they add up there: when the session's reset budget (see STREAM_RESET_BUDGET) runs
   * low it leaves the pool: the next call opens a new session, this one closes once its
   * streams are done.
   */
  noteReset(origin: string, session: ClientHttp2Session): void {
    const state = this.stateOf(session);
    if (!state.resets.spend() || this.sessions.get(origin) !== session) return;
    this.sessions.delete(origin);
    this.replacedForResets++;
    // Closed once idle, not now: node's client refuses (REFUSED_STREAM) a request made on it this turn whose
    // HEADERS are not out yet.
    state.retired = true;
    if (state.openStreams === 0) session.close();
  }

  private stateOf(session: ClientHttp2Session): SessionState {
    let state = this.states.get(session);
    if (state === undefined) {
      state = { resets: new StreamResetBudget(), openStreams: 0, retired: false };
      this.states.set(session, state);
    }
    return state;
  }

  /**
   * Makes `socket`, a TLS connection to `origin` that already negotiated `h2` by ALPN (the ALPN
   * probe's), the origin's session, so that handshake serves requests. Closes it when the pool
   * already has a live session to `origin` or is closed.
   */
  adopt(origin: string, socket: TLSSocket): void {
    const existing = this.sessions.get(origin);
    if (this.closed || (existing !== undefined && !existing.closed && !existing.destroyed)) {
      socket.destroy();
      return;
    }
    this.open(origin, connect(origin, { ...this.tls, createConnection: () => socket }));
  }

  private open(origin: string, session: ClientHttp2Session): ClientHttp2Session {
    // Node's client sockets keep Nagle's algorithm on: every small frame (a unary call's headers, message,
    // trailers) would wait for the peer's ACK. grpc-js turns it off for the same reason.
    session.once("connect", (_session, socket) => socket.setNoDelay(true));
    const forget = () => {
      if (this.sessions.get(origin) === session) this.sessions.delete(origin);
    };
    // Errors reach the streams that were pending on it; the session itself only needs forgetting.
    session.on("error", forget);
    session.on("goaway", forget);
    session.on("close", forget);
    // An idle pooled session must not keep the process alive.
    session.unref();
    this.sessions.set(origin, session);
    return session;
  }

  /** Closes every session: live streams finish, no new ones start. */
  close(): void {
    this.closed = true;
    for (const session of this.sessions.values()) session.close();
    this.sessions.clear();
  }

  /** Destroys every session at once (live streams fail). */
  destroy(): void {
    this.closed = true;
    for (const session of this.sessions.values()) session.destroy();
    this.sessions.clear();
  }
}
