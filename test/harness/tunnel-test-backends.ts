// Real backends for forwarder and agent tests: a schema-agnostic @grpc/grpc-js server, an HTTP/SSE server, a ws echo.
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { WebSocketServer } from "ws";
import { Protocol, type RequestHead, RequestHeadSchema } from "../../src/gen/streamgate/tunnel/v1/tunnel_pb.js";

const identity = (buffer: Buffer) => buffer;

function rawMethod(name: string, requestStream: boolean, responseStream: boolean) {
  return {
    path: `/test.Echo/${name}`,
    requestStream,
    responseStream,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}

/** `test.Echo`: raw-bytes methods (no proto), so tests control every byte. */
export const echoService = {
  Unary: rawMethod("Unary", false, false),
  ServerStream: rawMethod("ServerStream", false, true),
  ClientStream: rawMethod("ClientStream", true, false),
  Bidi: rawMethod("Bidi", true, true),
  Fail: rawMethod("Fail", false, false),
  Sleep: rawMethod("Sleep", false, false),
  Big: rawMethod("Big", false, false),
} satisfies grpc.ServiceDefinition;

/** A grpc-js client of {@link echoService}. */
/** The RequestHead of a gRPC call to `test.Echo/<method>`, as the tunnel hands it to a forwarder. */
export function echoRequestHead(method: string, init: MessageInitShape<typeof RequestHeadSchema> = {}): RequestHead {
  return create(RequestHeadSchema, {
    protocol: Protocol.GRPC,
    method: "POST",
    scheme: "http",
    authority: "backend.test",
    path: `/test.Echo/${method}`,
    headers: [{ name: "content-type", value: "application/grpc" }],
    ...init,
  });
}

export const EchoClient = grpc.makeGenericClientConstructor(echoService, "Echo");

/** What the gRPC backend saw, for assertions. */
export interface GrpcBackendLog {
  /** Calls by method name, in order, with their metadata. */
  calls: { method: string; metadata: grpc.Metadata }[];
  /** Sleep calls that ended by cancellation (client cancel or deadline). */
  cancelled: number;
}

export interface GrpcBackend {
  /** `h2c://127.0.0.1:PORT` */
  address: string;
  port: number;
  name: string;
  log: GrpcBackendLog;
  /** grpc.health.v1 of this backend (grpc-health-check's real implementation); service "" and "test.Echo". */
  health: HealthImplementation;
  /** Resolves when the next Sleep call arrives. */
  nextSleep(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts `test.Echo` on 127.0.0.1 (port 0 unless given):
 * - Unary echoes the request, sends `x-backend: <name>` and echoes `x-echo*` request metadata as
 *   initial metadata; trailing metadata `x-trailer-bin` = [1,2,3].
 * - ServerStream answers N messages `message-i` where N is the request's first byte.
 * - ClientStream answers the concatenation of the requests; Bidi echoes each message.
 * - Fail answers NOT_FOUND "no such thing: 100%" with `grpc-status-details-bin` and `x-why-bin` trailers.
 * - Sleep never answers (until cancelled); Big answers the request's first byte × 1 KiB of zeros.
 */
export async function startGrpcBackend(name = "backend", port = 0): Promise<GrpcBackend> {
  const server = new grpc.Server();
  const log: GrpcBackendLog = { calls: [], cancelled: 0 };
  let sleepWaiters: (() => void)[] = [];
  const record = (method: string, metadata: grpc.Metadata) => log.calls.push({ method, metadata });
  const initialMetadata = (incoming: grpc.Metadata) => {
    const metadata = new grpc.Metadata();
    metadata.set("x-backend", name);
    for (const [key, value] of Object.entries(incoming.getMap())) {
      if (key.startsWith("x-echo")) metadata.set(key, value as string & Buffer);
    }
    return metadata;
  };
  server.addService(echoService, {
    Unary(call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) {
      record("Unary", call.metadata);
      call.sendMetadata(initialMetadata(call.metadata));
      const trailer = new grpc.Metadata();
      trailer.set("x-trailer-bin", Buffer.from([1, 2, 3]));
      callback(null, call.request, trailer);
    },
    ServerStream(call: grpc.ServerWritableStream<Buffer, Buffer>) {
      record("ServerStream", call.metadata);
      const count = call.request[0] ?? 0;
      for (let index = 0; index < count; index++) call.write(Buffer.from(`message-${index}`));
      call.end();
    },
    ClientStream(call: grpc.ServerReadableStream<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) {
      record("ClientStream", call.metadata);
      const parts: Buffer[] = [];
      call.on("data", (part: Buffer) => parts.push(part));
      call.on("end", () => callback(null, Buffer.concat(parts)));
    },
    Bidi(call: grpc.ServerDuplexStream<Buffer, Buffer>) {
      record("Bidi", call.metadata);
      call.on("data", (part: Buffer) => call.write(part));
      call.on("end", () => call.end());
    },
    Fail(call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) {
      record("Fail", call.metadata);
      const metadata = new grpc.Metadata();
      metadata.set("grpc-status-details-bin", Buffer.from([8, 5, 18, 4, 110, 111, 112, 101]));
      metadata.set("x-why-bin", Buffer.from([0, 255]));
      callback({ code: grpc.status.NOT_FOUND, details: "no such thing: 100%", metadata });
    },
    Sleep(call: grpc.ServerUnaryCall<Buffer, Buffer>) {
      record("Sleep", call.metadata);
      call.on("cancelled", () => {
        log.cancelled++;
      });
      const waiters = sleepWaiters;
      sleepWaiters = [];
      for (const waiter of waiters) waiter();
    },
    Big(call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) {
      record("Big", call.metadata);
      callback(null, Buffer.alloc((call.request[0] ?? 1) * 1024));
    },
  });
  const health = new HealthImplementation({ "": "SERVING", "test.Echo": "SERVING" });
  health.addToServer(server);
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (error, actual) =>
      error ? reject(error) : resolve(actual),
    ),
  );
  return {
    address: `h2c://127.0.0.1:${bound}`,
    port: bound,
    name,
    log,
    health,
    nextSleep: () => new Promise<void>((resolve) => sleepWaiters.push(resolve)),
    close: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      }),
  };
}

export interface HttpBackend {
  /** `http://127.0.0.1:PORT` */
  address: string;
  server: Server;
  /** Releases the SSE endpoint's second event. */
  releaseSecondEvent(): void;
  close(): Promise<void>;
}

/**
 * A node:http backend: `POST /echo` streams the body back (status 201, `x-seen-host` = Host,
 * `x-seen-traceparent`); `GET /sse` sends one event, waits for {@link HttpBackend.releaseSecondEvent},
 * sends a second and ends; `/ws` upgrades to a `ws` echo server.
 */
export async function startHttpBackend(): Promise<HttpBackend> {
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    if (req.url === "/echo") {
      res.writeHead(201, {
        "content-type": req.headers["content-type"] ?? "application/octet-stream",
        "x-seen-host": req.headers.host ?? "",
        "x-seen-traceparent": String(req.headers.traceparent ?? ""),
        "x-seen-connection-token": String(req.headers["x-hop"] ?? "absent"),
      });
      req.pipe(res);
      return;
    }
    if (req.url === "/sse") {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      res.write("id: 1\ndata: first\n\n");
      void released.then(() => res.end("id: 2\ndata: second\n\n"));
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not here");
  };
  const server = createServer(handler);
  const wss = new WebSocketServer({ server, path: "/ws" });
  wss.on("connection", (socket) => {
    socket.on("message", (data, isBinary) => socket.send(data, { binary: isBinary }));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    address: `http://127.0.0.1:${port}`,
    server,
    releaseSecondEvent: () => release(),
    async close() {
      release();
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Writes the rules of one echo tunnel into `dir`: `server.yaml` lets agent `a` (with `token`) serve group `echo`,
 * where test.Echo calls go; `agent.yaml` sends them to the gRPC backend at `backendAddress`.
 */
export function writeEchoTunnelRules(
  dir: string,
  token: string,
  backendAddress: string,
): { serverRules: string; agentRules: string } {
  const serverRules = join(dir, "server.yaml");
  const agentRules = join(dir, "agent.yaml");
  writeFileSync(
    serverRules,
    `version: 1\nagents:\n  - name: a\n    token: ${token}\n    groups: [echo]\nrules:\n  - name: echo\n    match:\n      service: test.Echo\n    group: echo\n`,
  );
  writeFileSync(
    agentRules,
    `version: 1\nupstreams:\n  - name: b\n    protocol: grpc\n    addresses: [${backendAddress}]\nroutes:\n  - name: echo\n    match:\n      service: test.Echo\n    upstream: b\n`,
  );
  return { serverRules, agentRules };
}
