// One table each from Code to HTTP status and WebSocket close code.
import { Code } from "./code.js";

/** HTTP status for each code, as Google's REST APIs map them. */
export const httpStatusByCode: Readonly<Record<Code, number>> = {
  [Code.OK]: 200,
  [Code.CANCELLED]: 499,
  [Code.UNKNOWN]: 500,
  [Code.INVALID_ARGUMENT]: 400,
  [Code.DEADLINE_EXCEEDED]: 504,
  [Code.NOT_FOUND]: 404,
  [Code.ALREADY_EXISTS]: 409,
  [Code.PERMISSION_DENIED]: 403,
  [Code.RESOURCE_EXHAUSTED]: 429,
  [Code.FAILED_PRECONDITION]: 400,
  [Code.ABORTED]: 409,
  [Code.OUT_OF_RANGE]: 400,
  [Code.UNIMPLEMENTED]: 501,
  [Code.INTERNAL]: 500,
  [Code.UNAVAILABLE]: 503,
  [Code.DATA_LOSS]: 500,
  [Code.UNAUTHENTICATED]: 401,
};

/**
 * WebSocket close code for each code. 1008 (policy) for auth and quota, 1011 for server faults,
 * 1013 (try again later) for retryable overload, 1003 for unacceptable data, 4000+N otherwise.
 */
export const wsCloseCodeByCode: Readonly<Record<Code, number>> = {
  [Code.OK]: 1000,
  [Code.CANCELLED]: 1000,
  [Code.UNKNOWN]: 1011,
  [Code.INVALID_ARGUMENT]: 1003,
  [Code.DEADLINE_EXCEEDED]: 4004,
  [Code.NOT_FOUND]: 4005,
  [Code.ALREADY_EXISTS]: 4006,
  [Code.PERMISSION_DENIED]: 1008,
  [Code.RESOURCE_EXHAUSTED]: 1008,
  [Code.FAILED_PRECONDITION]: 4009,
  [Code.ABORTED]: 4010,
  [Code.OUT_OF_RANGE]: 4011,
  [Code.UNIMPLEMENTED]: 4012,
  [Code.INTERNAL]: 1011,
  [Code.UNAVAILABLE]: 1013,
  [Code.DATA_LOSS]: 1011,
  [Code.UNAUTHENTICATED]: 1008,
};
