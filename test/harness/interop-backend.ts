// A real @grpc/grpc-js server for test/fixtures/interop/test-service.proto: the interop TestService, an
// Echo service for load tests, and a log of every call (keyed by `x-interop-call-id`) so tests can see
// whether a client's cancel or deadline reached the backend.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

/** What every grpc-js server call has (grpc-js does not export the type by name). */
interface ServerSurfaceCall {
  metadata: grpc.Metadata;
  on(event: "cancelled", listener: () => void): unknown;
  getDeadline(): grpc.Deadline;
}

export const interopProtoPath = fileURLToPath(new URL("../fixtures/interop/test-service.proto", import.meta.url));
export const interopPackage = "streamgate.interop.v1";
/** Metadata a case sets so the backend's call log can be looked up by the test. */
export const CALL_ID_HEADER = "x-interop-call-id";
export const ECHO_INITIAL_HEADER = "x-grpc-test-echo-initial";
export const ECHO_TRAILING_HEADER = "x-grpc-test-echo-trailing-bin";

/** camelCase fields, int64 as numbers (sequences stay small), bytes as Buffers, defaults filled. */
const loaderOptions: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [join(fileURLToPath(new URL("../fixtures/interop/", import.meta.url)))],
};

let loaded: grpc.GrpcObject | undefined;

/** The loaded package `streamgate.interop.v1` (TestService, UnimplementedService, Echo constructors). */
export function interopServices(): {
  TestService: grpc.ServiceClientConstructor;
  UnimplementedService: grpc.ServiceClientConstructor;
  Echo: grpc.ServiceClientConstructor;
} {
  loaded ??= grpc.loadPackageDefinition(protoLoader.loadSync(interopProtoPath, loaderOptions));
  let node: unknown = loaded;
  for (const part of interopPackage.split(".")) node = (node as Record<string, unknown>)[part];
  const pkg = node as Record<string, grpc.ServiceClientConstructor>;
  return { TestService: pkg.TestService!, UnimplementedService: pkg.UnimplementedService!, Echo: pkg.Echo! };
}

interface Payload {
  body: Buffer;
}
interface EchoStatus {
  code: number;
  message: string;
}
interface SimpleRequest {
  responseSize: number;
  payload: Payload | null;
  responseStatus: EchoStatus | null;
}
interface StreamingOutputCallRequest {
  responseParameters: { size: number; intervalUs: number }[];
  payload: Payload | null;
  responseStatus: EchoStatus | null;
}
export interface EchoMessage {
  body: Buffer;
  sequence: number;
  delayMs: number;
  failCode: number;
}

/** How a call ended as the backend saw it. */
/**
 * How a call ended at the backend. "deadline": grpc-js ended it itself when its `grpc-timeout` passed (which can
 * come before the client's cancel does: both start from the same deadline), so the handler's last step saw no cancel.
 */
export type CallOutcome = "ok" | "error" | "cancelled" | "deadline";

/** One call as the backend saw it. */
export interface CallRecord {
  /** `Service/Method`. */
  method: string;
  callId: string | null;
  startedAt: number;
  endedAt: number | null;
  outcome: CallOutcome | null;
  /** The request metadata as received (for header tests: forwarded headers, traceparent…). */
  metadata: grpc.Metadata;
}

/** Counters over the backend's life. */
export interface InteropBackendStats {
  /** Calls that started and have not ended yet. */
  active: number;
  started: number;
  cancelled: number;
  /** Messages written by every Flood call so far. */
  floodMessagesSent: number;
}

export interface InteropBackendOptions {
  /** Interface to bind. Default 127.0.0.1. */
  host?: string;
  /** Port. Default 0 (any free one). */
  port?: number;
  /** Largest message received and sent. Default 4 MiB (grpc-js' default). */
  maxMessageBytes?: number;
  /** Keep a per-call log (off for benchmarks, where it would grow). Default true. */
  recordCalls?: boolean;
}

export interface InteropBackend {
  /** `127.0.0.1:<port>`. */
  hostPort: string;
  port: number;
  stats(): InteropBackendStats;
  /** The record of the call that carried `x-interop-call-id: id`, or undefined if it never arrived. */
  call(id: string): CallRecord | undefined;
  /** Every recorded call, in arrival order. */
  calls(): readonly CallRecord[];
  /** Resolves once the call with this id has ended (or `undefined` if it never started) within `timeoutMs`. */
  waitForCallEnd(id: string, timeoutMs: number): Promise<CallRecord | undefined>;
  close(): Promise<void>;
}

function zeros(size: number): Buffer {
  return Buffer.alloc(Math.max(0, size));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Writes `message`; resolves when the stream can take more (after 'drain' if the buffer is full) or the call ends. */
function writeWithBackpressure<T>(
  call: grpc.ServerWritableStream<unknown, T> | grpc.ServerDuplexStream<unknown, T>,
  message: T,
): Promise<void> {
  if (call.write(message)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      call.off("drain", done);
      call.off("cancelled", done);
      call.off("close", done);
      resolve();
    };
    call.once("drain", done);
    call.once("cancelled", done);
    call.once("close", done);
  });
}

/** Resolves after pending I/O callbacks, by which time grpc-js has flagged a call cancelled by its client. */
/** Whether the call's deadline (from its `grpc-timeout`) has passed. */
function deadlinePassed(call: ServerSurfaceCall): boolean {
  const deadline = call.getDeadline();
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(ms) && ms <= Date.now();
}

function afterCancelNotice(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function echoTrailers(metadata: grpc.Metadata): grpc.Metadata {
  const trailers = new grpc.Metadata();
  for (const value of metadata.get(ECHO_TRAILING_HEADER)) trailers.add(ECHO_TRAILING_HEADER, value);
  return trailers;
}

function echoInitial(call: { metadata: grpc.Metadata; sendMetadata(md: grpc.Metadata): void }): void {
  const values = call.metadata.get(ECHO_INITIAL_HEADER);
  if (values.length === 0) return;
  const initial = new grpc.Metadata();
  for (const value of values) initial.add(ECHO_INITIAL_HEADER, value);
  call.sendMetadata(initial);
}

function statusError(status: EchoStatus, trailers: grpc.Metadata): Partial<grpc.StatusObject> {
  return { code: status.code, details: status.message, metadata: trailers };
}

/** Starts the backend on `host:port` (default 127.0.0.1:0) and resolves once it listens. */
export async function startInteropBackend(options: InteropBackendOptions = {}): Promise<InteropBackend> {
  const maxMessageBytes = options.maxMessageBytes ?? 4 * 1024 * 1024;
  const recordCalls = options.recordCalls ?? true;
  const server = new grpc.Server({
    "grpc.max_receive_message_length": maxMessageBytes,
    "grpc.max_send_message_length": maxMessageBytes,
  });
  const records: CallRecord[] = [];
  const byId = new Map<string, CallRecord>();
  const endWaiters = new Map<string, (() => void)[]>();
  const counters = { active: 0, started: 0, cancelled: 0, floodMessagesSent: 0 };

  /** Registers a call; the returned `end` is idempotent, so cancel and completion may race. */
  const track = (method: string, call: ServerSurfaceCall): ((outcome: CallOutcome) => void) => {
    counters.active += 1;
    counters.started += 1;
    const callId = (call.metadata.get(CALL_ID_HEADER)[0] as string | undefined) ?? null;
    const record: CallRecord | null = recordCalls
      ? { method, callId, startedAt: Date.now(), endedAt: null, outcome: null, metadata: call.metadata }
      : null;
    if (record !== null) {
      records.push(record);
      if (callId !== null) byId.set(callId, record);
    }
    let ended = false;
    const end = (outcome: CallOutcome): void => {
      if (ended) return;
      ended = true;
      if (outcome === "ok" && deadlinePassed(call)) outcome = "deadline";
      counters.active -= 1;
      if (outcome === "cancelled") counters.cancelled += 1;
      if (record !== null) {
        record.endedAt = Date.now();
        record.outcome = outcome;
      }
      if (callId !== null) {
        for (const wake of endWaiters.get(callId) ?? []) wake();
        endWaiters.delete(callId);
      }
    };
    call.on("cancelled", () => end("cancelled"));
    return end;
  };

  const testService: grpc.UntypedServiceImplementation = {
    EmptyCall(call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) {
      const end = track("TestService/EmptyCall", call);
      callback(null, {});
      end("ok");
    },
    UnaryCall(call: grpc.ServerUnaryCall<SimpleRequest, unknown>, callback: grpc.sendUnaryData<unknown>) {
      const end = track("TestService/UnaryCall", call);
      echoInitial(call);
      const trailers = echoTrailers(call.metadata);
      const status = call.request.responseStatus;
      if (status !== null && status.code !== 0) {
        callback(statusError(status, trailers));
        end("error");
        return;
      }
      callback(null, { payload: { body: zeros(call.request.responseSize) } }, trailers);
      end("ok");
    },
    async StreamingOutputCall(call: grpc.ServerWritableStream<StreamingOutputCallRequest, unknown>) {
      const end = track("TestService/StreamingOutputCall", call);
      echoInitial(call);
      for (const parameters of call.request.responseParameters) {
        if (call.cancelled) return;
        if (parameters.intervalUs > 0) await sleep(parameters.intervalUs / 1000);
        await writeWithBackpressure(call, { payload: { body: zeros(parameters.size) } });
      }
      if (call.cancelled) return;
      const status = call.request.responseStatus;
      if (status !== null && status.code !== 0) {
        call.emit("error", statusError(status, echoTrailers(call.metadata)));
        end("error");
        return;
      }
      call.end(echoTrailers(call.metadata));
      end("ok");
    },
    StreamingInputCall(
      call: grpc.ServerReadableStream<{ payload: Payload | null }, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) {
      const end = track("TestService/StreamingInputCall", call);
      let total = 0;
      call.on("data", (request: { payload: Payload | null }) => {
        total += request.payload?.body.length ?? 0;
      });
      call.on("end", () => {
        void afterCancelNotice().then(() => {
          if (call.cancelled) return;
          callback(null, { aggregatedPayloadSize: total });
          end("ok");
        });
      });
      call.on("error", () => end("cancelled"));
    },
    FullDuplexCall(call: grpc.ServerDuplexStream<StreamingOutputCallRequest, unknown>) {
      const end = track("TestService/FullDuplexCall", call);
      echoInitial(call);
      const trailers = echoTrailers(call.metadata);
      let failed = false;
      // Requests are answered strictly in order: each one's responses are written before the next's.
      let chain = Promise.resolve();
      call.on("data", (request: StreamingOutputCallRequest) => {
        chain = chain.then(async () => {
          if (failed || call.cancelled) return;
          const status = request.responseStatus;
          if (status !== null && status.code !== 0) {
            failed = true;
            call.emit("error", statusError(status, trailers));
            end("error");
            return;
          }
          for (const parameters of request.responseParameters) {
            if (call.cancelled) return;
            if (parameters.intervalUs > 0) await sleep(parameters.intervalUs / 1000);
            await writeWithBackpressure(call, { payload: { body: zeros(parameters.size) } });
          }
        });
      });
      call.on("end", () => {
        // grpc-js ends the readable side of a cancelled call too and says so a tick later: look after that.
        void chain.then(afterCancelNotice).then(() => {
          if (failed || call.cancelled) return;
          call.end(trailers);
          end("ok");
        });
      });
      call.on("error", () => end("cancelled"));
    },
  };

  const echoService: grpc.UntypedServiceImplementation = {
    Unary(call: grpc.ServerUnaryCall<EchoMessage, unknown>, callback: grpc.sendUnaryData<unknown>) {
      const end = track("Echo/Unary", call);
      const answer = (): void => {
        if (call.cancelled) return;
        if (call.request.failCode !== 0) {
          callback({ code: call.request.failCode, details: "failure requested by the client" });
          end("error");
          return;
        }
        callback(null, call.request);
        end("ok");
      };
      if (call.request.delayMs > 0) {
        const timer = setTimeout(answer, call.request.delayMs);
        call.on("cancelled", () => clearTimeout(timer));
      } else answer();
    },
    Stream(call: grpc.ServerDuplexStream<EchoMessage, unknown>) {
      const end = track("Echo/Stream", call);
      let failed = false;
      let chain = Promise.resolve();
      call.on("data", (message: EchoMessage) => {
        const echo = async (): Promise<void> => {
          if (failed || call.cancelled) return;
          if (message.delayMs > 0) await sleep(message.delayMs);
          if (message.failCode !== 0) {
            failed = true;
            call.emit("error", { code: message.failCode, details: "failure requested by the client" });
            end("error");
            return;
          }
          await writeWithBackpressure(call, message);
        };
        chain = chain.then(echo);
      });
      call.on("end", () => {
        void chain.then(afterCancelNotice).then(() => {
          if (failed || call.cancelled) return;
          call.end();
          end("ok");
        });
      });
      call.on("error", () => end("cancelled"));
    },
    async Flood(call: grpc.ServerWritableStream<{ count: number; size: number }, unknown>) {
      const end = track("Echo/Flood", call);
      const body = zeros(call.request.size);
      for (let sequence = 0; sequence < call.request.count; sequence += 1) {
        if (call.cancelled) return;
        await writeWithBackpressure(call, { body, sequence, delayMs: 0, failCode: 0 });
        counters.floodMessagesSent += 1;
      }
      if (call.cancelled) return;
      call.end();
      end("ok");
    },
  };

  const services = interopServices();
  // UnimplementedCall is declared in TestService but deliberately left out: grpc-js answers UNIMPLEMENTED.
  server.addService(services.TestService.service, testService);
  server.addService(services.Echo.service, echoService);

  const host = options.host ?? "127.0.0.1";
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${options.port ?? 0}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error === null ? resolve(bound) : reject(error),
    );
  });

  return {
    hostPort: `${host}:${port}`,
    port,
    stats: () => ({ ...counters }),
    call: (id) => byId.get(id),
    calls: () => records,
    waitForCallEnd(id, timeoutMs) {
      const record = byId.get(id);
      if (record === undefined || record.endedAt !== null) return Promise.resolve(record);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`backend: call ${id} (${record.method}) still running after ${timeoutMs} ms`)),
          timeoutMs,
        );
        const waiters = endWaiters.get(id) ?? [];
        waiters.push(() => {
          clearTimeout(timer);
          resolve(byId.get(id));
        });
        endWaiters.set(id, waiters);
      });
    },
    async close() {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2_000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
