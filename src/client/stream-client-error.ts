// The client's one error type: a gRPC status name, the HTTP status when there was one, and whether a retry may help.

/** Statuses after which retrying the same request cannot succeed. */
const FATAL_STATUSES = new Set([
  "INVALID_ARGUMENT",
  "NOT_FOUND",
  "PERMISSION_DENIED",
  "UNAUTHENTICATED",
  "FAILED_PRECONDITION",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "ALREADY_EXISTS",
]);

const STATUS_BY_HTTP: Record<number, string> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  409: "ALREADY_EXISTS",
  413: "RESOURCE_EXHAUSTED",
  429: "RESOURCE_EXHAUSTED",
  499: "CANCELLED",
  501: "UNIMPLEMENTED",
  503: "UNAVAILABLE",
  504: "DEADLINE_EXCEEDED",
};

/** A failure of the client or reported by the server. */
export class StreamClientError extends Error {
  override readonly name = "StreamClientError";
  /** gRPC status name, e.g. `NOT_FOUND`; `UNAVAILABLE` for network failures. */
  readonly status: string;
  /** Stable reason from the server (e.g. `TOPIC_NOT_FOUND`, `SLOW_CONSUMER`), or "". */
  readonly reason: string;
  /** HTTP status of the response, when the failure came from one. */
  readonly httpStatus: number | undefined;

  constructor(
    status: string,
    message: string,
    options: { reason?: string; httpStatus?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = status;
    this.reason = options.reason ?? "";
    this.httpStatus = options.httpStatus;
  }

  /** False for errors a retry cannot fix (bad request, unknown topic, auth). */
  get retryable(): boolean {
    return !FATAL_STATUSES.has(this.status);
  }

  /** Normalizes anything caught: network failures become UNAVAILABLE. */
  static from(error: unknown): StreamClientError {
    if (error instanceof StreamClientError) return error;
    const message = error instanceof Error ? error.message : String(error);
    return new StreamClientError("UNAVAILABLE", `network error: ${message}`, { cause: error });
  }

  /** From a non-2xx response, reading Google's JSON error body when there is one. */
  static async fromResponse(response: Response, what: string): Promise<StreamClientError> {
    const text = await response.text().catch(() => "");
    let status = STATUS_BY_HTTP[response.status] ?? (response.status >= 500 ? "INTERNAL" : "UNKNOWN");
    let message = text.slice(0, 200);
    let reason = "";
    try {
      const body = JSON.parse(text) as {
        error?: { message?: string; status?: string; details?: { reason?: string }[] };
      };
      if (typeof body.error?.status === "string") status = body.error.status;
      if (typeof body.error?.message === "string") message = body.error.message;
      reason = body.error?.details?.find((detail) => typeof detail.reason === "string")?.reason ?? "";
    } catch {
      // not JSON (a proxy's page): keep the text
    }
    return new StreamClientError(status, `${what}: HTTP ${response.status} ${status}: ${message}`, {
      reason,
      httpStatus: response.status,
    });
  }
}
