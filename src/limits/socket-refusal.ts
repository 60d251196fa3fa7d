// Refuses a TCP connection over the per-IP limit with an answer its protocol understands, then closes it.
import type { Socket } from "node:net";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** How long a refused connection may take to send its first bytes and read the answer. */
const REFUSAL_TIMEOUT_MS = 2_000;
/** HTTP/2 error code ENHANCE_YOUR_CALM (RFC 9113 §7): the peer is generating excessive load. */
const ENHANCE_YOUR_CALM = 0xb;

/** An empty SETTINGS frame followed by GOAWAY(last stream 0, ENHANCE_YOUR_CALM, `reason` as debug data). */
export function http2GoAwayBytes(reason: string): Buffer {
  const debug = Buffer.from(reason);
  const settings = Buffer.from([0, 0, 0, 0x4, 0, 0, 0, 0, 0]);
  const goAway = Buffer.alloc(9 + 8 + debug.length);
  goAway.writeUIntBE(8 + debug.length, 0, 3);
  goAway[3] = 0x7;
  goAway.writeUInt32BE(0, 5);
  goAway.writeUInt32BE(0, 9);
  goAway.writeUInt32BE(ENHANCE_YOUR_CALM, 13);
  debug.copy(goAway, 17);
  return Buffer.concat([settings, goAway]);
}

/** An HTTP/1.1 429 with a Google-style JSON error naming the reason. */
export function http1RefusalBytes(reason: string, message: string): Buffer {
  const body = JSON.stringify({
    error: {
      code: 429,
      message,
      status: "RESOURCE_EXHAUSTED",
      details: [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason, domain: "streamgate", metadata: {} }],
    },
  });
  return Buffer.from(
    "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json; charset=utf-8\r\n" +
      `retry-after: 1\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/**
 * Waits for the client's first bytes (bounded), answers HTTP/2 prior knowledge with GOAWAY and
 * anything else with HTTP/1.1 429, then closes. Reads and drops whatever else the client sends until it closes.
 */
export function refusePlainSocket(socket: Socket, reason: string, message: string): void {
  const timer = setTimeout(() => socket.destroy(), REFUSAL_TIMEOUT_MS);
  timer.unref();
  socket.once("close", () => clearTimeout(timer));
  socket.on("error", () => socket.destroy());
  let answered = false;
  // Later bytes are read and dropped: unread data at close would make the kernel send RST, which can discard the answer.
  socket.on("data", (chunk: Buffer) => {
    if (answered) return;
    answered = true;
    const compared = Math.min(chunk.length, PREFACE.length);
    const isHttp2 = chunk.subarray(0, compared).equals(PREFACE.subarray(0, compared));
    socket.end(isHttp2 ? http2GoAwayBytes(reason) : http1RefusalBytes(reason, message));
  });
}
