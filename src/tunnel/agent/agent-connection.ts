// One tunnel session of the agent: an HTTP/2 connection to the server, its Control call and its Stream calls.
import { readFileSync } from "node:fs";
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect,
  type IncomingHttpHeaders,
  type SecureClientSessionOptions,
} from "node:http2";
import type { Socket } from "node:net";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, codeName, StreamgateError } from "../../errors/index.js";
import {
  AgentMessageSchema,
  type Registered,
  type ServerMessage,
  ServerMessageSchema,
  type TunnelFrame,
  TunnelFrameSchema,
} from "../../gen/streamgate/tunnel/v1/tunnel_pb.js";
import type { Logger } from "../../observability/index.js";
import { createFrameChannel, type FrameChannel } from "../protocol/frame-channel.js";
import { DEFAULT_MAX_FRAME_BYTES, encodeFrame } from "../protocol/frame-codec.js";
import { FrameSequence } from "../protocol/frame-sequence.js";
import { decodeHotFrame } from "../protocol/head-frame.js";
import type { AddressStatus } from "../upstream/index.js";
import type { ResolvedTunnelAgentOptions } from "./agent-options.js";
import { type RequestContext, type StreamEvents, serveTunnelStream } from "./tunnel-request.js";

const CONTROL_PATH = "/streamgate.tunnel.v1.Tunnel/Control";
const STREAM_PATH = "/streamgate.tunnel.v1.Tunnel/Stream";
/** Heartbeat intervals without a word from the server after which the session counts as lost. */
const MISSED_HEARTBEATS = 3;
/** Used until the server says otherwise. */
const DEFAULT_HEARTBEAT_MS = 15_000;
/** How long registering may take before the attempt fails. */
const REGISTER_TIMEOUT_MS = 15_000;
const AGENT_VERSION = "streamgate-agent/0.1.0";

/** Why a session stopped being the one that takes new requests. */
export type SessionEnd =
  | { kind: "lost"; error: StreamgateError }
  | { kind: "rotate"; reason: string }
  | { kind: "drain"; reason: string };

/** Control statuses that mean "this token/group/registration will not be accepted": retrying cannot help. */
const REFUSALS = new Set<number>([Code.UNAUTHENTICATED, Code.PERMISSION_DENIED, Code.INVALID_ARGUMENT]);

/** True when `error` is the server refusing the agent (bad token, group not allowed, bad registration). */
export function isRefusal(error: unknown): boolean {
  return error instanceof StreamgateError && error.reason === "TUNNEL_AGENT_REFUSED";
}

type ControlKind = MessageInitShape<typeof AgentMessageSchema>["kind"];

export class AgentConnection {
  readonly id: number;
  sessionId = "";
  registeredAtMs = 0;
  /** Streams carrying a request. */
  inFlight = 0;
  /** Attached streams waiting for a request. */
  standby = 0;
  /** No new standbys; the server was told (Drain) or asked for it. */
  draining = false;
  /** The server keeps a stream open after a clean exchange (Registered.reuse_streams). */
  reuseStreams = false;
  private session: ClientHttp2Session | undefined;
  /**
   * The session's socket, once connected. Destroyed with the session: on Node 24, destroying a client session
   * whose TLS connection the server refused after the handshake (TLS 1.3 alert "certificate required", an agent
   * without a client certificate) leaves the socket open and never emits the session's 'close'.
   */
  private socket: Socket | undefined;
  private control: FrameChannel<ServerMessage, unknown> | undefined;
  private sendControl: (kind: ControlKind) => void = () => undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private rotateTimer: NodeJS.Timeout | undefined;
  private lastHeardAtMs = Date.now();
  private closed = false;
  private resolveEnd!: (end: SessionEnd) => void;
  /** Settles once, when this session stops being the one for new requests (rotate, drain, loss). */
  readonly ended = new Promise<SessionEnd>((resolve) => {
    this.resolveEnd = resolve;
  });
  private resolveGone!: () => void;
  /** Resolves once the HTTP/2 connection is closed. */
  readonly gone = new Promise<void>((resolve) => {
    this.resolveGone = resolve;
  });
  private attach: { frame: TunnelFrame; bytes: Uint8Array } | undefined;
  private readonly log: Logger;

  constructor(
    id: number,
    private readonly options: ResolvedTunnelAgentOptions,
    private readonly context: RequestContext,
    private readonly health: () => AddressStatus[],
  ) {
    this.id = id;
    this.log = context.logger;
  }

  /** Connects and registers; rejects with the reason (a refusal has reason TUNNEL_AGENT_REFUSED). */
  async open(): Promise<Registered> {
    const { options } = this;
    const tls: SecureClientSessionOptions = {};
    if (options.tls.caPath !== undefined) tls.ca = readFileSync(options.tls.caPath);
    if (options.tls.certPath !== undefined) tls.cert = readFileSync(options.tls.certPath);
    if (options.tls.keyPath !== undefined) tls.key = readFileSync(options.tls.keyPath);
    const session = connect(options.serverUrl, options.serverUrl.startsWith("https:") ? tls : {});
    // Small tunnel frames go out at once, not after the server's ACK of the previous ones (Nagle).
    session.once("connect", (_session, socket) => {
      this.socket = socket;
      socket.setNoDelay(true);
    });
    this.session = session;
    let sessionError: Error | undefined;
    session.on("error", (error) => {
      sessionError = error;
      this.log.debug({ err: error }, "tunnel connection error");
    });
    session.on("goaway", (code: number) => {
      this.log.debug({ code }, "tunnel server sent GOAWAY");
      this.endAs({ kind: "drain", reason: "the server sent GOAWAY" });
    });
    session.on("close", () => {
      this.log.debug("tunnel connection closed");
      this.closed = true;
      this.stopTimers();
      this.endAs({ kind: "lost", error: lost(sessionError ? detail(sessionError) : "the connection closed") });
      this.resolveGone();
    });

    const stream = session.request(this.callHeaders(CONTROL_PATH));
    let status: { code: number; message: string } | undefined;
    const readStatus = (headers: IncomingHttpHeaders) => {
      if (headers["grpc-status"] === undefined) return;
      status = {
        code: Number(headers["grpc-status"]),
        message: decodeURIComponent(String(headers["grpc-message"] ?? "")),
      };
    };
    stream.on("response", readStatus);
    stream.on("trailers", readStatus);
    const control = createFrameChannel(stream, {
      receive: ServerMessageSchema,
      send: AgentMessageSchema,
      maxFrameBytes: 1024 * 1024,
    });
    this.control = control;
    this.sendControl = (kind) => {
      control.send(create(AgentMessageSchema, { kind })).catch(() => undefined);
    };
    const messages = control[Symbol.asyncIterator]();
    this.sendControl({
      case: "register",
      value: {
        clientId: options.clientId,
        group: options.group,
        capabilities: {
          grpc: true,
          http: true,
          websocket: true,
          maxConcurrentStreams: options.maxConcurrentStreams,
          maxMessageBytes: options.maxMessageBytes,
          reuseStreams: true,
        },
        agentVersion: AGENT_VERSION,
      },
    });

    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(lost(`no answer to Register within ${REGISTER_TIMEOUT_MS} ms`)),
        REGISTER_TIMEOUT_MS,
      );
    });
    let registered: Registered;
    try {
      const first = await Promise.race([messages.next(), timeout]);
      if (first.done || first.value.kind.case !== "registered") {
        if (status === undefined) await settled(stream);
        throw refusalOrLoss(status, sessionError);
      }
      registered = first.value.kind.value;
    } catch (error) {
      this.destroy();
      if (isRefusal(error)) throw error;
      throw refusalOrLoss(status, sessionError ?? (error as Error));
    } finally {
      clearTimeout(timer);
    }

    this.sessionId = registered.sessionId;
    this.reuseStreams = registered.reuseStreams;
    this.registeredAtMs = Date.now();
    this.lastHeardAtMs = Date.now();
    this.startHeartbeats(registered.heartbeatIntervalMs || DEFAULT_HEARTBEAT_MS);
    const rotateAfterMs = Number(registered.rotateAfterMs);
    if (rotateAfterMs > 0) {
      // Rotate a little early, jittered, so a fleet of agents does not reconnect in step.
      this.rotateTimer = setTimeout(
        () => this.endAs({ kind: "rotate", reason: "session age limit" }),
        rotateAfterMs * (0.85 + Math.random() * 0.1),
      );
      this.rotateTimer.unref();
    }
    this.reportHealth(this.health());
    this.openStandbys(registered.standbyStreams || options.standbyStreams);
    void this.readControl(messages);
    return registered;
  }

  /** Sends the upstreams' health to the server. */
  reportHealth(statuses: AddressStatus[]): void {
    if (this.closed || statuses.length === 0) return;
    this.sendControl({
      case: "health",
      value: {
        upstreams: statuses.map((status) => ({
          name: status.upstream,
          address: status.address,
          serving: status.serving,
          detail: status.detail,
        })),
      },
    });
  }

  /**
   * Takes no new requests: tells the server (Drain), waits up to `timeoutMs` for the server to end the
   * session (it does once nothing is in flight), then ends the control call and closes the connection
   * (requests still running then are cut).
   */
  async drain(reason: string, timeoutMs: number): Promise<void> {
    if (!this.closed && !this.draining) {
      this.draining = true;
      this.sendControl({ case: "drain", value: { reason } });
    }
    this.endAs({ kind: "drain", reason });
    let timer: NodeJS.Timeout | undefined;
    // Wait for the server to end the session (it does once it has nothing in flight here and has seen the
    // Drain), not only for local idleness: a request it assigned just before reading the Drain may still
    // be on its way to one of this session's standbys, and closing now would break it.
    await Promise.race([
      this.gone,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    this.control?.end();
    this.close();
    await this.gone;
  }

  /** Closes the connection gracefully: streams still open finish, then it closes (destroys after 2 s). */
  close(): void {
    this.stopTimers();
    const session = this.session;
    if (session === undefined || session.destroyed) {
      // A session destroyed earlier (by the peer, or a failed handshake) may have left its socket open on Node 24.
      this.socket?.destroy();
      this.resolveGone();
      return;
    }
    session.close();
    setTimeout(() => this.destroy(), 2_000).unref();
  }

  /** Destroys the connection at once, its socket included. */
  destroy(): void {
    this.stopTimers();
    if (this.session === undefined) this.resolveGone();
    else this.session.destroy();
    this.socket?.destroy();
  }

  private async readControl(messages: AsyncIterator<ServerMessage>): Promise<void> {
    try {
      for (;;) {
        const result = await messages.next();
        if (result.done) break;
        this.lastHeardAtMs = Date.now();
        this.onServerMessage(result.value);
      }
      this.log.debug("tunnel control stream ended by the server");
      this.endAs({ kind: "lost", error: lost("the server ended the control stream") });
    } catch (error) {
      this.endAs({ kind: "lost", error: lost(`the control stream failed: ${detail(error)}`) });
    }
    // Without its control stream the session is over for the server too; live requests were reset by it.
    if (this.inFlight === 0 || !this.draining) this.close();
  }

  private onServerMessage(message: ServerMessage): void {
    switch (message.kind.case) {
      case "heartbeat":
        if (!message.kind.value.reply) {
          this.sendControl({
            case: "heartbeat",
            value: { sentAtUnixMs: message.kind.value.sentAtUnixMs, reply: true, inFlight: this.inFlight },
          });
        }
        return;
      case "openStreams":
        if (!this.draining) this.openStandbys(message.kind.value.count);
        return;
      case "drain":
        this.draining = true;
        this.log.info({ reason: message.kind.value.reason }, "tunnel server asked this session to drain");
        this.endAs({ kind: "drain", reason: message.kind.value.reason || "the server drains" });
        return;
      case "rotate":
        this.endAs({ kind: "rotate", reason: message.kind.value.reason || "the server asked" });
        return;
      default:
        return;
    }
  }

  private startHeartbeats(intervalMs: number): void {
    this.heartbeatTimer = setInterval(() => {
      if (Date.now() - this.lastHeardAtMs > MISSED_HEARTBEATS * intervalMs) {
        this.endAs({ kind: "lost", error: lost(`no word from the server for ${MISSED_HEARTBEATS} heartbeats`) });
        this.destroy();
        return;
      }
      this.sendControl({
        case: "heartbeat",
        value: { sentAtUnixMs: BigInt(Date.now()), inFlight: this.inFlight },
      });
    }, intervalMs);
    this.heartbeatTimer.unref();
  }

  private stopTimers(): void {
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.rotateTimer);
  }

  private openStandbys(count: number): void {
    const room = this.options.maxConcurrentStreams - this.inFlight - this.standby;
    for (let index = 0; index < Math.min(count, room); index++) this.openStandby();
  }

  private openStandby(): void {
    const session = this.session;
    if (session === undefined || session.closed || session.destroyed || this.draining) return;
    let stream: ClientHttp2Stream;
    try {
      stream = session.request(this.callHeaders(STREAM_PATH));
    } catch (error) {
      this.log.debug({ err: error }, "could not open a tunnel stream");
      return;
    }
    stream.on("error", () => undefined);
    const channel = createFrameChannel(stream, {
      receive: TunnelFrameSchema,
      send: TunnelFrameSchema,
      maxFrameBytes: this.options.maxMessageBytes + (DEFAULT_MAX_FRAME_BYTES - 4 * 1024 * 1024),
      fastDecode: decodeHotFrame,
    });
    const sequence = new FrameSequence();
    // The Attach frame is the same for every stream of the session: built and encoded once.
    if (this.attach === undefined) {
      const frame = create(TunnelFrameSchema, { kind: { case: "attach", value: { sessionId: this.sessionId } } });
      this.attach = { frame, bytes: encodeFrame(TunnelFrameSchema, frame) };
    }
    sequence.check("agent", this.attach.frame);
    this.standby++;
    stream.write(this.attach.bytes);
    const events = new StandbyEvents(this);
    void serveTunnelStream(stream, channel, sequence, this.context, events, this.reuseStreams).finally(() => {
      // Never reset a stream that finished normally: one RST_STREAM per request trips the server's
      // rapid-reset protection (and Node's http2 client then tears the connection down badly). A
      // finished exchange is already half-closed here; a standby the server ended without a request
      // still needs our half-close. Errors and cancels reset the stream where they happen.
      channel.end();
      if (events.busy) this.inFlight--;
      else this.standby--;
    });
  }

  private callHeaders(path: string): Record<string, string> {
    return {
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      authorization: `Bearer ${this.options.token}`,
      "user-agent": AGENT_VERSION,
    };
  }

  private endAs(end: SessionEnd): void {
    this.resolveEnd(end);
  }
}

/** One stream's standby / busy accounting on its connection (a class: shared methods for thousands of idle streams). */
class StandbyEvents implements StreamEvents {
  busy = false;

  constructor(private readonly connection: AgentConnection) {}

  onRequest(): void {
    this.busy = true;
    this.connection.standby--;
    this.connection.inFlight++;
  }

  onIdle(): void {
    this.busy = false;
    this.connection.inFlight--;
    this.connection.standby++;
  }
}

function lost(message: string): StreamgateError {
  return new StreamgateError(Code.UNAVAILABLE, message, { reason: "TUNNEL_AGENT_DISCONNECTED" });
}

function detail(error: unknown): string {
  let current = error as { message?: unknown; cause?: unknown } | undefined;
  while (current?.cause !== undefined && current.cause !== null) current = current.cause as typeof current;
  return typeof current?.message === "string" ? current.message : String(error);
}

/** The control call's final status as a refusal (never retried) or a loss (retried with backoff). */
function refusalOrLoss(status: { code: number; message: string } | undefined, error: Error | undefined) {
  if (status !== undefined && REFUSALS.has(status.code)) {
    return new StreamgateError(
      status.code as Code,
      `the tunnel server refused the agent: ${status.message || codeName(status.code as Code)}`,
      { reason: "TUNNEL_AGENT_REFUSED" },
    );
  }
  if (status !== undefined)
    return lost(`the server ended registration: ${codeName(status.code as Code)}: ${status.message}`);
  return lost(error !== undefined ? detail(error) : "the server closed the control stream before Registered");
}

/** Resolves once a stream is closed (its trailers have been read). */
function settled(stream: ClientHttp2Stream): Promise<void> {
  if (stream.closed || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    stream.once("close", () => resolve());
    setTimeout(resolve, 1_000).unref();
  });
}
