// gRPC message compression as connect-node negotiates it: gzip and br, request and response, identity otherwise.
import { promisify } from "node:util";
import { brotliCompress, brotliDecompress, gunzip, gzip } from "node:zlib";
import { Code, ConnectError } from "@connectrpc/connect";

/** One message codec named in `grpc-encoding`. */
export interface GrpcCompression {
  readonly name: string;
  compress(data: Uint8Array): Promise<Uint8Array>;
  /** Rejects RESOURCE_EXHAUSTED when the inflated message exceeds `maxBytes`. */
  decompress(data: Uint8Array, maxBytes: number): Promise<Uint8Array>;
}

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);
const brotliCompressAsync = promisify(brotliCompress);
const brotliDecompressAsync = promisify(brotliDecompress);

function inflated(inflate: (data: Uint8Array, maxOutputLength: number) => Promise<Uint8Array>) {
  return async (data: Uint8Array, maxBytes: number): Promise<Uint8Array> => {
    if (data.length === 0) return data;
    try {
      return await inflate(data, maxBytes);
    } catch (error) {
      // connect-node's messages; any other inflate failure is the client's bytes (INVALID_ARGUMENT, as the server maps it).
      if ((error as { code?: unknown }).code === "ERR_BUFFER_TOO_LARGE") {
        throw new ConnectError(
          `message is larger than configured readMaxBytes ${maxBytes} after decompression`,
          Code.ResourceExhausted,
        );
      }
      throw new ConnectError("decompression failed", Code.InvalidArgument, undefined, undefined, error);
    }
  };
}

/** The encodings served, in connect-node's order of preference (its adapter's default `acceptCompression`). */
export const grpcCompressions: readonly GrpcCompression[] = [
  {
    name: "gzip",
    compress: (data) => gzipAsync(data),
    decompress: inflated((data, maxOutputLength) => gunzipAsync(data, { maxOutputLength })),
  },
  {
    name: "br",
    compress: (data) => brotliCompressAsync(data),
    decompress: inflated((data, maxOutputLength) => brotliDecompressAsync(data, { maxOutputLength })),
  },
];

/** Value of `grpc-accept-encoding` on a refusal of an unknown encoding. */
export const ACCEPTED_ENCODINGS = grpcCompressions.map((compression) => compression.name).join(",");

/** Smallest response message compressed (connect's `compressMinBytes` default). */
export const COMPRESS_MIN_BYTES = 1024;

/** The result of `negotiateCompression`: request and response codecs (null = identity), or the refusal. */
export interface NegotiatedCompression {
  request: GrpcCompression | null;
  response: GrpcCompression | null;
  error: ConnectError | undefined;
}

function find(name: string): GrpcCompression | undefined {
  for (const compression of grpcCompressions) if (compression.name === name) return compression;
  return undefined;
}

/** Identity both ways: the answer for a call that names no encoding, shared. */
const IDENTITY: NegotiatedCompression = Object.freeze({ request: null, response: null, error: undefined });

/**
 * Picks the codecs from `grpc-encoding` and `grpc-accept-encoding` exactly as connect's
 * `compressionNegotiate`: an unknown request encoding is UNIMPLEMENTED naming the accepted ones; the
 * response uses the first accepted encoding served, or the request's when the client lists none.
 */
export function negotiateCompression(
  requested: string | undefined,
  accepted: string | undefined,
): NegotiatedCompression {
  if (requested === undefined && (accepted === undefined || accepted === "")) return IDENTITY;
  // A client sends the same grpc-accept-encoding on every call (grpc-js: "identity,deflate,gzip"): answered once.
  if (requested === undefined) {
    let known = BY_ACCEPTED.get(accepted!);
    if (known === undefined) {
      known = Object.freeze(pick(undefined, accepted));
      if (BY_ACCEPTED.size < MAX_REMEMBERED_ACCEPTS) BY_ACCEPTED.set(accepted!, known);
    }
    return known;
  }
  return pick(requested, accepted);
}

/** Negotiations of calls that name only grpc-accept-encoding, by its value (a handful of distinct values). */
const BY_ACCEPTED = new Map<string, NegotiatedCompression>();
const MAX_REMEMBERED_ACCEPTS = 64;

function pick(requested: string | undefined, accepted: string | undefined): NegotiatedCompression {
  let request: GrpcCompression | null = null;
  let error: ConnectError | undefined;
  if (requested !== undefined && requested !== "identity") {
    const found = find(requested);
    if (found !== undefined) request = found;
    else
      error = new ConnectError(
        `unknown compression "${requested}": supported encodings are ${ACCEPTED_ENCODINGS}`,
        Code.Unimplemented,
        { "grpc-accept-encoding": ACCEPTED_ENCODINGS },
      );
  }
  if (accepted === undefined || accepted === "") return { request, response: request, error };
  let response: GrpcCompression | null = null;
  for (const name of accepted.split(",")) {
    const found = find(name.trim());
    if (found !== undefined) {
      response = found;
      break;
    }
  }
  return { request, response, error };
}
