// The lean gRPC path: serves application/grpc calls on node:http2 streams with the same service implementations connect serves.
import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import {
  create,
  type DescMessage,
  type DescMethod,
  type DescService,
  fromBinary,
  isMessage,
  toBinary,
} from "@bufbuild/protobuf";
import { Code, ConnectError, createServiceImplSpec, type ServiceImpl } from "@connectrpc/connect";
import { parseTimeout } from "@connectrpc/connect/protocol-grpc";
import { type Envelope, readEnvelopes } from "./envelope-reader.js";
import { COMPRESS_MIN_BYTES, type GrpcCompression, negotiateCompression } from "./grpc-compression.js";
import { frameMessage, writeMaxBytesError } from "./grpc-response.js";
import { LeanCall } from "./lean-call.js";
import { LeanHandlerContext } from "./lean-context.js";
import { type MessageCodec, PUBSUB_CODECS } from "./pubsub-codecs.js";

/** A service and its implementation, as registered on the connect router. */
export interface LeanGrpcService {
  descriptor: DescService;
  implementation: Partial<ServiceImpl<DescService>>;
}

export interface LeanGrpcOptions {
  services: readonly LeanGrpcService[];
  /** Aborts every call's signal (drain, close), as connect's `shutdownSignal`. */
  shutdownSignal: AbortSignal;
  /** Largest request message, in bytes (connect's `readMaxBytes`); more is RESOURCE_EXHAUSTED. */
  readMaxBytes: number;
  /** Largest response message, in bytes (connect's `writeMaxBytes`); more is RESOURCE_EXHAUSTED. */
  writeMaxBytes: number;
  /** Turns anything a call throws into the ConnectError it ends with: the effect of the server's errorInterceptor. */
  mapError(error: unknown): ConnectError;
}

export interface LeanGrpcHandler {
  /** True when `path` (`/package.Service/Method`) is a method of a served service. */
  serves(path: string): boolean;
  /**
   * Serves one call; the caller checked `serves(path)`, HTTP/2, POST and a binary gRPC content type. The stream is
   * a raw one (a listener stream route took it): unary answers do not clear listeners a compatibility-layer
   * response would have put on it.
   */
  handle(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, path: string): void;
}

/** Binary gRPC content types served here; `+json`, gRPC-Web and Connect stay on connect-node. */
export const LEAN_GRPC_CONTENT_TYPE = /^application\/grpc(?:\+proto)?$/i;

/** parseTimeout's answer for a call without `grpc-timeout`, shared. */
const NO_TIMEOUT: { timeoutMs?: number; error?: ConnectError } = Object.freeze({});

// biome-ignore lint/suspicious/noExplicitAny: implementations are called with the types their descriptor declares.
type AnyImpl = (input: any, context: LeanHandlerContext) => any;

interface Route {
  method: DescMethod;
  impl: AnyImpl;
  /** Hand-written codecs of the request and response messages, where there are (the hot Pub/Sub calls). */
  input: MessageCodec | undefined;
  output: MessageCodec | undefined;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Creates the handler over `options.services`; methods a service leaves out answer UNIMPLEMENTED, as in connect. */
export function createLeanGrpcHandler(options: LeanGrpcOptions): LeanGrpcHandler {
  const routes = new Map<string, Route>();
  for (const { descriptor, implementation } of options.services) {
    const spec = createServiceImplSpec(descriptor, implementation);
    for (const method of descriptor.methods) {
      routes.set(`/${descriptor.typeName}/${method.name}`, {
        method,
        impl: spec.methods[method.localName]!.impl as AnyImpl,
        input: PUBSUB_CODECS.get(method.input.typeName),
        output: PUBSUB_CODECS.get(method.output.typeName),
      });
    }
  }
  return {
    serves: (path) => routes.has(path),
    handle(stream, headers, path) {
      void serveCall(routes.get(path)!, stream, headers, options);
    },
  };
}

async function serveCall(
  route: Route,
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  options: LeanGrpcOptions,
): Promise<void> {
  const timeoutHeader = header(headers, "grpc-timeout");
  const timeout: { timeoutMs?: number; error?: ConnectError } =
    timeoutHeader === undefined ? NO_TIMEOUT : parseTimeout(timeoutHeader, Number.MAX_SAFE_INTEGER);
  const compression = negotiateCompression(header(headers, "grpc-encoding"), header(headers, "grpc-accept-encoding"));
  const deadlineAt =
    timeout.timeoutMs === undefined || timeout.error !== undefined ? undefined : Date.now() + timeout.timeoutMs;
  const context = new LeanHandlerContext(route.method, headers, deadlineAt, options.shutdownSignal);
  // Streamed responses go uncompressed, as grpc-js and grpc-go servers send them by default: each message
  // would be deflated alone, and each would wait a round trip through zlib's thread pool (StreamingPull latency).
  const streamed = route.method.methodKind === "server_streaming" || route.method.methodKind === "bidi_streaming";
  const responseCompression = streamed ? null : compression.response;
  const call = new LeanCall(stream, context, responseCompression, true, options.mapError);
  try {
    if (compression.error !== undefined) throw compression.error;
    if (timeout.error !== undefined) throw timeout.error;
    if (timeout.timeoutMs !== undefined) call.startDeadline(timeout.timeoutMs);
    const { method } = route;
    if (method.methodKind === "unary") {
      // No closures, and awaits only of what can be pending (an await of a plain value still costs a turn of the
      // microtask queue): the unary call is the one whose fixed cost matters.
      const envelope = await call.readSingleMessage(options.readMaxBytes, "unary");
      const decoded = decodeMessage(method.input, envelope, compression.request, options.readMaxBytes, route.input);
      const output = await route.impl(decoded instanceof Promise ? await decoded : decoded, context);
      if (call.done) return;
      const frame = encodeMessage(method.output, output, options.writeMaxBytes, compression.response, route.output);
      call.finishWith(frame instanceof Promise ? await frame : frame);
      return;
    }
    const decode = (envelope: Envelope) =>
      decodeMessage(method.input, envelope, compression.request, options.readMaxBytes, route.input);
    const encode = (message: unknown) =>
      encodeMessage(method.output, message, options.writeMaxBytes, responseCompression, route.output);
    switch (method.methodKind) {
      case "server_streaming": {
        const input = await decode(await call.readSingleMessage(options.readMaxBytes, "server-streaming"));
        await writeAll(call, route.impl(input, context), encode);
        return;
      }
      case "client_streaming": {
        const output = await route.impl(decodeAll(readEnvelopes(stream, options.readMaxBytes), decode), context);
        if (call.done) return;
        call.finishWith(await encode(output));
        return;
      }
      case "bidi_streaming": {
        await writeAll(
          call,
          route.impl(decodeAll(readEnvelopes(stream, options.readMaxBytes), decode), context),
          encode,
        );
        return;
      }
    }
  } catch (error) {
    call.fail(error);
  }
}

/** Writes every response message of a streaming implementation, then ends OK; stops when the call ends first. */
async function writeAll(
  call: LeanCall,
  messages: AsyncIterable<unknown>,
  encode: (message: unknown) => Buffer | Promise<Buffer>,
): Promise<void> {
  for await (const message of messages) {
    if (call.done) return;
    await call.write(await encode(message));
    if (call.done) return;
  }
  call.finish();
}

async function* decodeAll<T>(envelopes: AsyncIterable<Envelope>, decode: (envelope: Envelope) => Promise<T> | T) {
  for await (const envelope of envelopes) yield await decode(envelope);
}

/**
 * One response message, serialized and framed (compressed when negotiated and large enough). A fast codec writes an
 * uncompressed message straight into its frame; toBinary does what it declines.
 */
function encodeMessage(
  schema: DescMessage,
  message: unknown,
  writeMaxBytes: number,
  compression: GrpcCompression | null,
  codec: MessageCodec | undefined,
): Buffer | Promise<Buffer> {
  // A response that carries its own uncompressed frame (StreamingPull batches, encoded by hand) goes out as is.
  const preFramed = compression === null ? (message as { [GRPC_FRAME]?: Buffer })[GRPC_FRAME] : undefined;
  if (preFramed !== undefined && preFramed.length - 5 <= writeMaxBytes) return preFramed;
  if (codec?.size !== undefined) {
    const size = codec.size(message);
    if (size >= 0 && (compression === null || size < COMPRESS_MIN_BYTES)) {
      if (size > writeMaxBytes) throw writeMaxBytesError(size, writeMaxBytes);
      const frame = Buffer.allocUnsafe(5 + size);
      frame[0] = 0;
      frame.writeUInt32BE(size, 1);
      codec.write!(message, frame, 5);
      return frame;
    }
  }
  return frameMessage(toBinary(schema, normalize(schema, message)), writeMaxBytes, compression);
}

/** Where a pre-encoded response carries its gRPC frame (set by transports/pubsub, which this must not import). */
const GRPC_FRAME = Symbol.for("streamgate.grpc.frame");

/** Implementations may return a plain init object; connect turns it into a message the same way. */
function normalize(schema: DescMessage, message: unknown) {
  return isMessage(message, schema) ? message : create(schema, message as never);
}

function decodeMessage(
  schema: DescMessage,
  envelope: Envelope,
  compression: GrpcCompression | null,
  readMaxBytes: number,
  codec: MessageCodec | undefined,
): unknown {
  if ((envelope.flags & 1) === 1) {
    if (compression === null) {
      throw new ConnectError("received compressed envelope, but do not know how to decompress", Code.InvalidArgument);
    }
    return compression.decompress(envelope.data, readMaxBytes).then((data) => parse(schema, data, codec));
  }
  return parse(schema, envelope.data, codec);
}

/** The request message: by the fast codec when it takes the bytes, else by fromBinary (whose errors are the answer). */
function parse(schema: DescMessage, data: Uint8Array, codec: MessageCodec | undefined): unknown {
  const fast = codec?.decode?.(data);
  if (fast !== undefined) return fast;
  try {
    return fromBinary(schema, data);
  } catch (error) {
    throw new ConnectError(
      `parse binary: ${error instanceof Error ? error.message : String(error)}`,
      Code.InvalidArgument,
    );
  }
}
