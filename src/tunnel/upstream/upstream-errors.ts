// The errors forwarders report, each with its stable reason (documented in docs/errors.md).
import { constants } from "node:http2";
import { Code, StreamgateError } from "../../errors/index.js";

/** The backend could not be reached or broke the connection. */
export function upstreamUnavailable(target: string, detail: string, cause?: unknown): StreamgateError {
  return new StreamgateError(Code.UNAVAILABLE, `upstream ${target} is unavailable: ${detail}`, {
    reason: "TUNNEL_UPSTREAM_UNAVAILABLE",
    cause,
  });
}

/** The request's deadline passed before or while the backend answered. */
export function upstreamDeadline(target: string, before: boolean): StreamgateError {
  return new StreamgateError(
    Code.DEADLINE_EXCEEDED,
    before
      ? `the deadline expired before the request reached upstream ${target}`
      : `upstream ${target} did not answer within the deadline`,
    { reason: "TUNNEL_DEADLINE" },
  );
}

/** The caller aborted the exchange (client cancel, tunnel stream gone). */
export function upstreamCancelled(target: string): StreamgateError {
  return new StreamgateError(Code.CANCELLED, `the request to upstream ${target} was cancelled`, {
    reason: "TUNNEL_CANCELLED",
  });
}

/** The backend broke the protocol (e.g. a gRPC response without trailers). */
export function upstreamProtocolError(target: string, detail: string): StreamgateError {
  return new StreamgateError(Code.INTERNAL, `upstream ${target} broke the protocol: ${detail}`, {
    reason: "TUNNEL_UPSTREAM_PROTOCOL",
  });
}

/** gRPC's mapping of an HTTP/2 RST_STREAM code to a status (gRPC over HTTP/2 spec, "Errors"). */
export function codeOfRstStream(rstCode: number): Code {
  switch (rstCode) {
    case constants.NGHTTP2_REFUSED_STREAM:
      return Code.UNAVAILABLE;
    case constants.NGHTTP2_CANCEL:
      return Code.CANCELLED;
    case constants.NGHTTP2_ENHANCE_YOUR_CALM:
      return Code.RESOURCE_EXHAUSTED;
    case constants.NGHTTP2_INADEQUATE_SECURITY:
      return Code.PERMISSION_DENIED;
    default:
      return Code.INTERNAL;
  }
}

/** The system error code (ECONNREFUSED, ...) of an error or of its cause, if any. */
export function systemErrorCode(error: unknown): string | undefined {
  for (let current = error, depth = 0; current !== undefined && current !== null && depth < 4; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && /^E[A-Z]+$/.test(code)) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** A readable detail of a connection-level failure: the innermost cause's message. */
export function failureDetail(error: unknown): string {
  let current = error as { message?: unknown; cause?: unknown } | undefined;
  while (current?.cause !== undefined && current.cause !== null) current = current.cause as typeof current;
  return typeof current?.message === "string" ? current.message : String(error);
}

/** gRPC's mapping of the HTTP status of an answer without grpc-status to a code (gRPC spec, "HTTP to gRPC Status Code Mapping"). */
export function codeOfHttpStatus(status: number): Code {
  if (status === 400) return Code.INTERNAL;
  if (status === 401) return Code.UNAUTHENTICATED;
  if (status === 403) return Code.PERMISSION_DENIED;
  if (status === 404) return Code.UNIMPLEMENTED;
  if (status === 429 || status === 502 || status === 503 || status === 504) return Code.UNAVAILABLE;
  return Code.UNKNOWN;
}
