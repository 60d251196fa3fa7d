// @grpc/grpc-js clients for streamgate.v1.Events and chat.ChatService, built from our .proto files, plus stream helpers.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const root = fileURLToPath(new URL("../../", import.meta.url));

export const liveProtoPaths = {
  events: join(root, "proto/streamgate/v1/events.proto"),
  chat: join(root, "proto/chat/chat.proto"),
} as const;

/** camelCase fields, int64 as strings, defaults filled, oneof names set (`kind`). */
const loaderOptions: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [join(root, "proto")],
};

function serviceConstructor(path: string, service: string): grpc.ServiceClientConstructor {
  let node: unknown = grpc.loadPackageDefinition(protoLoader.loadSync(path, loaderOptions));
  for (const part of service.split(".")) node = (node as Record<string, unknown>)[part];
  if (typeof node !== "function") throw new Error(`${service} not found in ${path}`);
  return node as grpc.ServiceClientConstructor;
}

export interface LiveClients {
  events: grpc.Client;
  chat: grpc.Client;
  close(): void;
}

/** Clients on one channel of their own (insecure h2c); `close()` closes it. */
export function createLiveClients(hostPort: string): LiveClients {
  const channel = new grpc.Channel(hostPort, grpc.credentials.createInsecure(), {
    "grpc.use_local_subchannel_pool": 1,
  });
  const make = (ctor: grpc.ServiceClientConstructor) =>
    new ctor(hostPort, grpc.credentials.createInsecure(), { channelOverride: channel });
  return {
    events: make(serviceConstructor(liveProtoPaths.events, "streamgate.v1.Events")),
    chat: make(serviceConstructor(liveProtoPaths.chat, "chat.ChatService")),
    close: () => channel.close(),
  };
}

/** A call's received items and its end, for assertions with bounded waits. */
export interface Recorder<T> {
  readonly items: T[];
  /** The status error the call ended with, or null while running / after a clean end. */
  error: grpc.ServiceError | null;
  ended: boolean;
}

/** Records every `data` of a readable call and how it ended. */
export function record<T>(call: NodeJS.EventEmitter): Recorder<T> {
  const recorder: Recorder<T> = { items: [], error: null, ended: false };
  call.on("data", (item: T) => recorder.items.push(item));
  call.on("error", (error: grpc.ServiceError) => {
    recorder.error = error;
    recorder.ended = true;
  });
  call.on("end", () => {
    recorder.ended = true;
  });
  return recorder;
}

export { grpc };
