// A load-generating child process of bench/tunnel: grpc-js Echo calls against one target, driven over IPC
// (unary closed loop, pipelined bidi streams, sequential latency probes, and holding idle streams).
import { randomBytes } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { type EchoMessage, interopServices } from "../../test/harness/interop-backend.js";

/** What the parent asks for. */
export type WorkerTask =
  | {
      kind: "unary";
      address: string;
      /** Calls kept in flight. */
      concurrency: number;
      bodyBytes: number;
      warmupMs: number;
      durationMs: number;
    }
  | {
      kind: "stream";
      address: string;
      streams: number;
      /** Messages kept in flight per stream. */
      window: number;
      bodyBytes: number;
      warmupMs: number;
      durationMs: number;
    }
  | { kind: "latency"; address: string; bodyBytes: number; warmupMs: number; durationMs: number }
  | {
      kind: "hold";
      address: string;
      streams: number;
      /** HTTP/2 connections the streams are spread over. */
      channels: number;
      bodyBytes: number;
    }
  | { kind: "release" };

/** What the worker answers. */
export type WorkerReply =
  | { kind: "unary"; calls: number; errors: number; seconds: number; latenciesMs: number[]; firstError: string | null }
  | { kind: "stream"; messages: number; errors: number; seconds: number; firstError: string | null }
  | { kind: "latency"; latenciesMs: number[]; errors: number; firstError: string | null }
  | { kind: "held"; streams: number; errors: number; firstError: string | null; openMs: number }
  | { kind: "released" }
  | { kind: "failed"; error: string };

type UnaryFn = (
  request: EchoMessage,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: EchoMessage) => void,
) => grpc.ClientUnaryCall;
type StreamFn = (
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
) => grpc.ClientDuplexStream<EchoMessage, EchoMessage>;

function echoClient(address: string): { client: grpc.Client; close(): void } {
  const channel = new grpc.Channel(address, grpc.credentials.createInsecure(), {
    "grpc.use_local_subchannel_pool": 1,
    "grpc.max_receive_message_length": 16 * 1024 * 1024,
  });
  const client = new (interopServices().Echo)(address, grpc.credentials.createInsecure(), { channelOverride: channel });
  return { client, close: () => channel.close() };
}

function unaryOnce(client: grpc.Client, message: EchoMessage): Promise<grpc.ServiceError | null> {
  return new Promise((resolve) => {
    const fn = (client as unknown as { Unary: UnaryFn }).Unary.bind(client);
    fn(message, new grpc.Metadata(), { deadline: Date.now() + 30_000 }, (error) => resolve(error));
  });
}

function message(bodyBytes: number, sequence = 0): EchoMessage {
  return { body: randomBytes(bodyBytes), sequence, delayMs: 0, failCode: 0 };
}

async function runUnary(task: Extract<WorkerTask, { kind: "unary" }>): Promise<WorkerReply> {
  const { client, close } = echoClient(task.address);
  const request = message(task.bodyBytes);
  const started = performance.now();
  const countFrom = started + task.warmupMs;
  const until = countFrom + task.durationMs;
  const latenciesMs: number[] = [];
  let calls = 0;
  let errors = 0;
  let firstError: string | null = null;
  const loop = async (): Promise<void> => {
    for (;;) {
      const begin = performance.now();
      if (begin >= until) return;
      const error = await unaryOnce(client, request);
      const end = performance.now();
      if (error !== null) {
        errors += 1;
        firstError ??= error.message;
        continue;
      }
      if (begin >= countFrom && end <= until) {
        calls += 1;
        latenciesMs.push(end - begin);
      }
    }
  };
  await Promise.all(Array.from({ length: task.concurrency }, loop));
  close();
  return { kind: "unary", calls, errors, seconds: task.durationMs / 1000, latenciesMs, firstError };
}

async function runStream(task: Extract<WorkerTask, { kind: "stream" }>): Promise<WorkerReply> {
  const { client, close } = echoClient(task.address);
  const body = randomBytes(task.bodyBytes);
  const started = performance.now();
  const countFrom = started + task.warmupMs;
  const until = countFrom + task.durationMs;
  let messages = 0;
  let errors = 0;
  let firstError: string | null = null;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const fn = (client as unknown as { Stream: StreamFn }).Stream.bind(client);
      const call = fn(new grpc.Metadata(), { deadline: Date.now() + task.warmupMs + task.durationMs + 30_000 });
      let sequence = 0;
      let ended = false;
      const send = (): void => {
        call.write({ body, sequence: sequence++, delayMs: 0, failCode: 0 });
      };
      call.on("data", () => {
        const now = performance.now();
        if (now >= countFrom && now <= until) messages += 1;
        if (now < until) send();
        else if (!ended) {
          ended = true;
          call.end();
        }
      });
      call.on("error", (error: grpc.ServiceError) => {
        errors += 1;
        firstError ??= error.message;
      });
      call.on("status", () => resolve());
      for (let index = 0; index < task.window; index += 1) send();
    });
  await Promise.all(Array.from({ length: task.streams }, one));
  close();
  return { kind: "stream", messages, errors, seconds: task.durationMs / 1000, firstError };
}

async function runLatency(task: Extract<WorkerTask, { kind: "latency" }>): Promise<WorkerReply> {
  const { client, close } = echoClient(task.address);
  const request = message(task.bodyBytes);
  const countFrom = performance.now() + task.warmupMs;
  const until = countFrom + task.durationMs;
  const latenciesMs: number[] = [];
  let errors = 0;
  let firstError: string | null = null;
  for (;;) {
    const begin = performance.now();
    if (begin >= until) break;
    const error = await unaryOnce(client, request);
    if (error !== null) {
      errors += 1;
      firstError ??= error.message;
    } else if (begin >= countFrom) latenciesMs.push(performance.now() - begin);
  }
  close();
  return { kind: "latency", latenciesMs, errors, firstError };
}

/** Streams held open by a "hold" task until "release". */
let held: { calls: grpc.ClientDuplexStream<EchoMessage, EchoMessage>[]; close(): void } | null = null;

async function runHold(task: Extract<WorkerTask, { kind: "hold" }>): Promise<WorkerReply> {
  const clients = Array.from({ length: Math.max(1, task.channels) }, () => echoClient(task.address));
  const body = randomBytes(task.bodyBytes);
  const calls: grpc.ClientDuplexStream<EchoMessage, EchoMessage>[] = [];
  let errors = 0;
  let firstError: string | null = null;
  const started = performance.now();
  // Open in batches so the connection setup does not time out on a loaded machine.
  const BATCH = 500;
  for (let first = 0; first < task.streams; first += BATCH) {
    const batch: Promise<void>[] = [];
    for (let index = first; index < Math.min(task.streams, first + BATCH); index += 1) {
      const { client } = clients[index % clients.length]!;
      const fn = (client as unknown as { Stream: StreamFn }).Stream.bind(client);
      const call = fn(new grpc.Metadata(), {});
      calls.push(call);
      batch.push(
        new Promise<void>((resolve) => {
          // One echo proves the stream reaches the backend; it then stays open and idle.
          call.once("data", () => resolve());
          call.on("error", (error: grpc.ServiceError) => {
            if (error.code === grpc.status.CANCELLED) return;
            errors += 1;
            firstError ??= error.message;
            resolve();
          });
          call.write({ body, sequence: index, delayMs: 0, failCode: 0 });
        }),
      );
    }
    await Promise.all(batch);
  }
  held = {
    calls,
    close: () => {
      for (const client of clients) client.close();
    },
  };
  return { kind: "held", streams: calls.length, errors, firstError, openMs: performance.now() - started };
}

async function release(): Promise<WorkerReply> {
  if (held !== null) {
    for (const call of held.calls) call.cancel();
    held.close();
    held = null;
  }
  return { kind: "released" };
}

async function handle(task: WorkerTask): Promise<WorkerReply> {
  switch (task.kind) {
    case "unary":
      return runUnary(task);
    case "stream":
      return runStream(task);
    case "latency":
      return runLatency(task);
    case "hold":
      return runHold(task);
    case "release":
      return release();
  }
}

process.on("message", (task: WorkerTask) => {
  handle(task).then(
    (reply) => process.send?.(reply),
    (error: unknown) => process.send?.({ kind: "failed", error: error instanceof Error ? error.stack : String(error) }),
  );
});
process.on("disconnect", () => process.exit(0));
