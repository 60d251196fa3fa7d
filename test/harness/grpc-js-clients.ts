// @grpc/grpc-js clients (an independent gRPC implementation) for the Pub/Sub, health and reflection protos.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const root = fileURLToPath(new URL("../../", import.meta.url));
const modules = join(root, "node_modules");

/** Proto files the clients are built from: the real ones shipped in dependencies. */
export const protoPaths = {
  pubsub: join(modules, "google-proto-files/google/pubsub/v1/pubsub.proto"),
  health: join(modules, "grpc-health-check/proto/health/v1/health.proto"),
  reflectionV1: join(modules, "@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto"),
  reflectionV1Alpha: join(modules, "@grpc/reflection/build/proto/grpc/reflection/v1alpha/reflection.proto"),
} as const;

/** camelCase fields, int64 as strings, enums as names, defaults filled, oneof names set. */
const loaderOptions: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [join(modules, "google-proto-files")],
};

type ServiceConstructors = {
  publisher: grpc.ServiceClientConstructor;
  subscriber: grpc.ServiceClientConstructor;
  health: grpc.ServiceClientConstructor;
  reflectionV1: grpc.ServiceClientConstructor;
  reflectionV1Alpha: grpc.ServiceClientConstructor;
};

let constructors: ServiceConstructors | undefined;

function serviceConstructor(path: string, service: string): grpc.ServiceClientConstructor {
  const loaded = grpc.loadPackageDefinition(protoLoader.loadSync(path, loaderOptions));
  let node: unknown = loaded;
  for (const part of service.split(".")) node = (node as Record<string, unknown>)[part];
  if (typeof node !== "function") throw new Error(`${service} not found in ${path}`);
  return node as grpc.ServiceClientConstructor;
}

function loadConstructors(): ServiceConstructors {
  constructors ??= {
    publisher: serviceConstructor(protoPaths.pubsub, "google.pubsub.v1.Publisher"),
    subscriber: serviceConstructor(protoPaths.pubsub, "google.pubsub.v1.Subscriber"),
    health: serviceConstructor(protoPaths.health, "grpc.health.v1.Health"),
    reflectionV1: serviceConstructor(protoPaths.reflectionV1, "grpc.reflection.v1.ServerReflection"),
    reflectionV1Alpha: serviceConstructor(protoPaths.reflectionV1Alpha, "grpc.reflection.v1alpha.ServerReflection"),
  };
  return constructors;
}

/** grpc-js clients sharing one channel; `close()` closes the channel, so no connection outlives the test. */
export interface GrpcJsClients {
  publisher: grpc.Client;
  subscriber: grpc.Client;
  health: grpc.Client;
  reflectionV1: grpc.Client;
  reflectionV1Alpha: grpc.Client;
  close(): void;
}

/** Connects to `hostPort` over h2c (insecure). A local subchannel pool keeps the TCP connection owned by this channel. */
export function createGrpcJsClients(hostPort: string): GrpcJsClients {
  const services = loadConstructors();
  const channelOptions: grpc.ChannelOptions = { "grpc.use_local_subchannel_pool": 1 };
  const channel = new grpc.Channel(hostPort, grpc.credentials.createInsecure(), channelOptions);
  const make = (ctor: grpc.ServiceClientConstructor) =>
    new ctor(hostPort, grpc.credentials.createInsecure(), { channelOverride: channel });
  return {
    publisher: make(services.publisher),
    subscriber: make(services.subscriber),
    health: make(services.health),
    reflectionV1: make(services.reflectionV1),
    reflectionV1Alpha: make(services.reflectionV1Alpha),
    close: () => channel.close(),
  };
}

type UnaryMethod = (
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: unknown) => void,
) => grpc.ClientUnaryCall;

/** Calls a unary method by its proto name (e.g. "CreateTopic"); rejects with the grpc-js ServiceError. */
export function unary<T = Record<string, unknown>>(
  client: grpc.Client,
  method: string,
  request: unknown,
  options: { deadlineMs?: number } = {},
): Promise<T> {
  const fn = (client as unknown as Record<string, UnaryMethod | undefined>)[method];
  if (typeof fn !== "function") throw new Error(`no method ${method} on client`);
  const deadline = new Date(Date.now() + (options.deadlineMs ?? 10_000));
  return new Promise<T>((resolve, reject) => {
    fn.call(client, request, new grpc.Metadata(), { deadline }, (error, response) => {
      if (error !== null) reject(error);
      else resolve(response as T);
    });
  });
}

/** Opens a bidi stream by its proto name (e.g. "StreamingPull"). */
export function bidi(client: grpc.Client, method: string): grpc.ClientDuplexStream<unknown, unknown> {
  const fn = (client as unknown as Record<string, ((metadata?: grpc.Metadata) => unknown) | undefined>)[method];
  if (typeof fn !== "function") throw new Error(`no method ${method} on client`);
  return fn.call(client) as grpc.ClientDuplexStream<unknown, unknown>;
}

/** Awaits a call expected to fail; returns its ServiceError (fails if the call succeeds). */
export async function grpcFailure(call: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    const response = await call;
    throw new Error(`expected the call to fail, it returned ${JSON.stringify(response)}`);
  } catch (error) {
    if (error instanceof Error && "code" in error && typeof (error as grpc.ServiceError).code === "number") {
      return error as grpc.ServiceError;
    }
    throw error;
  }
}

export { grpc };
