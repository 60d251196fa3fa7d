// Writes a gRPC response on a node:http2 stream: message frames (compressed when negotiated), headers and status trailers.
import type { OutgoingHttpHeaders } from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { specPercentEncode } from "../../../http/index.js";
import { COMPRESS_MIN_BYTES, type GrpcCompression } from "./grpc-compression.js";

/** The content type connect answers every gRPC (binary) request with. */
export const RESPONSE_CONTENT_TYPE = "application/grpc+proto";

/**
 * One length-prefixed frame of `data`, compressed first when `compression` is set and the message is at
 * least connect's `compressMinBytes`. Throws RESOURCE_EXHAUSTED past `writeMaxBytes` (checked on the
 * serialized message, as connect does).
 */
export function frameMessage(
  data: Uint8Array,
  writeMaxBytes: number,
  compression: GrpcCompression | null,
): Buffer | Promise<Buffer> {
  if (data.length > writeMaxBytes) throw writeMaxBytesError(data.length, writeMaxBytes);
  if (compression !== null && data.length >= COMPRESS_MIN_BYTES) {
    return compression.compress(data).then((compressed) => frame(1, compressed));
  }
  return frame(0, data);
}

/** A response message larger than `writeMaxBytes` (connect's words). */
export function writeMaxBytesError(size: number, writeMaxBytes: number): ConnectError {
  return new ConnectError(
    `message size ${size} is larger than configured writeMaxBytes ${writeMaxBytes}`,
    Code.ResourceExhausted,
  );
}

function frame(flags: number, data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + data.length);
  out[0] = flags;
  out.writeUInt32BE(data.length, 1);
  out.set(data, 5);
  return out;
}

/** Copies a Headers object (as implementations fill `ctx.responseHeader` / `ctx.responseTrailer`) into `target`. */
export function copyHeaders(source: Headers | undefined, target: OutgoingHttpHeaders): OutgoingHttpHeaders {
  source?.forEach((value, name) => {
    target[name] = value;
  });
  return target;
}

/** The trailers of a call that ended OK: `grpc-status: 0` after whatever the implementation set. */
export function okTrailers(trailer: Headers | undefined): OutgoingHttpHeaders {
  const out = copyHeaders(trailer, {});
  out["grpc-status"] = "0";
  return out;
}

/**
 * The trailers of a failed call, as connect's `setTrailerStatus` writes them (the error's metadata,
 * `grpc-status`, `grpc-status-details-bin` when it has details), except that `grpc-message` is
 * percent-encoded as the gRPC spec says (what useSpecGrpcMessageEncoding does to connect's output).
 */
export function errorTrailers(error: ConnectError, trailer: Headers | undefined): OutgoingHttpHeaders {
  const out = copyHeaders(trailer, {});
  copyHeaders(setTrailerStatus(new Headers(), error), out);
  out["grpc-status"] = String(error.code);
  out["grpc-message"] = specPercentEncode(error.rawMessage);
  return out;
}
