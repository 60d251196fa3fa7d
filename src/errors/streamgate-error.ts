// The one error type every component throws and every transport translates.
import { Code } from "./code.js";

/** Construction options for {@link StreamgateError}. */
export interface StreamgateErrorOptions {
  /** Stable machine-readable reason, e.g. `TOPIC_NOT_FOUND`; documented in docs/errors.md. */
  reason?: string;
  /** Underlying error, kept for logs; never shown to clients. */
  cause?: unknown;
  /** Extra detail for clients (field names, limits); safe to expose. */
  details?: Record<string, string>;
}

/** An error with a closed {@link Code}, a stable reason and a message a person understands. */
export class StreamgateError extends Error {
  override readonly name = "StreamgateError";
  readonly code: Code;
  readonly reason: string;
  readonly details: Record<string, string>;

  constructor(code: Code, message: string, options: StreamgateErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.reason = options.reason ?? defaultReason(code);
    this.details = options.details ?? {};
  }

  /** Normalizes anything caught into a StreamgateError (unknown errors become INTERNAL). */
  static from(error: unknown): StreamgateError {
    if (error instanceof StreamgateError) return error;
    if (error instanceof Error && error.name === "AbortError") {
      return new StreamgateError(Code.CANCELLED, "the operation was cancelled", { cause: error });
    }
    const message = error instanceof Error ? error.message : String(error);
    return new StreamgateError(Code.INTERNAL, `internal error: ${message}`, { reason: "INTERNAL", cause: error });
  }
}

function defaultReason(code: Code): string {
  for (const [name, value] of Object.entries(Code)) if (value === code) return name;
  return "UNKNOWN";
}

/** Shorthands for the errors components throw most. */
export const errors = {
  invalidArgument: (field: string, message: string) =>
    new StreamgateError(Code.INVALID_ARGUMENT, `${field}: ${message}`, {
      reason: "INVALID_ARGUMENT",
      details: { field },
    }),
  notFound: (kind: "topic" | "subscription" | "snapshot" | "schema", name: string) =>
    new StreamgateError(Code.NOT_FOUND, `Resource not found (resource=${name}).`, {
      reason: `${kind.toUpperCase()}_NOT_FOUND`,
      details: { resource: name },
    }),
  alreadyExists: (kind: "topic" | "subscription" | "snapshot" | "schema", name: string) =>
    new StreamgateError(Code.ALREADY_EXISTS, `Resource already exists in the project (resource=${name}).`, {
      reason: `${kind.toUpperCase()}_ALREADY_EXISTS`,
      details: { resource: name },
    }),
  failedPrecondition: (reason: string, message: string) =>
    new StreamgateError(Code.FAILED_PRECONDITION, message, { reason }),
  resourceExhausted: (reason: string, message: string) =>
    new StreamgateError(Code.RESOURCE_EXHAUSTED, message, { reason }),
  unavailable: (reason: string, message: string) => new StreamgateError(Code.UNAVAILABLE, message, { reason }),
} as const;
