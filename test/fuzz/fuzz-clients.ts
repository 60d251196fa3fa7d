// Bounded clients for fuzzing: HTTP/1.1 over node:http and raw TCP, and raw HTTP/2 streams; each call has a deadline.
import { type Agent, request } from "node:http";
import { type ClientHttp2Session, connect as connectHttp2 } from "node:http2";
import { connect as connectTcp } from "node:net";

/** What an HTTP exchange returned. */
export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** A request through node:http (keep-alive agent); rejects after `timeoutMs` with "hang". */
export function httpCall(
  agent: Agent,
  url: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body: Buffer | null,
  timeoutMs: number,
  /** Resolve as soon as headers arrive when the answer is a stream (SSE). */
  options: { streamOk?: boolean } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      const answer = () => ({
        status: res.statusCode ?? 0,
        headers: flatHeaders(res.headers),
        body: Buffer.concat(chunks),
      });
      if (options.streamOk === true && String(res.headers["content-type"]).startsWith("text/event-stream")) {
        clearTimeout(timer);
        res.destroy();
        resolve(answer());
        return;
      }
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        clearTimeout(timer);
        resolve(answer());
      });
      res.on("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`hang: no complete answer within ${timeoutMs} ms`));
    }, timeoutMs);
    req.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    req.end(body ?? undefined);
  });
}

function flatHeaders(headers: Record<string, string | string[] | number | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers)) {
    if (value !== undefined) out[key] = Array.isArray(value) ? value.join(", ") : String(value);
  }
  return out;
}

/**
 * The oracle for an HTTP answer: 2xx/3xx/101 pass; every error is 4xx or a deliberate 5xx (501/503/504)
 * with Google's JSON error body (or, for an unknown Pub/Sub REST path, Pub/Sub's HTML 404 page); 500 never.
 * Returns the problem, or null.
 */
export function httpAnswerProblem(answer: {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}): string | null {
  if (answer.status < 400) return null;
  if (answer.status === 500 || answer.status > 504)
    return `HTTP ${answer.status}: ${answer.body.toString().slice(0, 300)}`;
  const type = answer.headers["content-type"] ?? "";
  // An unknown path under /v1/projects/ gets Pub/Sub's own answer, an HTML 404 page (docs/endpoints.md).
  const unknownRestPath =
    answer.status === 404 &&
    type.startsWith("text/html") &&
    /The requested URL <code>[^<]*<\/code> was not found on this server/.test(answer.body.toString());
  if (unknownRestPath) return null;
  if (!type.startsWith("application/json")) {
    return `HTTP ${answer.status} with content-type "${type}" instead of a JSON error: ${answer.body.toString().slice(0, 200)}`;
  }
  let parsed: { error?: { code?: unknown; message?: unknown; status?: unknown } };
  try {
    parsed = JSON.parse(answer.body.toString("utf8"));
  } catch {
    return `HTTP ${answer.status} with a body that is not JSON: ${answer.body.toString().slice(0, 200)}`;
  }
  const error = parsed.error;
  if (error === undefined || error.code !== answer.status || typeof error.message !== "string" || error.message === "")
    return `HTTP ${answer.status} without a clear {"error":{code,message,status}}: ${answer.body.toString().slice(0, 200)}`;
  if (error.status === "INTERNAL" || error.status === "UNKNOWN" || error.status === "DATA_LOSS")
    return `HTTP ${answer.status} ${String(error.status)}: ${error.message}`;
  return null;
}

/** What a raw TCP HTTP/1.1 exchange produced. */
export type RawHttpResult =
  | { kind: "answer"; status: number; headers: Record<string, string>; body: Buffer; streaming: boolean }
  /** The server closed the connection without a (complete) response head. */
  | { kind: "closed"; received: Buffer };

/**
 * Writes `bytes` on a fresh TCP connection and reads one response. A response is complete at its
 * Content-Length, chunked terminator, `Connection: close` end, or its head when it is an event stream.
 * With no byte for `idleMs` the client half-closes; the server must then answer or close within `timeoutMs`.
 * @throws Error "hang: …" when neither happens.
 */
export function rawHttpExchange(
  port: number,
  bytes: Buffer,
  idleMs: number,
  timeoutMs: number,
): Promise<RawHttpResult> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp({ host: "127.0.0.1", port, noDelay: true });
    let received: Buffer = Buffer.alloc(0);
    let settled = false;
    const finish = (result: RawHttpResult | Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(idle);
      clearTimeout(deadline);
      socket.destroy();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const halfClose = () => {
      if (!socket.destroyed) socket.end();
    };
    let idle = setTimeout(halfClose, idleMs);
    const deadline = setTimeout(
      () =>
        finish(new Error(`hang: no answer and no close within ${timeoutMs} ms (${received.length} bytes received)`)),
      timeoutMs,
    );
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      clearTimeout(idle);
      idle = setTimeout(halfClose, idleMs);
      const parsed = parseResponse(received, false);
      if (parsed !== null) finish(parsed);
    });
    socket.on("error", () => undefined);
    socket.on("close", () => finish(parseResponse(received, true) ?? { kind: "closed", received }));
    socket.write(bytes);
  });
}

/** Parses one HTTP/1.1 response from `data`; null while incomplete (unless the connection ended). */
function parseResponse(data: Buffer, ended: boolean): RawHttpResult | null {
  const headEnd = data.indexOf("\r\n\r\n");
  if (headEnd < 0) return null;
  const lines = data.subarray(0, headEnd).toString("latin1").split("\r\n");
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "");
  if (match === null) return null;
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const status = Number(match[1]);
  const rest = data.subarray(headEnd + 4);
  // An interim answer (100 Continue) precedes the real one.
  if (status >= 100 && status < 200 && status !== 101) return parseResponse(rest, ended);
  const answer = (body: Buffer, streaming = false): RawHttpResult => ({
    kind: "answer",
    status,
    headers,
    body,
    streaming,
  });
  if ((headers["content-type"] ?? "").startsWith("text/event-stream")) return answer(rest, true);
  if (status === 101 || status === 204 || status === 304) return answer(Buffer.alloc(0));
  if (headers["content-length"] !== undefined) {
    const length = Number(headers["content-length"]);
    return rest.length >= length ? answer(rest.subarray(0, length)) : ended ? answer(rest) : null;
  }
  if ((headers["transfer-encoding"] ?? "").includes("chunked")) {
    const end = rest.indexOf("0\r\n\r\n");
    if (end < 0) return ended ? answer(dechunk(rest)) : null;
    return answer(dechunk(rest.subarray(0, end + 5)));
  }
  return ended ? answer(rest) : null;
}

function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  while (at < data.length) {
    const lineEnd = data.indexOf("\r\n", at);
    if (lineEnd < 0) break;
    const size = Number.parseInt(data.subarray(at, lineEnd).toString("latin1"), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

/** HTTP/2 sessions to one server, replaced when one dies (a fuzzed stream may kill its session). */
export class Http2Pool {
  private readonly sessions: ClientHttp2Session[] = [];
  private turn = 0;

  constructor(
    private readonly url: string,
    private readonly size: number,
  ) {}

  session(): ClientHttp2Session {
    const index = this.turn++ % this.size;
    const current = this.sessions[index];
    if (current !== undefined && !current.closed && !current.destroyed) return current;
    const session = connectHttp2(this.url);
    session.on("error", () => undefined);
    this.sessions[index] = session;
    return session;
  }

  close(): void {
    for (const session of this.sessions) session.destroy();
  }
}

/** What a raw HTTP/2 (gRPC) request returned. */
export interface H2Result {
  httpStatus: number;
  headers: Record<string, string>;
  trailers: Record<string, string>;
  body: Buffer;
  /** Set when the stream ended without a response (RST_STREAM, GOAWAY, session error). */
  streamError: string | null;
  /** The server answered with headers and kept the stream open (a streaming call that accepted the input). */
  open: boolean;
}

/**
 * Sends one request on a pooled session and waits for the stream to close. A stream that got its
 * response headers and stays open for `openMs` more is closed and reported `open` (a live stream).
 * @throws Error "hang: …" when no response headers and no close came within `timeoutMs`;
 *   Error "unsendable: …" when node refuses the headers.
 */
export function h2Call(
  pool: Http2Pool,
  headers: Record<string, string>,
  body: Buffer,
  timeoutMs: number,
  openMs = 1_500,
): Promise<H2Result> {
  return new Promise((resolve, reject) => {
    let stream: ReturnType<ClientHttp2Session["request"]>;
    try {
      stream = pool.session().request(headers, { endStream: false });
    } catch (error) {
      reject(new Error(`unsendable: ${(error as Error).message}`));
      return;
    }
    const result: H2Result = {
      httpStatus: 0,
      headers: {},
      trailers: {},
      body: Buffer.alloc(0),
      streamError: null,
      open: false,
    };
    const chunks: Buffer[] = [];
    let settled = false;
    // Settles exactly once, and destroys the stream, so no call outlives its bound even if a close never completes.
    const settle = (error?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!stream.destroyed) stream.destroy();
      if (error !== undefined) {
        reject(error);
        return;
      }
      result.body = Buffer.concat(chunks);
      if (result.streamError === null && result.httpStatus === 0 && !result.open)
        result.streamError = `closed with code ${stream.rstCode}`;
      resolve(result);
    };
    let timer = setTimeout(
      () => settle(new Error(`hang: no response headers and no close within ${timeoutMs} ms`)),
      timeoutMs,
    );
    stream.on("response", (received) => {
      result.httpStatus = Number(received[":status"] ?? 0);
      result.headers = flatHeaders(received as Record<string, string>);
      clearTimeout(timer);
      timer = setTimeout(() => {
        result.open = true;
        settle();
      }, openMs);
    });
    stream.on("trailers", (received) => {
      result.trailers = flatHeaders(received as Record<string, string>);
    });
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", (error: Error) => {
      result.streamError = error.message;
    });
    stream.on("close", () => settle());
    stream.end(body);
  });
}
