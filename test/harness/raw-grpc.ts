// Hand-made gRPC requests over a raw node:http2 session, to send frames no real client would.
import { connect, constants } from "node:http2";

/** What the server answered to a raw gRPC request. */
export interface RawGrpcResult {
  /** HTTP :status. */
  httpStatus: number;
  /** grpc-status from the trailers (or from the headers of a trailers-only response); undefined if absent. */
  grpcStatus: number | undefined;
  /** grpc-message, percent-decoded. */
  grpcMessage: string;
  contentType: string;
  /** Response body bytes (length-prefixed messages). */
  body: Buffer;
}

/** A gRPC length-prefixed message: 1 byte compressed flag, 4 bytes big-endian length, payload. */
export function grpcFrame(
  payload: Uint8Array,
  options: { compressed?: boolean; declaredLength?: number } = {},
): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt8(options.compressed === true ? 1 : 0, 0);
  header.writeUInt32BE(options.declaredLength ?? payload.length, 1);
  return Buffer.concat([header, payload]);
}

/**
 * POSTs `body` as-is to `path` with gRPC headers and waits for the trailers.
 * @param options.reset - reset the stream (RST_STREAM CANCEL) right after writing instead of ending it;
 *   resolves once the stream is closed, with whatever arrived.
 * @param options.holdOpen - write `body` but never end the request (a client still sending); once the status
 *   arrives the client resets its stream (RST_STREAM CANCEL) and the call resolves.
 */
export function rawGrpcCall(
  url: string,
  path: string,
  body: Uint8Array,
  options: { timeoutMs?: number; reset?: boolean; holdOpen?: boolean; headers?: Record<string, string> } = {},
): Promise<RawGrpcResult> {
  return new Promise((resolve, reject) => {
    const session = connect(url);
    const chunks: Buffer[] = [];
    let headers: Record<string, unknown> = {};
    let trailers: Record<string, unknown> = {};
    let settled = false;
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.close();
      if (error !== undefined) {
        session.destroy();
        reject(error);
        return;
      }
      const status = trailers["grpc-status"] ?? headers["grpc-status"];
      const message = String(trailers["grpc-message"] ?? headers["grpc-message"] ?? "");
      resolve({
        httpStatus: Number(headers[":status"] ?? 0),
        grpcStatus: status === undefined ? undefined : Number(status),
        grpcMessage: decodeURIComponent(message),
        contentType: String(headers["content-type"] ?? ""),
        body: Buffer.concat(chunks),
      });
    };
    const timer = setTimeout(
      () => finish(new Error(`raw gRPC call to ${path} got no answer within ${options.timeoutMs ?? 10_000} ms`)),
      options.timeoutMs ?? 10_000,
    );
    session.on("error", (error) => finish(error));
    const stream = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      ...options.headers,
    });
    // With holdOpen the request never ends, so the stream closes only when one side resets it: the client does,
    // once it has the status (a server may leave such a stream half-open after answering).
    const closeOnStatus = (received: Record<string, unknown>) => {
      if (options.holdOpen === true && received["grpc-status"] !== undefined) stream.close(constants.NGHTTP2_CANCEL);
    };
    stream.on("response", (received) => {
      headers = received;
      closeOnStatus(received);
    });
    stream.on("trailers", (received) => {
      trailers = received;
      closeOnStatus(received);
    });
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", () => undefined);
    stream.on("close", () => finish());
    if (options.reset === true) {
      stream.write(body, () => stream.close(constants.NGHTTP2_CANCEL));
    } else if (options.holdOpen === true) {
      stream.write(body);
    } else {
      stream.end(body);
    }
  });
}
