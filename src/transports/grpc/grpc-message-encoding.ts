// Re-encodes grpc-message as the gRPC spec says (percent-encode only bytes outside 0x20-0x7E and '%').
import type { connectNodeAdapter } from "@connectrpc/connect-node";

type NodeResponse = Parameters<ReturnType<typeof connectNodeAdapter>>[1];
type HeaderBag = Record<string, string | string[] | number | undefined>;

/**
 * connect-es writes grpc-message with encodeURIComponent, so "," ":" ";" arrive as %2C %3A %3B in
 * grpc-js (which decodes with decodeURI, leaving reserved characters encoded): the official Pub/Sub
 * client would show "name%3A topic id ...". The spec only asks to encode non-printable bytes and '%'.
 */
export function specPercentEncode(message: string): string {
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

function fix(headers: unknown): void {
  if (headers === null || typeof headers !== "object") return;
  const bag = headers as HeaderBag;
  const value = bag["grpc-message"];
  if (typeof value !== "string") return;
  try {
    bag["grpc-message"] = specPercentEncode(decodeURIComponent(value));
  } catch {
    // Not valid percent-encoding: leave it as written.
  }
}

/** Patches a response so grpc-message headers and trailers are spec-encoded. */
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
