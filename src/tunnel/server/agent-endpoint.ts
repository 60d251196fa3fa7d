// The agent side of the tunnel server: Tunnel/Control (register, heartbeats, drain, rotate) and Tunnel/Stream (standbys).
import { randomBytes } from "node:crypto";
import type { Http2Session, IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import { create } from "@bufbuild/protobuf";
import { Code, StreamgateError } from "../../errors/index.js";
import {
  type AgentMessage,
  AgentMessageSchema,
  type ServerMessage,
  ServerMessageSchema,
  type TunnelFrame,
  TunnelFrameSchema,
} from "../../gen/streamgate/tunnel/v1/tunnel_pb.js";
import type { Logger } from "../../observability/index.js";
import { createFrameChannel, type FrameChannel } from "../protocol/frame-channel.js";
import { decodeHotFrame } from "../protocol/head-frame.js";
import { type AgentTokenGrant, findAgentGrant, groupAllowed, type ServerRules } from "../rules/index.js";
import type { AgentRegistry } from "./agent-registry.js";
import { AgentSession } from "./agent-session.js";
import { endGrpc, respondGrpc } from "./grpc-stream.js";
import { TunnelStream } from "./tunnel-stream.js";

/** Path prefix of the tunnel service on the main port. */
export const TUNNEL_SERVICE_PREFIX = "/streamgate.tunnel.v1.Tunnel/";

/** Largest control message accepted from an agent (upstream health lists included). */
const MAX_CONTROL_FRAME_BYTES = 1024 * 1024;
/** Heartbeat intervals without a word from the agent after which its session ends. */
const MISSED_HEARTBEATS = 3;
/** The stream limit already announced per agent connection. */
const raisedLimits = new WeakMap<Http2Session, number>();
/** Names (client id, group): printable, bounded, no spaces. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$/;

export interface AgentEndpointOptions {
  heartbeatIntervalMs: number;
  standbyStreams: number;
  rotateAfterMs: number;
  /** Largest tunnel frame accepted on a Stream (one max message plus headroom). */
  maxFrameBytes: number;
  /** Stream limit for agents that announce none. */
  defaultMaxStreams: number;
  /** Time an agent has to send Register (Control) or Attach (Stream). */
  firstFrameTimeoutMs: number;
}

export interface AgentEndpointContext {
  options: AgentEndpointOptions;
  rules(): ServerRules;
  registry: AgentRegistry;
  logger: Logger;
  draining(): boolean;
  /** Every open agent Stream call (standby or busy), for stats and shutdown. */
  streams: Set<TunnelStream>;
  /** Control calls per session, for drain. */
  controls: Map<AgentSession, ControlHandle>;
  /** Sessions came or went (metrics). */
  sessionsChanged(): void;
}

/** What the server can do with a live control stream. */
export interface ControlHandle {
  /** Tells the agent to take no new requests on this session; the call ends once nothing is in flight. */
  drain(reason: string): void;
  /** Ends the session now (in-flight streams are reset). */
  close(error: StreamgateError | null): void;
}

/** Serves one call to the tunnel service; `headers` are the request headers. */
export function handleAgentCall(
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  context: AgentEndpointContext,
) {
  stream.on("error", () => undefined);
  const path = String(headers[":path"] ?? "");
  const method = path.slice(TUNNEL_SERVICE_PREFIX.length);
  if (headers[":method"] !== "POST" || !/^application\/grpc(\+proto)?$/.test(String(headers["content-type"] ?? ""))) {
    endGrpc(stream, new StreamgateError(Code.INVALID_ARGUMENT, "the tunnel service takes gRPC POST calls only"), true);
    return;
  }
  const work =
    method === "Control"
      ? runControl(stream, headers, context)
      : method === "Stream"
        ? runStream(stream, headers, context)
        : null;
  if (work === null) {
    endGrpc(
      stream,
      new StreamgateError(Code.UNIMPLEMENTED, `unknown tunnel method ${path}`, { reason: "UNIMPLEMENTED" }),
      true,
    );
    return;
  }
  work.catch((error: unknown) => {
    const failure = StreamgateError.from(error);
    context.logger.debug({ err: failure, path }, "tunnel agent call failed");
    // The request body may still be arriving: close the stream once the status is out (no half-open call).
    endGrpc(stream, failure, true);
  });
}

function bearerToken(headers: IncomingHttpHeaders): string | null {
  const value = headers.authorization;
  if (typeof value !== "string") return null;
  const match = /^Bearer\s+(.+)$/i.exec(value.trim());
  return match === null ? "" : match[1]!;
}

const badToken = () => new StreamgateError(Code.UNAUTHENTICATED, "unknown agent token", { reason: "TUNNEL_BAD_TOKEN" });

/** The first frame of a call, bounded in time; null when the peer ended the call without one. */
async function firstFrame<T>(iterator: AsyncIterator<T>, timeoutMs: number, what: string): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new StreamgateError(Code.INVALID_ARGUMENT, `no ${what} within ${timeoutMs} ms`, {
            reason: "TUNNEL_FIRST_FRAME_TIMEOUT",
          }),
        ),
      timeoutMs,
    );
  });
  try {
    const result = await Promise.race([iterator.next(), timeout]);
    return result.done ? null : result.value;
  } finally {
    clearTimeout(timer);
  }
}

async function runControl(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, context: AgentEndpointContext) {
  const { options, logger } = context;
  const rules = context.rules();
  const headerToken = bearerToken(headers);
  let grant: AgentTokenGrant | null = null;
  if (headerToken !== null) {
    grant = findAgentGrant(rules, headerToken);
    if (grant === null) throw badToken();
  }
  if (context.draining()) {
    throw new StreamgateError(Code.UNAVAILABLE, "the server is draining; connect to another instance", {
      reason: "TUNNEL_SERVER_DRAINING",
    });
  }
  const channel = createFrameChannel(stream, {
    receive: AgentMessageSchema,
    send: ServerMessageSchema,
    maxFrameBytes: MAX_CONTROL_FRAME_BYTES,
  });
  const messages = channel[Symbol.asyncIterator]();
  const first = await firstFrame(messages, options.firstFrameTimeoutMs, "Register");
  if (first === null || first.kind.case !== "register") {
    throw new StreamgateError(Code.INVALID_ARGUMENT, "the first message of Tunnel/Control must be Register", {
      reason: "TUNNEL_REGISTER_FIRST",
    });
  }
  const register = first.kind.value;
  if (grant === null) {
    grant = register.token === "" ? null : findAgentGrant(rules, register.token);
    if (grant === null) throw badToken();
  }
  for (const [field, value] of [
    ["client_id", register.clientId],
    ["group", register.group],
  ] as const) {
    if (!NAME.test(value)) {
      throw new StreamgateError(
        Code.INVALID_ARGUMENT,
        `Register.${field}: must be 1-128 characters of letters, digits and . _ : @ / - (got ${JSON.stringify(value.slice(0, 140))})`,
        { reason: "TUNNEL_BAD_REGISTER" },
      );
    }
  }
  if (!groupAllowed(grant, register.group)) {
    throw new StreamgateError(
      Code.PERMISSION_DENIED,
      `agent token ${JSON.stringify(grant.name)} may not join group ${JSON.stringify(register.group)}`,
      { reason: "TUNNEL_GROUP_DENIED" },
    );
  }

  const capabilities = register.capabilities;
  const maxStreams =
    capabilities !== undefined && capabilities.maxConcurrentStreams > 0
      ? capabilities.maxConcurrentStreams
      : options.defaultMaxStreams;
  const standbyStreams = Math.min(options.standbyStreams, maxStreams);
  const reuseStreams = capabilities?.reuseStreams === true;
  const send = (message: ServerMessage["kind"]) => {
    channel.send(create(ServerMessageSchema, { kind: message })).catch(() => undefined);
  };
  const session = new AgentSession({
    id: randomBytes(16).toString("hex"),
    clientId: register.clientId,
    group: register.group,
    grantName: grant.name,
    token: headerToken ?? register.token,
    agentVersion: register.agentVersion,
    standbyTarget: standbyStreams,
    maxStreams,
    initialStandbys: standbyStreams,
    reuseStreams,
    control: { openStreams: (count) => send({ case: "openStreams", value: { count } as never }) },
  });

  // An authenticated agent carries one HTTP/2 stream per request on this connection: lift the per-connection
  // stream limit (a DoS guard for anonymous clients) to what this agent may use.
  const wantedStreams = Math.min(maxStreams + standbyStreams + 16, 2 ** 31 - 1);
  // (localSettings is not a reliable guide: it can still show the defaults before the first SETTINGS ack.)
  const connection = stream.session;
  if (connection !== undefined && !connection.destroyed && (raisedLimits.get(connection) ?? 0) < wantedStreams) {
    raisedLimits.set(connection, wantedStreams);
    connection.settings({ maxConcurrentStreams: wantedStreams });
  }
  respondGrpc(stream);
  send({
    case: "registered",
    value: {
      sessionId: session.id,
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      standbyStreams,
      rotateAfterMs: BigInt(options.rotateAfterMs),
      reuseStreams,
    } as never,
  });
  context.registry.add(session);
  context.sessionsChanged();
  const log = logger.child({ agent: session.clientId, group: session.group, session: session.id.slice(0, 8) });
  log.info({ version: session.agentVersion, token: grant.name }, "tunnel agent registered");

  let closed = false;
  const close = (error: StreamgateError | null) => {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    clearTimeout(rotate);
    session.ended = true;
    session.healthy = false;
    context.registry.remove(session);
    context.controls.delete(session);
    for (const standby of session.stopTaking()) standby.finish(null);
    // Streams still carrying requests belong to a session that is gone: reset them so their clients learn at once.
    for (const active of [...session.active]) active.destroy();
    endGrpc(stream, error, true);
    context.sessionsChanged();
    if (error === null) log.info("tunnel agent session ended");
    else log.warn({ reason: error.reason }, `tunnel agent session ended: ${error.message}`);
  };
  const drain = (reason: string) => {
    if (session.draining || closed) return;
    session.draining = true;
    send({ case: "drain", value: { reason } as never });
    for (const standby of session.stopTaking()) standby.finish(null);
    if (session.inFlight === 0) close(null);
  };
  session.onDrained = () => close(null);
  context.controls.set(session, { drain, close });

  const heartbeat = setInterval(() => {
    if (Date.now() - session.lastHeardAtMs > MISSED_HEARTBEATS * options.heartbeatIntervalMs) {
      close(
        new StreamgateError(Code.UNAVAILABLE, `no heartbeat from the agent for ${MISSED_HEARTBEATS} intervals`, {
          reason: "TUNNEL_AGENT_LOST",
        }),
      );
      return;
    }
    send({ case: "heartbeat", value: { sentAtUnixMs: BigInt(Date.now()) } as never });
  }, options.heartbeatIntervalMs);
  heartbeat.unref();
  const rotate = setTimeout(
    () => {
      if (!session.draining && !closed) send({ case: "rotate", value: { reason: "session age limit" } as never });
    },
    options.rotateAfterMs > 0 ? options.rotateAfterMs : 2 ** 31 - 1,
  );
  rotate.unref();
  stream.once("close", () => close(null));

  try {
    for (;;) {
      const result = await messages.next();
      if (result.done) break;
      session.lastHeardAtMs = Date.now();
      handleAgentMessage(result.value, session, send, drain);
    }
    close(null);
  } catch (error) {
    close(StreamgateError.from(error));
  }
}

function handleAgentMessage(
  message: AgentMessage,
  session: AgentSession,
  send: (message: ServerMessage["kind"]) => void,
  drain: (reason: string) => void,
): void {
  switch (message.kind.case) {
    case "heartbeat":
      if (!message.kind.value.reply) {
        send({ case: "heartbeat", value: { sentAtUnixMs: message.kind.value.sentAtUnixMs, reply: true } as never });
      }
      return;
    case "health":
      session.upstreams = message.kind.value.upstreams;
      return;
    case "drain":
      drain(message.kind.value.reason || "agent drains");
      return;
    case "register":
      throw new StreamgateError(Code.INVALID_ARGUMENT, "Register may be sent only once per control stream", {
        reason: "TUNNEL_FRAME_SEQUENCE",
      });
    default:
      // Unknown kinds from a newer agent are ignored.
      return;
  }
}

async function runStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, context: AgentEndpointContext) {
  const headerToken = bearerToken(headers);
  const channel: FrameChannel<TunnelFrame, TunnelFrame> = createFrameChannel(stream, {
    receive: TunnelFrameSchema,
    send: TunnelFrameSchema,
    maxFrameBytes: context.options.maxFrameBytes,
    fastDecode: decodeHotFrame,
  });
  const frames = channel[Symbol.asyncIterator]();
  const first = await firstFrame(frames, context.options.firstFrameTimeoutMs, "Attach");
  if (first === null || first.kind.case !== "attach") {
    throw new StreamgateError(Code.INVALID_ARGUMENT, "the first frame of Tunnel/Stream must be Attach", {
      reason: "TUNNEL_FRAME_SEQUENCE",
    });
  }
  const session = context.registry.get(first.kind.value.sessionId);
  if (session === undefined || session.ended) {
    throw new StreamgateError(Code.NOT_FOUND, "Attach names no live session of this server", {
      reason: "TUNNEL_UNKNOWN_SESSION",
    });
  }
  // The session id is a 128-bit secret; a token, when sent, must be the session's own (a live session's own
  // token is still allowed: a rules reload ends the sessions whose token went away).
  if (headerToken !== null && headerToken !== session.token) {
    const grant = findAgentGrant(context.rules(), headerToken);
    if (grant === null) throw badToken();
    if (grant.name !== session.grantName) {
      throw new StreamgateError(Code.PERMISSION_DENIED, "this token did not open the session named in Attach", {
        reason: "TUNNEL_GROUP_DENIED",
      });
    }
  }
  const tunnel = new TunnelStream(session, stream, channel, frames, (gone) => {
    context.streams.delete(gone);
    gone.session.removeStandby(gone);
  });
  tunnel.sequence.check("agent", first);
  context.streams.add(tunnel);
  respondGrpc(stream);
  tunnel.watchStandby();
  if (!session.addStandby(tunnel)) tunnel.finish(null);
}
