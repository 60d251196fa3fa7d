// Which HTTP version each `https://` backend picks by ALPN, probed once per origin and shared by concurrent requests.
import { isIP } from "node:net";
import { connect, type TLSSocket } from "node:tls";
import { type Http2SessionPool, http2Origin } from "./http2-sessions.js";

/** What a backend picked by ALPN: `h2`, or `http/1.1` (also when it picked nothing, as node:https servers do). */
export const AlpnProtocol = {
  /** HTTP/2: the request goes through the shared HTTP/2 session pool. */
  Http2: "h2",
  /** HTTP/1.1: the request goes through the keep-alive https.Agent. */
  Http1: "http/1.1",
} as const;
export type AlpnProtocol = (typeof AlpnProtocol)[keyof typeof AlpnProtocol];

/** A TLS handshake that has not finished after this long fails the probe (node's clients have no such limit). */
const HANDSHAKE_TIMEOUT_MS = 10_000;

/** Most origins remembered; the oldest is forgotten past it (origins come from configured addresses, so few). */
const MAX_ORIGINS = 1_024;

/**
 * Remembers, per `https://` origin, which protocol the backend picked, and probes unknown origins
 * with one TLS handshake offering `h2` and `http/1.1` (with the session pool's CA and verification).
 * An `h2` probe's socket becomes the origin's pooled HTTP/2 session, so the handshake is not wasted;
 * an `http/1.1` probe's socket is closed, since the https.Agent has no public way to adopt one and it
 * costs one handshake per origin.
 */
export class AlpnCache {
  private readonly known = new Map<string, AlpnProtocol>();
  private readonly probing = new Map<string, Promise<AlpnProtocol>>();
  private readonly sockets = new Set<TLSSocket>();

  constructor(private readonly sessions: Http2SessionPool) {}

  /** The protocol remembered for `address` (`https://h[:p]`), without probing. */
  cached(address: string): AlpnProtocol | undefined {
    return this.known.get(http2Origin(address));
  }

  /**
   * The protocol `address` picks, probing when it is not known (one probe per origin however many
   * ask). Resolves undefined when `signal` aborts first; the probe goes on for the others. Rejects
   * with the connection's error (refused, bad certificate, handshake timeout).
   */
  negotiate(address: string, signal: AbortSignal): Promise<AlpnProtocol | undefined> {
    const origin = http2Origin(address);
    const known = this.known.get(origin);
    if (known !== undefined) return Promise.resolve(known);
    if (signal.aborted) return Promise.resolve(undefined);
    const probe = this.probing.get(origin) ?? this.startProbe(origin);
    return new Promise<AlpnProtocol | undefined>((resolve, reject) => {
      const onAbort = () => resolve(undefined);
      signal.addEventListener("abort", onAbort, { once: true });
      probe.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
    });
  }

  /** Forgets `address`'s protocol (a connection to it failed): the next request probes again. */
  forget(address: string): void {
    this.known.delete(http2Origin(address));
  }

  /** Stops probes in progress (their waiters see the error). */
  close(): void {
    for (const socket of this.sockets) socket.destroy(new Error("the upstream forwarder is closed"));
    this.sockets.clear();
  }

  private startProbe(origin: string): Promise<AlpnProtocol> {
    const probe = this.probe(origin).finally(() => this.probing.delete(origin));
    this.probing.set(origin, probe);
    return probe;
  }

  private probe(origin: string): Promise<AlpnProtocol> {
    const url = new URL(origin);
    return new Promise<AlpnProtocol>((resolve, reject) => {
      const socket = connect({
        host: url.hostname,
        port: Number(url.port || 443),
        // RFC 6066 forbids an IP address as server name; node verifies against `host` then.
        ...(isIP(url.hostname) === 0 ? { servername: url.hostname } : {}),
        ALPNProtocols: [AlpnProtocol.Http2, AlpnProtocol.Http1],
        ca: this.sessions.tls.ca,
        rejectUnauthorized: this.sessions.tls.rejectUnauthorized,
      });
      this.sockets.add(socket);
      socket.setTimeout(HANDSHAKE_TIMEOUT_MS, () =>
        socket.destroy(new Error(`the TLS handshake did not finish within ${HANDSHAKE_TIMEOUT_MS} ms`)),
      );
      const fail = (error: Error) => {
        this.sockets.delete(socket);
        reject(error);
      };
      socket.once("error", fail);
      // (Node reports a close during the handshake as an error; this only guards against a probe left pending.)
      const closed = () => fail(new Error("the connection closed during the TLS handshake"));
      socket.once("close", closed);
      socket.once("secureConnect", () => {
        this.sockets.delete(socket);
        socket.setTimeout(0);
        socket.removeListener("close", closed);
        socket.removeListener("error", fail);
        const picked = socket.alpnProtocol === AlpnProtocol.Http2 ? AlpnProtocol.Http2 : AlpnProtocol.Http1;
        if (picked === AlpnProtocol.Http2) this.sessions.adopt(origin, socket);
        else socket.destroy();
        this.remember(origin, picked);
        resolve(picked);
      });
    });
  }

  private remember(origin: string, picked: AlpnProtocol): void {
    this.known.delete(origin);
    this.known.set(origin, picked);
    if (this.known.size > MAX_ORIGINS) this.known.delete(this.known.keys().next().value!);
  }
}
