// The verified TLS client certificate (mTLS) of a request, for auth and the tunnel to identify the caller.
import type { IncomingMessage } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import type { TLSSocket } from "node:tls";

/** What a verified client certificate says about its holder. */
export interface ClientCertificate {
  /** Subject as an RFC 4514-like string, most specific last as OpenSSL prints it, e.g. "O=acme,CN=agent-1". */
  subject: string;
  /** Subject common name ("" when absent). */
  commonName: string;
  /** Issuer, in the same form as `subject`. */
  issuer: string;
  /** SHA-256 fingerprint, colon-separated uppercase hex as Node prints it. */
  fingerprint256: string;
  /** Subject alternative names as Node prints them ("DNS:a, URI:spiffe://…"), "" when absent. */
  subjectAltName: string;
}

function tlsSocketOf(request: IncomingMessage | Http2ServerRequest): TLSSocket | undefined {
  // HTTP/2: the session's socket; HTTP/1.1: the request's own socket.
  const socket = "stream" in request && request.stream !== undefined ? request.stream.session?.socket : request.socket;
  if (socket === undefined || socket === null) return undefined;
  // Not `in`: HTTP/2 hands out a Proxy of the socket that answers property reads but not `has`.
  return typeof (socket as Partial<TLSSocket>).getPeerCertificate === "function" ? (socket as TLSSocket) : undefined;
}

/** A certificate subject or issuer as "O=acme,CN=agent-1" (fields in certificate order). */
export function formatSubject(name: object | undefined): string {
  if (name === undefined || name === null) return "";
  return Object.entries(name as Record<string, string | string[]>)
    .map(([key, value]) => (Array.isArray(value) ? value.map((item) => `${key}=${item}`).join(",") : `${key}=${value}`))
    .join(",");
}

/**
 * The client certificate of `request` when the connection is TLS and the certificate was
 * verified against `--tls-client-ca`; null otherwise (plain HTTP, no mTLS, no certificate,
 * or an unverified one under `--tls-client-cert-optional`).
 */
export function clientCertificate(request: IncomingMessage | Http2ServerRequest): ClientCertificate | null {
  const socket = tlsSocketOf(request);
  if (socket === undefined || !socket.authorized) return null;
  const peer = socket.getPeerCertificate();
  if (peer === null || typeof peer !== "object" || Object.keys(peer).length === 0) return null;
  const commonName = peer.subject?.CN;
  return {
    subject: formatSubject(peer.subject),
    commonName: Array.isArray(commonName) ? (commonName[0] ?? "") : (commonName ?? ""),
    issuer: formatSubject(peer.issuer),
    fingerprint256: peer.fingerprint256,
    subjectAltName: peer.subjectaltname ?? "",
  };
}

/** The verified client certificate's subject (see {@link clientCertificate}), or null. */
export function clientCertificateSubject(request: IncomingMessage | Http2ServerRequest): string | null {
  return clientCertificate(request)?.subject ?? null;
}
