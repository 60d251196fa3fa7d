// A bare HTTP/2 relay on node:http2 alone (no tunnel protocol, rules, metrics), the floor reference of
// bench/tunnel: h2c on 127.0.0.1 port 0 → one h2c session to `host:port` (argv[2]); sends `{ port }` over IPC.
import http2, {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import type { AddressInfo, Socket } from "node:net";

const { NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM } = http2.constants;
/** Pseudo headers forwarded as they are; any other (e.g. `:protocol`) is dropped. */
const FORWARDED_PSEUDO = new Set([":method", ":path", ":scheme", ":authority", ":status"]);

const target = process.argv[2];
if (target === undefined) throw new Error("usage: relay-process.ts <host:port>");

/** The headers to forward: ordinary ones and the pseudo headers of FORWARDED_PSEUDO. */
function forwardable(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith(":") || FORWARDED_PSEUDO.has(name)) out[name] = value;
  }
  return out;
}

/** Copies `from`'s data into `to`, pausing `from` while `to` is full; ends `to` when `from` ends. */
function forward(from: ClientHttp2Stream | ServerHttp2Stream, to: ClientHttp2Stream | ServerHttp2Stream): void {
  from.on("data", (chunk: Buffer) => {
    if (to.writableEnded || to.destroyed) return;
    if (!to.write(chunk)) {
      from.pause();
      to.once("drain", () => from.resume());
    }
  });
  from.on("end", () => {
    if (!to.writableEnded && !to.destroyed) to.end();
  });
}

let upstream: ClientHttp2Session | null = null;
/** The one session to the target; a new one only if it went away. */
function session(): ClientHttp2Session {
  if (upstream === null || upstream.closed || upstream.destroyed) {
    // One session carries every stream (10,000 in the idle-memory phase): node's default 10 MB session memory
    // budget refuses streams past ~9,500, so the relay gets the tunnel listener's budget (64 MB).
    const created = http2.connect(`http://${target}`, { maxSessionMemory: 64 });
    created.on("connect", (_session, socket) => socket.setNoDelay(true));
    created.on("error", () => {}); // its streams see the failure; the next request reconnects
    upstream = created;
  }
  return upstream;
}

function relay(incoming: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
  incoming.on("error", () => {}); // a reset shows as 'close' below
  let outgoing: ClientHttp2Stream;
  try {
    outgoing = session().request(forwardable(headers));
  } catch {
    incoming.close(NGHTTP2_REFUSED_STREAM);
    return;
  }
  outgoing.on("error", () => {});
  forward(incoming, outgoing);

  let trailers: OutgoingHttpHeaders | null = null;
  outgoing.on("trailers", (received: IncomingHttpHeaders) => {
    trailers = forwardable(received);
  });
  outgoing.on("response", (received: IncomingHttpHeaders, flags: number) => {
    if (incoming.closed || incoming.destroyed) return;
    // A trailers-only response (gRPC's way to fail early) ends in its headers: pass it on as one.
    if ((flags & NGHTTP2_FLAG_END_STREAM) !== 0) {
      incoming.respond(forwardable(received), { endStream: true });
      return;
    }
    incoming.respond(forwardable(received), { waitForTrailers: true });
    forward(outgoing, incoming);
  });
  // A reset upstream also ends its readable side (before its rstCode is set): without its trailers, wait for
  // its close to tell a reset (passed on as one, below) from an end without trailers.
  const sendTrailers = () => {
    if (!incoming.closed && outgoing.rstCode === NGHTTP2_NO_ERROR)
      incoming.sendTrailers(trailers ?? { "grpc-status": "2" });
  };
  incoming.on("wantTrailers", () => {
    if (trailers !== null || outgoing.closed) sendTrailers();
    else outgoing.once("close", sendTrailers);
  });

  // Cancellation both ways: a stream that closes early takes the other one with it.
  incoming.on("close", () => {
    if (!outgoing.closed) outgoing.close(NGHTTP2_CANCEL);
  });
  outgoing.on("close", () => {
    if (outgoing.rstCode !== NGHTTP2_NO_ERROR && !incoming.closed) incoming.close(NGHTTP2_CANCEL);
  });
}

const server = http2.createServer({ maxSessionMemory: 64 });
server.on("connection", (socket: Socket) => socket.setNoDelay(true));
server.on("stream", relay);
server.listen(0, "127.0.0.1", () => {
  process.send?.({ port: (server.address() as AddressInfo).port });
});
process.on("disconnect", () => {
  upstream?.destroy();
  server.close(() => process.exit(0));
  // Open client sessions would hold close() back; the parent is gone, so do not wait long.
  setTimeout(() => process.exit(0), 1_000).unref();
});
