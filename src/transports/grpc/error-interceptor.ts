// Maps StreamgateError (and anything else thrown) to ConnectError, for unary and streaming calls alike.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { StreamgateError } from "../../errors/index.js";
import { ERROR_INFO_DOMAIN, ERROR_INFO_TYPE, encodeErrorInfo } from "./error-info.js";
import { UNDECODABLE_REQUEST } from "./grpc-message-encoding.js";

/** Converts any error to a ConnectError with the same gRPC code; internal details stay in logs. */
export function toConnectError(error: unknown): ConnectError {
  if (error instanceof ConnectError) {
    // A streamed request message that does not decode is the client's fault, not INTERNAL (connect-es' code).
    if (error.code === Code.Internal && UNDECODABLE_REQUEST.test(error.rawMessage))
      return new ConnectError(error.rawMessage, Code.InvalidArgument, undefined, undefined, error);
    return error;
  }
  const normalized = StreamgateError.from(error);
  // Connect's Code enum uses gRPC's numbers.
  const connectError = new ConnectError(normalized.message, normalized.code as number, undefined, undefined, error);
  // The same google.rpc.ErrorInfo REST bodies carry (client libraries read its metadata, e.g. exactly-once acks).
  if (Object.keys(normalized.details).length > 0) {
    const value = encodeErrorInfo(normalized.reason, ERROR_INFO_DOMAIN, normalized.details);
    connectError.details.push({ type: ERROR_INFO_TYPE, value });
  }
  return connectError;
}

async function* mapStreamErrors<T>(source: AsyncIterable<T>): AsyncGenerator<T> {
  try {
    yield* source;
  } catch (error) {
    throw toConnectError(error);
  }
}

/** Interceptor that maps errors of every call, including those raised while streaming responses. */
export const errorInterceptor: Interceptor = (next) => async (request) => {
  try {
    const response = await next(request);
    if (response.stream) return { ...response, message: mapStreamErrors(response.message) };
    return response;
  } catch (error) {
    throw toConnectError(error);
  }
};
