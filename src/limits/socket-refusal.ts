// Refuses a TCP connection over the per-IP limit with an answer its protocol understands (written by src/http's
// refuse), then closes it.
import {
  createServer as createHttp2Server,
  type Http2Server,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from "node:http2";
import type { Socket } from "node:net";
import type { StreamgateError } from "../errors/index.js";
import { refuse } from "../http/index.js";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** How long a refused connection may take to send its first bytes and read the answer. */
const REFUSAL_TIMEOUT_MS = 2_000;

/**
 * One small HTTP/2 server per distinct refusal (reason and message; in practice one per limit): it answers every
 * stream of a refused connection in its protocol (gRPC trailers-only, else the JSON error) and then closes the
 * connection with GOAWAY NO_ERROR. (A bare GOAWAY before any stream left it to timing whether a gRPC client saw
 * RESOURCE_EXHAUSTED on its call or UNAVAILABLE on a connection that never became ready.)
 */
const refusalServers = new Map<string, Http2Server>();

function refusalServer(error: StreamgateError): Http2Server {
  const key = `${error.code}\n${error.reason}\n${error.message}`;
  let server = refusalServers.get(key);
  if (server !== undefined) return server;
  server = createHttp2Server({ settings: { maxConcurrentStreams: 8 } });
  server.on("session", (session: ServerHttp2Session) => {
    session.setTimeout(REFUSAL_TIMEOUT_MS, () => session.destroy());
    session.on("error", () => session.destroy());
  });
  server.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    // The request body is not wanted: reading it lets the stream end once the answer is sent.
    stream.resume();
    refuse({ stream, headers }, error);
    // NO_ERROR: the answer already says why; an error code would make clients drop the answer with the session.
    if (stream.session !== undefined) refuse({ session: stream.session }, error);
  });
  refusalServers.set(key, server);
  return server;
}

/**
 * Waits for the client's first bytes (bounded), answers HTTP/2 prior knowledge stream by stream (gRPC
 * trailers-only, else the JSON error) then GOAWAY, and anything else with an HTTP/1.1 error response, then closes.
 * Reads and drops whatever else an HTTP/1.1 client sends until it closes.
 */
export function refusePlainSocket(socket: Socket, error: StreamgateError): void {
  const timer = setTimeout(() => socket.destroy(), REFUSAL_TIMEOUT_MS);
  timer.unref();
  socket.once("close", () => clearTimeout(timer));
  socket.on("error", () => socket.destroy());
  let answered = false;
  // Later bytes are read and dropped: unread data at close would make the kernel send RST, which can discard the answer.
  const onData = (chunk: Buffer) => {
    if (answered) return;
    answered = true;
    const compared = Math.min(chunk.length, PREFACE.length);
    if (chunk.subarray(0, compared).equals(PREFACE.subarray(0, compared))) {
      socket.removeListener("data", onData);
      socket.pause();
      socket.unshift(chunk);
      refusalServer(error).emit("connection", socket);
      return;
    }
    refuse({ socket }, error);
  };
  socket.on("data", onData);
}
