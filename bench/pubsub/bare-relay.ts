// The latency floor of the pubsub bench: a bare node:http2 program speaking just enough google.pubsub.v1 gRPC for
// the bench's streamgate driver — Publish hands each message to the open StreamingPull streams in the same turn
// (no storage, no leases, no flow control), Acknowledge and the admin calls answer at once. Driven by the same
// grpc-js client and driver as streamgate, in its own process, it shows what the client, Node's HTTP/2 and the
// machine cost a publish→receive round trip; the rest of streamgate's latency is the server's own work.
//
//   node --import tsx bench/pubsub/bare-relay.ts   (prints "listening <port>")
import { fork } from "node:child_process";
import { createServer, type ServerHttp2Stream } from "node:http2";
import type { Socket } from "node:net";

// Field numbers of google/pubsub/v1/pubsub.proto.
const PUBLISH_REQUEST_MESSAGES = 2;
const PUBLISH_RESPONSE_MESSAGE_IDS = 1;
const RESPONSE_RECEIVED_MESSAGES = 1;
const RECEIVED_ACK_ID = 1;
const RECEIVED_MESSAGE = 2;

function varint(value: number): number[] {
  const out: number[] = [];
  while (value >= 0x80) {
    out.push((value % 128) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return out;
}

/** Length-delimited field: tag, length, bytes. */
function delimited(field: number, bytes: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([(field << 3) | 2, ...varint(bytes.length)]), bytes]);
}

/** A gRPC message frame (uncompressed). */
function frame(message: Buffer): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

/** The length-delimited fields numbered `field` of an encoded message (the bench only sends those and varints). */
function fieldsOf(message: Buffer, field: number): Buffer[] {
  const found: Buffer[] = [];
  let position = 0;
  while (position < message.length) {
    let key = 0;
    let shift = 1;
    for (;;) {
      const byte = message[position++]!;
      key += (byte & 0x7f) * shift;
      if (byte < 0x80) break;
      shift *= 128;
    }
    const wireType = key & 7;
    let length = 0;
    shift = 1;
    for (;;) {
      const byte = message[position++]!;
      length += (byte & 0x7f) * shift;
      if (byte < 0x80) break;
      shift *= 128;
    }
    if (wireType === 0) continue; // a varint: `length` was its value
    if (wireType !== 2) throw new Error(`bare relay: unexpected wire type ${wireType}`);
    if (Math.floor(key / 8) === field) found.push(message.subarray(position, position + length));
    position += length;
  }
  return found;
}

/** The first message of a request body (the bench never compresses requests). */
function firstMessage(body: Buffer): Buffer {
  return body.subarray(5, 5 + body.readUInt32BE(1));
}

function serve(): void {
  const pulls = new Set<ServerHttp2Stream>();
  let nextAckId = 0;
  const server = createServer();
  server.on("connection", (socket: Socket) => socket.setNoDelay(true));
  server.on("stream", (stream, headers) => {
    const method = String(headers[":path"]).split("/").pop();
    stream.on("error", () => undefined);
    if (method === "StreamingPull") {
      stream.respond({ ":status": 200, "content-type": "application/grpc" });
      pulls.add(stream);
      stream.on("data", () => undefined);
      stream.on("close", () => pulls.delete(stream));
      return;
    }
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => {
      const request = firstMessage(Buffer.concat(chunks));
      let response: Buffer = Buffer.alloc(0);
      if (method === "Publish") {
        const messages = fieldsOf(request, PUBLISH_REQUEST_MESSAGES);
        const received = messages.map((message) =>
          delimited(
            RESPONSE_RECEIVED_MESSAGES,
            Buffer.concat([
              delimited(RECEIVED_ACK_ID, Buffer.from(String(nextAckId++))),
              delimited(RECEIVED_MESSAGE, message),
            ]),
          ),
        );
        const batch = frame(Buffer.concat(received));
        for (const pull of pulls) pull.write(batch);
        response = Buffer.concat(
          messages.map((_, index) => delimited(PUBLISH_RESPONSE_MESSAGE_IDS, Buffer.from(String(index)))),
        );
      } else if (method === "CreateTopic" || method === "CreateSubscription") {
        response = request; // Topic and Subscription come back as sent
      }
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end(frame(response));
    });
  });
  server.listen(0, "127.0.0.1", () => {
    const address = server.address();
    process.send?.({ port: typeof address === "object" && address !== null ? address.port : 0 });
    process.on("disconnect", () => process.exit(0));
  });
}

/** A running relay child process. */
export interface BareRelay {
  target: string;
  pid: number;
  stop(): Promise<void>;
}

/** Starts the relay in a child process (its own event loop, like the servers it stands beside). */
export async function startBareRelay(): Promise<BareRelay> {
  const child = fork(import.meta.filename, ["--serve"], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once("message", (message: { port: number }) => resolve(message.port));
    child.once("exit", (code) => reject(new Error(`bare relay exited (${code}) before listening`)));
  });
  return {
    target: `127.0.0.1:${port}`,
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

if (process.argv.includes("--serve")) serve();
