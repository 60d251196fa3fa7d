// Refuses a TCP connection over the per-IP limit with an answer its protocol understands, then closes it.
import {
  createServer as createHttp2Server,
  type Http2Server,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from "node:http2";
import type { Socket } from "node:net";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** How long a refused connection may take to send its first bytes and read the answer. */
const REFUSAL_TIMEOUT_MS = 2_000;

/**
 * One small HTTP/2 server per distinct refusal (reason and message; in practice one per limit): it answers every
 * stream of a refused connection, gRPC with trailers-only RESOURCE_EXHAUSTED and anything else with a 429, then
 * closes the connection (GOAWAY). (A bare GOAWAY before any stream left it to timing whether a gRPC client saw
 * RESOURCE_EXHAUSTED on its call or UNAVAILABLE on a connection that never became ready.)
 */
const refusalServers = new Map<string, Http2Server>();

function refusalServer(reason: string, message: string): Http2Server {
  const key = `${reason}\n${message}`;
  let server = refusalServers.get(key);
  if (server !== undefined) return server;
  const body = http1RefusalBody(reason, message);
  server = createHttp2Server({ settings: { maxConcurrentStreams: 8 } });
  server.on("session", (session: ServerHttp2Session) => {
    session.setTimeout(REFUSAL_TIMEOUT_MS, () => session.destroy());
    session.on("error", () => session.destroy());
  });
  server.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    stream.on("error", () => stream.destroy());
    // The request body is not wanted: reading it lets the stream end once the answer is sent.
    stream.resume();
    if (String(headers["content-type"] ?? "").startsWith("application/grpc")) {
      stream.respond(
        {
          ":status": 200,
          "content-type": headers["content-type"],
          "grpc-status": "8",
          "grpc-message": encodeURIComponent(message),
        },
        { endStream: true },
      );
    } else {
      stream.respond({ ":status": 429, "content-type": "application/json; charset=utf-8", "retry-after": "1" });
      stream.end(body);
    }
    // GOAWAY NO_ERROR: the answer already says why; an error code would make clients drop the answer with the session.
    if (stream.session !== undefined && !stream.session.closed) stream.session.close();
  });
  refusalServers.set(key, server);
  return server;
}

function http1RefusalBody(reason: string, message: string): string {
  return JSON.stringify({
    error: {
      code: 429,
      message,
      status: "RESOURCE_EXHAUSTED",
      details: [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason, domain: "streamgate", metadata: {} }],
    },
  });
}

/** An HTTP/1.1 429 with a Google-style JSON error naming the reason. */
export function http1RefusalBytes(reason: string, message: string): Buffer {
  const body = http1RefusalBody(reason, message);
  return Buffer.from(
    "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json; charset=utf-8\r\n" +
      `retry-after: 1\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/**
 * Waits for the client's first bytes (bounded), answers HTTP/2 prior knowledge stream by stream (gRPC
 * RESOURCE_EXHAUSTED, else 429) then GOAWAY, and anything else with HTTP/1.1 429, then closes. Reads and drops
 * whatever else an HTTP/1.1 client sends until it closes.
 */
export function refusePlainSocket(socket: Socket, reason: string, message: string): void {
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
      refusalServer(reason, message).emit("connection", socket);
      return;
    }
    socket.end(http1RefusalBytes(reason, message));
  };
  socket.on("data", onData);
}
