// Slow-consumer errors that tell the client where to resume.
import { Code, StreamgateError } from "../errors/index.js";

/** Adds where to resume to a slow-consumer error, so a client knows what to send next. */
export function withResumeHint(error: unknown, lastOffset: number): unknown {
  if (error instanceof StreamgateError && error.code === Code.RESOURCE_EXHAUSTED) {
    return new StreamgateError(
      error.code,
      `${error.message}; resume with position.after_offset = the last offset you received (the server sent up to ${lastOffset})`,
      { reason: error.reason, details: { ...error.details, lastOffset: String(lastOffset) }, cause: error },
    );
  }
  return error;
}
