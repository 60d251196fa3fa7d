// The gRPC interop client cases (empty_unary … timeout_on_sleeping_server) as functions over a grpc-js
// channel target, each asserting what the interop spec requires, plus cancel propagation to the backend.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import {
  CALL_ID_HEADER,
  ECHO_INITIAL_HEADER,
  ECHO_TRAILING_HEADER,
  type InteropBackend,
  interopServices,
} from "./interop-backend.js";

/** Where the cases connect: a host:port plus how (h2c or TLS) and extra channel options. */
export interface InteropTarget {
  /** Shown in test names and the matrix, e.g. "direct", "nginx grpc_pass", "tunnel". */
  name: string;
  /** `host:port` of the gRPC endpoint. */
  address: string;
  /** Default insecure (h2c). */
  credentials?: grpc.ChannelCredentials;
  /** Extra channel options (e.g. `grpc.ssl_target_name_override`, message size limits). */
  channelOptions?: grpc.ChannelOptions;
  /** Metadata added to every call (e.g. a bearer token a tunnel rule requires). */
  metadata?: Record<string, string>;
  /**
   * How a client's cancel must reach the backend: "cancelled" (RST_STREAM, the default) or "ended"
   * (the backend's call only has to end: nginx turns a client's RST_STREAM into END_STREAM upstream).
   */
  backendSeesCancelAs?: "cancelled" | "ended";
}

/** Clients of the three services on one channel of their own; `close()` closes it. */
export interface InteropClients {
  test: grpc.Client;
  unimplemented: grpc.Client;
  echo: grpc.Client;
  target: InteropTarget;
  close(): void;
}

export function createInteropClients(target: InteropTarget): InteropClients {
  const credentials = target.credentials ?? grpc.credentials.createInsecure();
  const channel = new grpc.Channel(target.address, credentials, {
    "grpc.use_local_subchannel_pool": 1,
    ...target.channelOptions,
  });
  const services = interopServices();
  const make = (ctor: grpc.ServiceClientConstructor) =>
    new ctor(target.address, credentials, { ...target.channelOptions, channelOverride: channel });
  return {
    test: make(services.TestService),
    unimplemented: make(services.UnimplementedService),
    echo: make(services.Echo),
    target,
    close: () => channel.close(),
  };
}

/** What a case gets: its clients and, when the test owns it, the backend (to check that cancels arrive). */
export interface InteropContext {
  clients: InteropClients;
  backend: InteropBackend | null;
}

/** A call's metadata: the target's extras plus a fresh call id for the backend's log. */
export function callMetadata(
  clients: InteropClients,
  extra: Record<string, string | Buffer> = {},
): {
  metadata: grpc.Metadata;
  callId: string;
} {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(clients.target.metadata ?? {})) metadata.set(key, value);
  const callId = randomUUID();
  metadata.set(CALL_ID_HEADER, callId);
  for (const [key, value] of Object.entries(extra)) metadata.set(key, value);
  return { metadata, callId };
}

/** The outcome of a unary or client-streaming call, never thrown. */
export interface UnaryOutcome<T> {
  response: T | undefined;
  error: grpc.ServiceError | null;
  initialMetadata: grpc.Metadata | null;
  status: grpc.StatusObject;
}

/** How long any single case may take (a hung call fails the case instead of the whole file). */
const CASE_CALL_TIMEOUT_MS = 15_000;

function deadlineIn(ms: number): Date {
  return new Date(Date.now() + ms);
}

type UnaryMethod = (
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: unknown) => void,
) => grpc.ClientUnaryCall;

/** Calls a unary method and resolves with everything the client observed once the status arrived. */
export function unaryCall<T>(
  client: grpc.Client,
  method: string,
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions = { deadline: deadlineIn(CASE_CALL_TIMEOUT_MS) },
): Promise<UnaryOutcome<T>> {
  return new Promise((resolve) => {
    let initialMetadata: grpc.Metadata | null = null;
    let response: T | undefined;
    let error: grpc.ServiceError | null = null;
    let callbackDone = false;
    let status: grpc.StatusObject | null = null;
    const settle = (): void => {
      if (callbackDone && status !== null) resolve({ response, error, initialMetadata, status });
    };
    const fn = (client as unknown as Record<string, UnaryMethod>)[method]!.bind(client);
    const call = fn(request, metadata, options, (callError, value) => {
      error = callError;
      response = value as T | undefined;
      callbackDone = true;
      settle();
    });
    call.on("metadata", (received: grpc.Metadata) => {
      initialMetadata = received;
    });
    call.on("status", (received: grpc.StatusObject) => {
      status = received;
      settle();
    });
  });
}

/**
 * Reads a client-side stream message by message: `next()` resolves with the next message, or null
 * once the stream ended (OK or not); `status` resolves with the final status.
 */
export class StreamReader<T> {
  private readonly queue: T[] = [];
  private waiter: (() => void) | null = null;
  private ended = false;
  initialMetadata: grpc.Metadata | null = null;
  readonly status: Promise<grpc.StatusObject>;

  constructor(readonly call: grpc.ClientReadableStream<T> | grpc.ClientDuplexStream<unknown, T>) {
    const wake = (): void => {
      const waiter = this.waiter;
      this.waiter = null;
      waiter?.();
    };
    call.on("data", (message: T) => {
      this.queue.push(message);
      wake();
    });
    call.on("metadata", (metadata: grpc.Metadata) => {
      this.initialMetadata = metadata;
    });
    const end = (): void => {
      this.ended = true;
      wake();
    };
    call.on("end", end);
    call.on("close", end);
    // A non-OK status arrives as 'error' (then 'status'); swallow it here, callers read `status`.
    call.on("error", end);
    this.status = new Promise((resolve) => call.on("status", resolve));
  }

  /** The next message, or null when the stream ended; rejects after `timeoutMs`. */
  async next(timeoutMs = CASE_CALL_TIMEOUT_MS): Promise<T | null> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0 && !this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no message within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.queue.shift() ?? null;
  }

  /** Every remaining message until the end, then the status. */
  async drain(timeoutMs = CASE_CALL_TIMEOUT_MS): Promise<{ messages: T[]; status: grpc.StatusObject }> {
    const messages: T[] = [];
    for (;;) {
      const message = await this.next(timeoutMs);
      if (message === null) break;
      messages.push(message);
    }
    return { messages, status: await withTimeout(this.status, timeoutMs, "stream status") };
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

type StreamMethod = (metadata: grpc.Metadata, options: grpc.CallOptions) => grpc.ClientDuplexStream<unknown, unknown>;
type ServerStreamMethod = (
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
) => grpc.ClientReadableStream<unknown>;
type ClientStreamMethod = (
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: unknown) => void,
) => grpc.ClientWritableStream<unknown>;

/** Opens a bidi call. */
export function duplexCall<In, Out>(
  client: grpc.Client,
  method: string,
  metadata: grpc.Metadata,
  options: grpc.CallOptions = { deadline: deadlineIn(CASE_CALL_TIMEOUT_MS) },
): { call: grpc.ClientDuplexStream<In, Out>; reader: StreamReader<Out> } {
  const fn = (client as unknown as Record<string, StreamMethod>)[method]!.bind(client);
  const call = fn(metadata, options) as grpc.ClientDuplexStream<In, Out>;
  return { call, reader: new StreamReader<Out>(call) };
}

/** Opens a server-streaming call. */
export function serverStreamCall<Out>(
  client: grpc.Client,
  method: string,
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions = { deadline: deadlineIn(CASE_CALL_TIMEOUT_MS) },
): { call: grpc.ClientReadableStream<Out>; reader: StreamReader<Out> } {
  const fn = (client as unknown as Record<string, ServerStreamMethod>)[method]!.bind(client);
  const call = fn(request, metadata, options) as grpc.ClientReadableStream<Out>;
  return { call, reader: new StreamReader<Out>(call) };
}

/** Opens a client-streaming call; `outcome` resolves like {@link unaryCall}'s. */
export function clientStreamCall<T>(
  client: grpc.Client,
  method: string,
  metadata: grpc.Metadata,
  options: grpc.CallOptions = { deadline: deadlineIn(CASE_CALL_TIMEOUT_MS) },
): { call: grpc.ClientWritableStream<unknown>; outcome: Promise<UnaryOutcome<T>> } {
  let call!: grpc.ClientWritableStream<unknown>;
  const outcome = new Promise<UnaryOutcome<T>>((resolve) => {
    let response: T | undefined;
    let error: grpc.ServiceError | null = null;
    let callbackDone = false;
    let status: grpc.StatusObject | null = null;
    let initialMetadata: grpc.Metadata | null = null;
    const settle = (): void => {
      if (callbackDone && status !== null) resolve({ response, error, initialMetadata, status });
    };
    const fn = (client as unknown as Record<string, ClientStreamMethod>)[method]!.bind(client);
    call = fn(metadata, options, (callError, value) => {
      error = callError;
      response = value as T | undefined;
      callbackDone = true;
      settle();
    });
    call.on("metadata", (received: grpc.Metadata) => {
      initialMetadata = received;
    });
    call.on("status", (received: grpc.StatusObject) => {
      status = received;
      settle();
    });
  });
  return { call, outcome };
}

interface PayloadMessage {
  payload: { body: Buffer } | null;
}

function zeros(size: number): Buffer {
  return Buffer.alloc(size);
}

function assertZeros(body: Buffer | undefined, size: number, what: string): void {
  assert.ok(body !== undefined, `${what}: payload missing`);
  assert.equal(body.length, size, `${what}: payload size`);
  assert.ok(
    body.every((byte) => byte === 0),
    `${what}: payload is not all zeros`,
  );
}

function assertStatus(status: grpc.StatusObject, code: grpc.status, details: string | null, what: string): void {
  assert.equal(
    status.code,
    code,
    `${what}: expected ${grpc.status[code]}, got ${grpc.status[status.code]} (${JSON.stringify(status.details)})`,
  );
  if (details !== null) assert.equal(status.details, details, `${what}: status message`);
}

/**
 * When the backend saw the call, it must also see it end within 5 s: a cancel that stops at a proxy would leave
 * the backend working for nobody. A client's cancel must arrive as a cancel; a deadline may also end the call at
 * the backend through its own copy of the deadline (`grpc-timeout`), whichever comes first.
 */
async function assertBackendCallEnded(
  context: InteropContext,
  callId: string,
  mustHaveArrived: boolean,
  endedBy: "cancel" | "deadline" = "cancel",
): Promise<void> {
  if (context.backend === null) return;
  const record = await context.backend.waitForCallEnd(callId, 5_000);
  if (mustHaveArrived) assert.ok(record !== undefined, "the call never reached the backend");
  if (record === undefined || (context.clients.target.backendSeesCancelAs ?? "cancelled") !== "cancelled") return;
  const accepted = endedBy === "deadline" ? ["cancelled", "deadline"] : ["cancelled"];
  assert.ok(
    record.outcome !== null && accepted.includes(record.outcome),
    `backend: the call ended as ${record.outcome}, expected ${accepted.join(" or ")}`,
  );
}

const CLIENT_STREAM_SIZES = [27182, 8, 1828, 45904];
const SERVER_STREAM_SIZES = [31415, 9, 2653, 58979];
const PING_PONG = [
  { request: 27182, response: 31415 },
  { request: 8, response: 9 },
  { request: 1828, response: 2653 },
  { request: 45904, response: 58979 },
];
const SPECIAL_STATUS_MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n";
const INITIAL_METADATA_VALUE = "test_initial_metadata_value";
const TRAILING_METADATA_VALUE = Buffer.from([0xab, 0xab, 0xab]);

/** The interop case names, in the spec's order. */
export const INTEROP_CASE_NAMES = [
  "empty_unary",
  "large_unary",
  "client_streaming",
  "server_streaming",
  "ping_pong",
  "empty_stream",
  "custom_metadata",
  "status_code_and_message",
  "special_status_message",
  "unimplemented_method",
  "unimplemented_service",
  "cancel_after_begin",
  "cancel_after_first_response",
  "timeout_on_sleeping_server",
] as const;
export type InteropCaseName = (typeof INTEROP_CASE_NAMES)[number];

/** Each case: runs against `context.clients` and throws (AssertionError) when the spec is not met. */
export const interopCases: Record<InteropCaseName, (context: InteropContext) => Promise<void>> = {
  async empty_unary({ clients }) {
    const { metadata } = callMetadata(clients);
    const outcome = await unaryCall<object>(clients.test, "EmptyCall", {}, metadata);
    assertStatus(outcome.status, grpc.status.OK, null, "EmptyCall");
    assert.deepEqual(outcome.response, {});
  },

  async large_unary({ clients }) {
    const { metadata } = callMetadata(clients);
    const outcome = await unaryCall<PayloadMessage>(
      clients.test,
      "UnaryCall",
      { responseSize: 314159, payload: { body: zeros(271828) } },
      metadata,
    );
    assertStatus(outcome.status, grpc.status.OK, null, "UnaryCall");
    assertZeros(outcome.response?.payload?.body, 314159, "UnaryCall response");
  },

  async client_streaming({ clients }) {
    const { metadata } = callMetadata(clients);
    const { call, outcome } = clientStreamCall<{ aggregatedPayloadSize: number }>(
      clients.test,
      "StreamingInputCall",
      metadata,
    );
    for (const size of CLIENT_STREAM_SIZES) call.write({ payload: { body: zeros(size) } });
    call.end();
    const result = await withTimeout(outcome, CASE_CALL_TIMEOUT_MS, "StreamingInputCall");
    assertStatus(result.status, grpc.status.OK, null, "StreamingInputCall");
    assert.equal(result.response?.aggregatedPayloadSize, 74922);
  },

  async server_streaming({ clients }) {
    const { metadata } = callMetadata(clients);
    const { reader } = serverStreamCall<PayloadMessage>(
      clients.test,
      "StreamingOutputCall",
      { responseParameters: SERVER_STREAM_SIZES.map((size) => ({ size })) },
      metadata,
    );
    const { messages, status } = await reader.drain();
    assertStatus(status, grpc.status.OK, null, "StreamingOutputCall");
    assert.equal(messages.length, SERVER_STREAM_SIZES.length, "response count");
    for (const [index, size] of SERVER_STREAM_SIZES.entries())
      assertZeros(messages[index]?.payload?.body, size, `response ${index}`);
  },

  async ping_pong({ clients }) {
    const { metadata } = callMetadata(clients);
    const { call, reader } = duplexCall<unknown, PayloadMessage>(clients.test, "FullDuplexCall", metadata);
    for (const [index, step] of PING_PONG.entries()) {
      call.write({ responseParameters: [{ size: step.response }], payload: { body: zeros(step.request) } });
      const response = await reader.next();
      assert.ok(response !== null, `stream ended before response ${index}`);
      assertZeros(response.payload?.body, step.response, `response ${index}`);
    }
    call.end();
    const { messages, status } = await reader.drain();
    assert.equal(messages.length, 0, "no response after the last ping");
    assertStatus(status, grpc.status.OK, null, "FullDuplexCall");
  },

  async empty_stream({ clients }) {
    const { metadata } = callMetadata(clients);
    const { call, reader } = duplexCall<unknown, PayloadMessage>(clients.test, "FullDuplexCall", metadata);
    call.end();
    const { messages, status } = await reader.drain();
    assertStatus(status, grpc.status.OK, null, "FullDuplexCall");
    assert.equal(messages.length, 0, "no responses");
  },

  async custom_metadata({ clients }) {
    const echo = { [ECHO_INITIAL_HEADER]: INITIAL_METADATA_VALUE, [ECHO_TRAILING_HEADER]: TRAILING_METADATA_VALUE };
    const checkMetadata = (initial: grpc.Metadata | null, trailing: grpc.Metadata, what: string): void => {
      assert.deepEqual(initial?.get(ECHO_INITIAL_HEADER), [INITIAL_METADATA_VALUE], `${what}: initial metadata`);
      const trailingValues = trailing.get(ECHO_TRAILING_HEADER);
      assert.equal(trailingValues.length, 1, `${what}: trailing metadata count`);
      assert.ok(Buffer.isBuffer(trailingValues[0]), `${what}: trailing -bin metadata is binary`);
      assert.deepEqual(trailingValues[0], TRAILING_METADATA_VALUE, `${what}: trailing metadata`);
    };

    const unary = await unaryCall<PayloadMessage>(
      clients.test,
      "UnaryCall",
      { responseSize: 314159, payload: { body: zeros(271828) } },
      callMetadata(clients, echo).metadata,
    );
    assertStatus(unary.status, grpc.status.OK, null, "UnaryCall");
    assertZeros(unary.response?.payload?.body, 314159, "UnaryCall response");
    checkMetadata(unary.initialMetadata, unary.status.metadata, "UnaryCall");

    const { call, reader } = duplexCall<unknown, PayloadMessage>(
      clients.test,
      "FullDuplexCall",
      callMetadata(clients, echo).metadata,
    );
    call.write({ responseParameters: [{ size: 314159 }], payload: { body: zeros(271828) } });
    call.end();
    const { messages, status } = await reader.drain();
    assertStatus(status, grpc.status.OK, null, "FullDuplexCall");
    assert.equal(messages.length, 1, "FullDuplexCall response count");
    assertZeros(messages[0]?.payload?.body, 314159, "FullDuplexCall response");
    checkMetadata(reader.initialMetadata, status.metadata, "FullDuplexCall");
  },

  async status_code_and_message({ clients }) {
    const responseStatus = { code: 2, message: "test status message" };
    const unary = await unaryCall(clients.test, "UnaryCall", { responseStatus }, callMetadata(clients).metadata);
    assertStatus(unary.status, grpc.status.UNKNOWN, responseStatus.message, "UnaryCall");

    const { call, reader } = duplexCall(clients.test, "FullDuplexCall", callMetadata(clients).metadata);
    call.write({ responseStatus });
    call.end();
    const { status } = await reader.drain();
    assertStatus(status, grpc.status.UNKNOWN, responseStatus.message, "FullDuplexCall");
  },

  async special_status_message({ clients }) {
    const outcome = await unaryCall(
      clients.test,
      "UnaryCall",
      { responseStatus: { code: 2, message: SPECIAL_STATUS_MESSAGE } },
      callMetadata(clients).metadata,
    );
    assertStatus(outcome.status, grpc.status.UNKNOWN, SPECIAL_STATUS_MESSAGE, "UnaryCall");
  },

  async unimplemented_method({ clients }) {
    const outcome = await unaryCall(clients.test, "UnimplementedCall", {}, callMetadata(clients).metadata);
    assertStatus(outcome.status, grpc.status.UNIMPLEMENTED, null, "TestService/UnimplementedCall");
  },

  async unimplemented_service({ clients }) {
    const outcome = await unaryCall(clients.unimplemented, "UnimplementedCall", {}, callMetadata(clients).metadata);
    assertStatus(outcome.status, grpc.status.UNIMPLEMENTED, null, "UnimplementedService/UnimplementedCall");
  },

  async cancel_after_begin(context) {
    const { metadata, callId } = callMetadata(context.clients);
    const { call, outcome } = clientStreamCall(context.clients.test, "StreamingInputCall", metadata);
    call.cancel();
    const result = await withTimeout(outcome, CASE_CALL_TIMEOUT_MS, "StreamingInputCall");
    assertStatus(result.status, grpc.status.CANCELLED, null, "StreamingInputCall");
    await assertBackendCallEnded(context, callId, false);
  },

  async cancel_after_first_response(context) {
    const { metadata, callId } = callMetadata(context.clients);
    const { call, reader } = duplexCall<unknown, PayloadMessage>(context.clients.test, "FullDuplexCall", metadata);
    call.write({ responseParameters: [{ size: 31415 }], payload: { body: zeros(27182) } });
    const first = await reader.next();
    assert.ok(first !== null, "stream ended before the first response");
    assertZeros(first.payload?.body, 31415, "first response");
    call.cancel();
    const status = await withTimeout(reader.status, CASE_CALL_TIMEOUT_MS, "FullDuplexCall status");
    assertStatus(status, grpc.status.CANCELLED, null, "FullDuplexCall");
    await assertBackendCallEnded(context, callId, true);
  },

  async timeout_on_sleeping_server(context) {
    const { metadata, callId } = callMetadata(context.clients);
    const { call, reader } = duplexCall<unknown, PayloadMessage>(context.clients.test, "FullDuplexCall", metadata, {
      deadline: deadlineIn(1),
    });
    // The write may fail once the deadline already passed; the status is what the spec checks.
    call.on("error", () => {});
    call.write({ payload: { body: zeros(27182) } });
    const status = await withTimeout(reader.status, CASE_CALL_TIMEOUT_MS, "FullDuplexCall status");
    assertStatus(status, grpc.status.DEADLINE_EXCEEDED, null, "FullDuplexCall");
    await assertBackendCallEnded(context, callId, false, "deadline");
  },
};
