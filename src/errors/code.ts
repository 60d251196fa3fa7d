// The closed set of error codes: gRPC's sixteen status codes, shared by every transport.

/** gRPC status codes; every streamgate error carries exactly one. */
export const Code = {
  /** Not an error; present so the table mirrors gRPC. */
  OK: 0,
  /** The operation was cancelled, typically by the caller. */
  CANCELLED: 1,
  /** An error with no better code. */
  UNKNOWN: 2,
  /** The request is invalid regardless of system state (bad name, bad field). */
  INVALID_ARGUMENT: 3,
  /** The deadline expired before the operation completed. */
  DEADLINE_EXCEEDED: 4,
  /** A named resource (topic, subscription, snapshot) does not exist. */
  NOT_FOUND: 5,
  /** The resource to create already exists. */
  ALREADY_EXISTS: 6,
  /** The caller is authenticated but lacks permission. */
  PERMISSION_DENIED: 7,
  /** A limit or quota was exceeded (message size, buffer, rate). */
  RESOURCE_EXHAUSTED: 8,
  /** The system is not in the state the operation requires. */
  FAILED_PRECONDITION: 9,
  /** The operation was aborted, e.g. by a concurrency conflict. */
  ABORTED: 10,
  /** A value is outside the valid range. */
  OUT_OF_RANGE: 11,
  /** The operation is not implemented or not supported. */
  UNIMPLEMENTED: 12,
  /** An invariant broke inside the server. */
  INTERNAL: 13,
  /** The service is temporarily unavailable (draining, restarting); retry. */
  UNAVAILABLE: 14,
  /** Unrecoverable data loss or corruption. */
  DATA_LOSS: 15,
  /** The request has no valid credentials. */
  UNAUTHENTICATED: 16,
} as const;

export type Code = (typeof Code)[keyof typeof Code];

/** Code names by number, e.g. `codeName(5) === "NOT_FOUND"`. */
export function codeName(code: Code): keyof typeof Code {
  const entry = Object.entries(Code).find(([, value]) => value === code);
  return (entry?.[0] ?? "UNKNOWN") as keyof typeof Code;
}
