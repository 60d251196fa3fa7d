// Reads the PROXY protocol header off a freshly accepted socket (before TLS and the HTTP/2 preface sniffing), bounded in bytes and time.
import type { Socket } from "node:net";
import type { ConnectionOrigin } from "./client-address.js";
import {
  mayBeProxyHeader,
  PROXY_V1_MAX_BYTES,
  PROXY_V2_MAX_BYTES,
  ProxyHeaderRejection,
  parseProxyHeader,
} from "./proxy-protocol.js";
import { plainAddress, type TrustedProxies } from "./trusted-proxies.js";

/** PROXY protocol on one listener. */
export interface ProxyProtocolOptions {
  /** Peers allowed to send a header; from them one is required, from anyone else one is refused. */
  trusted: TrustedProxies;
  /** The whole header must arrive within this many ms after accept. */
  timeoutMs: number;
}

export type ProxyAcceptResult =
  | { kind: "accepted"; origin: ConnectionOrigin /** The client's first bytes after the header. */; rest: Buffer }
  | { kind: "rejected"; reason: ProxyHeaderRejection; message: string; bytes: number }
  /** The peer closed (or stayed silent, untrusted) without sending a byte: nothing to refuse. */
  | { kind: "empty" };

const MAX_BYTES = Math.max(PROXY_V1_MAX_BYTES, PROXY_V2_MAX_BYTES);

/**
 * Waits for the connection's header and calls `done` once, with the socket paused and no listener of ours left.
 * A trusted peer must send a valid header; an untrusted one is served as it is (its TCP address is the client)
 * unless its first bytes are a PROXY header, which is refused: a client never picks its own address.
 */
export function readProxyHeader(
  socket: Socket,
  options: ProxyProtocolOptions,
  done: (result: ProxyAcceptResult) => void,
): void {
  const peerAddress = plainAddress(socket.remoteAddress ?? "unknown");
  const trusted = options.trusted.trusts(peerAddress);
  let buffered: Buffer = Buffer.alloc(0);
  let finished = false;
  const finish = (result: ProxyAcceptResult) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket.off("data", onData);
    socket.off("end", onEnd);
    socket.off("close", onEnd);
    socket.pause();
    done(result);
  };
  const rejected = (reason: ProxyHeaderRejection, message: string) =>
    finish({ kind: "rejected", reason, message, bytes: buffered.length });
  const passThrough = () =>
    finish({
      kind: "accepted",
      origin: { peerAddress, address: peerAddress, port: socket.remotePort, source: "peer", trusted: options.trusted },
      rest: buffered,
    });

  const onData = (chunk: Buffer) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    if (!trusted) {
      if (!mayBeProxyHeader(buffered)) passThrough();
      else if (buffered.length >= 12 || parseProxyHeader(buffered).kind !== "incomplete") {
        rejected(ProxyHeaderRejection.untrusted, `a PROXY header from ${peerAddress}, which is not a trusted proxy`);
      }
      return;
    }
    const parsed = parseProxyHeader(buffered);
    if (parsed.kind === "rejected") rejected(parsed.reason, parsed.message);
    else if (parsed.kind === "header") {
      const { header } = parsed;
      const source = header.command === "proxy" ? header.source : undefined;
      finish({
        kind: "accepted",
        origin: {
          peerAddress,
          address: source === undefined ? peerAddress : plainAddress(source.address),
          port: source === undefined ? socket.remotePort : source.port,
          // LOCAL, UNKNOWN and UNIX headers name no client: the connection is the proxy's own.
          source: source === undefined ? "peer" : "proxy_protocol",
          tlvs: header.tlvs,
          trusted: options.trusted,
        },
        rest: buffered.subarray(parsed.length),
      });
    } else if (buffered.length > MAX_BYTES) rejected(ProxyHeaderRejection.tooLarge, "PROXY header too large");
  };
  const onEnd = () => {
    if (buffered.length === 0) finish({ kind: "empty" });
    else rejected(ProxyHeaderRejection.truncated, `the peer closed after ${buffered.length} bytes of a PROXY header`);
  };
  const timer = setTimeout(() => {
    if (!trusted && buffered.length === 0) passThrough();
    else rejected(ProxyHeaderRejection.timeout, `no complete PROXY header within ${options.timeoutMs} ms`);
  }, options.timeoutMs);
  timer.unref();
  socket.on("data", onData);
  socket.once("end", onEnd);
  socket.once("close", onEnd);
}
