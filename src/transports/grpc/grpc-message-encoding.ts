// Re-encodes grpc-message as the gRPC spec says (percent-encode only bytes outside 0x20-0x7E and '%'); undecodable requests are INVALID_ARGUMENT.
import type { connectNodeAdapter } from "@connectrpc/connect-node";
import { specPercentEncode } from "../../http/index.js";

type NodeResponse = Parameters<ReturnType<typeof connectNodeAdapter>>[1];
type HeaderBag = Record<string, string | string[] | number | undefined>;

/**
 * connect-es reports a request message it cannot decode (garbage protobuf, a compressed flag without
 * grpc-encoding, a body that does not decompress) as INTERNAL, before any interceptor runs. It is the client's fault: INVALID_ARGUMENT.
 */
export const UNDECODABLE_REQUEST =
  /^(parse binary: |received compressed envelope, but do not know how to decompress|decompression failed)/;

function fix(headers: unknown): void {
  if (headers === null || typeof headers !== "object") return;
  const bag = headers as HeaderBag;
  const value = bag["grpc-message"];
  if (typeof value !== "string") return;
  try {
    const message = decodeURIComponent(value);
    bag["grpc-message"] = specPercentEncode(message);
    if (String(bag["grpc-status"]) === "13" && UNDECODABLE_REQUEST.test(message)) bag["grpc-status"] = "3";
  } catch {
    // Not valid percent-encoding: leave it as written.
  }
}

/** Patches a response so grpc-message headers and trailers are spec-encoded (and decode failures INVALID_ARGUMENT). */
export function useSpecGrpcMessageEncoding(response: NodeResponse): void {
  const writeHead = response.writeHead.bind(response) as (...args: unknown[]) => unknown;
  (response as { writeHead: (...args: unknown[]) => unknown }).writeHead = (...args: unknown[]) => {
    for (const arg of args) fix(arg);
    return writeHead(...args);
  };
  const addTrailers = response.addTrailers.bind(response) as (headers: unknown) => void;
  (response as { addTrailers: (headers: unknown) => void }).addTrailers = (headers: unknown) => {
    fix(headers);
    addTrailers(headers);
  };
}

/**
 * Patches a Connect-protocol unary response (`application/proto`): connect-es answers a body it cannot
 * decode with HTTP 500 `{"code":"internal"}` before any interceptor runs; this turns that one answer into
 * 400 `{"code":"invalid_argument"}`. Every other response passes through untouched.
 */
export function useConnectDecodeErrorStatus(response: NodeResponse): void {
  type Loose = (...args: unknown[]) => unknown;
  const patched = response as unknown as { writeHead: Loose; write: Loose; end: Loose };
  const writeHead = patched.writeHead.bind(response) as Loose;
  const write = patched.write.bind(response) as Loose;
  const end = patched.end.bind(response) as Loose;
  let held: unknown[] | null = null;
  const release = (chunk: unknown) => {
    if (held === null) return chunk;
    const head = held;
    held = null;
    if (!(chunk instanceof Uint8Array)) {
      writeHead(...head);
      return chunk;
    }
    let body: { code?: unknown; message?: unknown } | null = null;
    try {
      body = JSON.parse(Buffer.from(chunk).toString("utf8"));
    } catch {
      // Not connect's JSON error: pass through.
    }
    if (
      body === null ||
      body.code !== "internal" ||
      typeof body.message !== "string" ||
      !UNDECODABLE_REQUEST.test(body.message)
    ) {
      writeHead(...head);
      return chunk;
    }
    const text = JSON.stringify({ code: "invalid_argument", message: body.message });
    const headers = { ...((head[1] ?? {}) as HeaderBag) };
    delete headers["content-length"];
    writeHead(400, headers);
    return Buffer.from(text);
  };
  patched.writeHead = (...args: unknown[]) => {
    if (args[0] === 500 && held === null) {
      held = args;
      return response;
    }
    return writeHead(...args);
  };
  patched.write = (chunk: unknown, ...rest: unknown[]) => write(release(chunk), ...rest);
  patched.end = (...args: unknown[]) => {
    if (held !== null) {
      const chunk = typeof args[0] === "function" ? undefined : args[0];
      if (chunk === undefined) writeHead(...(held as unknown[]));
      else args[0] = release(chunk);
      held = null;
    }
    return end(...args);
  };
}
