// A mixed gRPC workload with random client cancels, backend failures and missed deadlines, for the
// tunnel leak test (20,000 requests) and bench/tunnel/soak.ts (100,000): afterwards nothing may stay pending.
import * as grpc from "@grpc/grpc-js";
import type { EchoMessage } from "./interop-backend.js";
import type { InteropClients } from "./interop-cases.js";

/** What happened to the requests of one run, by kind and outcome. */
export interface ChaosReport {
  requests: number;
  /** `kind:status` → count, e.g. `unary-ok:OK` or `cancel:CANCELLED`. */
  outcomes: Record<string, number>;
  /** Requests whose outcome was not one their kind allows (should be 0). */
  unexpected: number;
  /** The first few unexpected outcomes, for the failure message. */
  unexpectedSamples: string[];
  elapsedMs: number;
}

export interface ChaosOptions {
  requests: number;
  /** Requests in flight at once. Default 64. */
  concurrency?: number;
  /** Deterministic seed for the mix. Default 1. */
  seed?: number;
  /** Called every `progressEvery` requests. */
  onProgress?: (done: number) => void;
  progressEvery?: number;
}

type Kind = "unary-ok" | "unary-fail" | "cancel" | "deadline" | "stream-ok" | "stream-cancel" | "stream-fail";

/** Which statuses each kind may end with (a cancel may lose the race against a fast answer, etc.). */
const ALLOWED: Record<Kind, readonly grpc.status[]> = {
  "unary-ok": [grpc.status.OK],
  "unary-fail": [grpc.status.INTERNAL],
  cancel: [grpc.status.CANCELLED, grpc.status.OK],
  deadline: [grpc.status.DEADLINE_EXCEEDED],
  "stream-ok": [grpc.status.OK],
  "stream-cancel": [grpc.status.CANCELLED, grpc.status.OK],
  "stream-fail": [grpc.status.INTERNAL],
};

/** A small deterministic PRNG (mulberry32), so a failing mix can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pickKind(value: number): Kind {
  if (value < 0.45) return "unary-ok";
  if (value < 0.55) return "unary-fail";
  if (value < 0.67) return "cancel";
  if (value < 0.75) return "deadline";
  if (value < 0.87) return "stream-ok";
  if (value < 0.95) return "stream-cancel";
  return "stream-fail";
}

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

function echo(sequence: number, extra: Partial<EchoMessage> = {}): EchoMessage {
  return { body: Buffer.alloc(64, sequence % 251), sequence, delayMs: 0, failCode: 0, ...extra };
}

/** How one request ended: its status code and message. */
interface Ending {
  code: grpc.status;
  details: string;
}

/** One request of `kind`; resolves with its final status (never rejects). */
function runOne(clients: InteropClients, kind: Kind, sequence: number, next: () => number): Promise<Ending> {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(clients.target.metadata ?? {})) metadata.set(key, value);
  const client = clients.echo as unknown as { Unary: UnaryFn; Stream: StreamFn };
  const deadline = Date.now() + 20_000;
  if (kind === "unary-ok" || kind === "unary-fail" || kind === "cancel" || kind === "deadline") {
    const request =
      kind === "unary-fail"
        ? echo(sequence, { failCode: grpc.status.INTERNAL })
        : kind === "cancel"
          ? echo(sequence, { delayMs: 30 })
          : kind === "deadline"
            ? echo(sequence, { delayMs: 200 })
            : echo(sequence);
    return new Promise((resolve) => {
      const call = client.Unary.call(
        clients.echo,
        request,
        metadata,
        { deadline: kind === "deadline" ? Date.now() + 20 + Math.floor(next() * 40) : deadline },
        (error) => resolve(error === null ? { code: grpc.status.OK, details: "" } : error),
      );
      if (kind === "cancel") setTimeout(() => call.cancel(), Math.floor(next() * 40));
    });
  }
  return new Promise((resolve) => {
    const call = client.Stream.call(clients.echo, metadata, { deadline });
    let received = 0;
    call.on("data", () => {
      received += 1;
      if (kind === "stream-ok" && received === 3) call.end();
    });
    call.on("error", () => {});
    call.on("status", (status: grpc.StatusObject) => resolve(status));
    if (kind === "stream-fail") {
      call.write(echo(sequence));
      call.write(echo(sequence, { failCode: grpc.status.INTERNAL }));
    } else if (kind === "stream-cancel") {
      call.write(echo(sequence, { delayMs: 20 }));
      setTimeout(() => call.cancel(), Math.floor(next() * 40));
    } else {
      for (let index = 0; index < 3; index += 1) call.write(echo(sequence + index));
    }
  });
}

/**
 * Runs `requests` mixed requests, `concurrency` at a time, and reports every outcome. With several client
 * sets (each its own channel, so its own connection) the workers share them out, as many clients would (a
 * single connection cancelling this fast is retired by the server after ~500 resets and reconnected).
 */
export async function runChaos(
  clientSets: InteropClients | InteropClients[],
  options: ChaosOptions,
): Promise<ChaosReport> {
  const sets = Array.isArray(clientSets) ? clientSets : [clientSets];
  const next = random(options.seed ?? 1);
  const started = Date.now();
  const outcomes: Record<string, number> = {};
  const unexpectedSamples: string[] = [];
  let unexpected = 0;
  let issued = 0;
  let done = 0;
  const worker = async (index: number): Promise<void> => {
    const clients = sets[index % sets.length]!;
    while (issued < options.requests) {
      const sequence = issued++;
      const kind = pickKind(next());
      const { code, details } = await runOne(clients, kind, sequence, next);
      const key = `${kind}:${grpc.status[code]}`;
      outcomes[key] = (outcomes[key] ?? 0) + 1;
      if (!ALLOWED[kind].includes(code)) {
        unexpected += 1;
        if (unexpectedSamples.length < 5) unexpectedSamples.push(`request ${sequence}: ${key} (${details})`);
      }
      done += 1;
      if (options.onProgress !== undefined && done % (options.progressEvery ?? 10_000) === 0) options.onProgress(done);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 64 }, (_, index) => worker(index)));
  return { requests: done, outcomes, unexpected, unexpectedSamples, elapsedMs: Date.now() - started };
}
