// A scripted tunnel agent over raw node:http2 + the frame channel, for the tunnel server's own tests:
// it registers, keeps standbys, and answers each request with a function the test gives (or misbehaves on purpose).
import { type ClientHttp2Session, type ClientHttp2Stream, connect } from "node:http2";
import { create } from "@bufbuild/protobuf";
import {
  AgentMessageSchema,
  type RequestHead,
  type ServerMessage,
  ServerMessageSchema,
  type TunnelFrame,
  TunnelFrameSchema,
} from "../../src/gen/streamgate/tunnel/v1/tunnel_pb.js";
import { createFrameChannel, type FrameChannel } from "../../src/tunnel/protocol/frame-channel.js";

export type Frames = FrameChannel<TunnelFrame, TunnelFrame>;

/** Answers one request on its tunnel stream; `frames` yields the request's Data frames. */
export type Responder = (
  head: RequestHead,
  frames: AsyncIterator<TunnelFrame>,
  channel: Frames,
  requestId: string,
) => Promise<void>;

export interface ScriptedAgent {
  sessionId: string;
  registered: ServerMessage | null;
  /** Requests this agent received. */
  received: RequestHead[];
  control: FrameChannel<ServerMessage, ReturnType<typeof create<typeof AgentMessageSchema>>>;
  session: ClientHttp2Session;
  /** Opens a raw Stream call (for protocol tests). */
  openRawStream(): ClientHttp2Stream;
  /** Stops answering heartbeats (the connection stays up): the server should give up on the session. */
  mute(): void;
  /** Control messages received after Registered, by kind (e.g. `drain`, `rotate`). */
  controlKinds: string[];
  close(): Promise<void>;
}

export function grpcHeaders(path: string, token: string | null) {
  return {
    ":method": "POST",
    ":path": path,
    "content-type": "application/grpc",
    te: "trailers",
    ...(token === null ? {} : { authorization: `Bearer ${token}` }),
  };
}

/** Connects, registers and serves requests with `respond` until closed. */
export async function startScriptedAgent(options: {
  url: string;
  token: string;
  group: string;
  clientId: string;
  respond: Responder;
  /** Open no standby streams (neither at registration nor on OpenStreams): for tests that open their own. */
  passive?: boolean;
}): Promise<ScriptedAgent> {
  const session = connect(options.url);
  session.on("error", () => undefined);
  const controlStream = session.request(grpcHeaders("/streamgate.tunnel.v1.Tunnel/Control", options.token));
  controlStream.on("error", () => undefined);
  const control = createFrameChannel(controlStream, { receive: ServerMessageSchema, send: AgentMessageSchema });
  await control.send(
    create(AgentMessageSchema, {
      kind: {
        case: "register",
        value: { clientId: options.clientId, group: options.group, capabilities: { grpc: true, http: true } },
      },
    }),
  );
  const messages = control[Symbol.asyncIterator]();
  const first = await messages.next();
  if (first.done || first.value.kind.case !== "registered") throw new Error("no Registered");
  const sessionId = first.value.kind.value.sessionId;
  const streams = new Set<ClientHttp2Stream>();
  let muted = false;
  const agent: ScriptedAgent = {
    mute() {
      muted = true;
    },
    controlKinds: [],
    sessionId,
    registered: first.value,
    received: [],
    control,
    session,
    openRawStream() {
      const stream = session.request(grpcHeaders("/streamgate.tunnel.v1.Tunnel/Stream", options.token));
      stream.on("error", () => undefined);
      return stream;
    },
    async close() {
      for (const stream of streams) stream.destroy();
      session.destroy();
    },
  };
  const openStandby = () => {
    if (session.closed || session.destroyed || options.passive === true) return;
    const stream = agent.openRawStream();
    streams.add(stream);
    stream.once("close", () => streams.delete(stream));
    const channel = createFrameChannel(stream, { receive: TunnelFrameSchema, send: TunnelFrameSchema });
    void (async () => {
      await channel.send(create(TunnelFrameSchema, { kind: { case: "attach", value: { sessionId } } }));
      const frames = channel[Symbol.asyncIterator]();
      const next = await frames.next();
      if (next.done || next.value.kind.case !== "requestHead") return;
      agent.received.push(next.value.kind.value);
      await options.respond(next.value.kind.value, frames, channel, next.value.requestId);
      channel.end();
    })().catch(() => stream.destroy());
  };
  for (let index = 0; index < first.value.kind.value.standbyStreams; index++) openStandby();
  void (async () => {
    for (;;) {
      const result = await messages.next();
      if (result.done) return;
      const kind = result.value.kind;
      if (kind.case !== undefined) agent.controlKinds.push(kind.case);
      if (kind.case === "openStreams") for (let index = 0; index < kind.value.count; index++) openStandby();
      if (kind.case === "heartbeat" && !kind.value.reply && !muted) {
        await control.send(
          create(AgentMessageSchema, {
            kind: { case: "heartbeat", value: { sentAtUnixMs: kind.value.sentAtUnixMs, reply: true } },
          }),
        );
      }
    }
  })().catch(() => undefined);
  return agent;
}

/** A frame of the request `requestId`. */
export function frame(requestId: string, kind: TunnelFrame["kind"]): TunnelFrame {
  return create(TunnelFrameSchema, { requestId, kind });
}

/** Echo responder: gRPC answers with the request body and OK trailers; HTTP with 200 and the body. */
export const echoResponder =
  (name: string): Responder =>
  async (head, frames, channel, requestId) => {
    const chunks: Uint8Array[] = [];
    if (!head.endStream) {
      for (;;) {
        const next = await frames.next();
        if (next.done) break;
        if (next.value.kind.case === "data") {
          chunks.push(next.value.kind.value.data);
          if (next.value.kind.value.endStream) break;
        } else return;
      }
    }
    const grpc = head.protocol === 1;
    await channel.send(
      frame(requestId, {
        case: "responseHead",
        value: {
          status: 200,
          headers: [
            { name: "content-type", value: grpc ? "application/grpc" : "text/plain" },
            { name: "x-agent", value: name },
          ],
          endStream: false,
        },
      } as never),
    );
    const body = Buffer.concat(chunks);
    if (body.length > 0 || !grpc) {
      await channel.send(
        frame(requestId, { case: "data", value: { data: grpc ? body : Buffer.from(`${name}:${body}`) } } as never),
      );
    }
    await channel.send(
      frame(requestId, {
        case: "trailers",
        value: { headers: grpc ? [{ name: "grpc-status", value: "0" }] : [] },
      } as never),
    );
  };
