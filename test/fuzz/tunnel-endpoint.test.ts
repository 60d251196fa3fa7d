// Fuzz: the tunnel server wired into serve — raw Tunnel/Control and Tunnel/Stream calls, a misbehaving agent's
// frames, and malformed requests to the public entries while a real agent serves: clear errors, nothing disturbed.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { type ClientHttp2Stream, connect } from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { create, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  AgentMessageSchema,
  type RequestHead,
  ServerMessageSchema,
  TunnelFrameSchema,
} from "../../src/gen/streamgate/tunnel/v1/tunnel_pb.js";
import { createTunnelAgent, type TunnelAgent } from "../../src/tunnel/agent/index.js";
import { createFrameChannel } from "../../src/tunnel/protocol/frame-channel.js";
import { encodeFrame } from "../../src/tunnel/protocol/frame-codec.js";
import { grpcFrame } from "../harness/raw-grpc.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { grpcHeaders, type ScriptedAgent, startScriptedAgent } from "../harness/tunnel-scripted-agent.js";
import { EchoClient, type GrpcBackend, startGrpcBackend } from "../harness/tunnel-test-backends.js";
import { waitFor, withTimeout } from "../harness/wait-for.js";
import { type H2Result, Http2Pool, h2Call } from "./fuzz-clients.js";
import {
  describeInput,
  FuzzRecorder,
  fuzzCount,
  fuzzSeed,
  mutateBytesMany,
  mutateString,
  NASTY_STRINGS,
  Rng,
  runPool,
} from "./fuzz-kit.js";

const TOKEN = "fuzz-agent-token";
const CONTROL_PATH = "/streamgate.tunnel.v1.Tunnel/Control";
const STREAM_PATH = "/streamgate.tunnel.v1.Tunnel/Stream";
/** Every answer within this bound (the server's first-frame timeout is 10 s; every input ends its request). */
const ANSWER_MS = 12_000;
/** After its response headers, an answer must end within this (every input ended its request side). */
const OPEN_MS = 3_000;
/**
 * A gRPC status the server maps from an agent's non-200 HTTP status (gRPC spec: 400 → INTERNAL, 500 → UNKNOWN):
 * the one UNKNOWN / INTERNAL the oracle accepts, as it is the agent's answer, named in the message.
 */
const MAPPED_HTTP_STATUS = /^the tunnel agent answered HTTP \d{3} .*\(gRPC status mapped from the HTTP status\)$/;

// One grant; the real agent serves `echo`, the scripted misbehaving agent `fuzz`, `hold` has no rule (its session
// only gives raw Stream calls a live session id to Attach to).
const SERVER_RULES = [
  "version: 1",
  "agents:",
  "  - name: fuzz-agents",
  `    token: ${TOKEN}`,
  "    groups: [echo, fuzz, hold]",
  "rules:",
  "  - name: echo",
  "    match:",
  "      service: test.Echo",
  "    group: echo",
  "  - name: fuzz",
  "    match:",
  "      service: fuzz.Target",
  "    group: fuzz",
  "  - name: web",
  "    match:",
  "      pathPrefix: /web/",
  "    group: echo",
  "",
].join("\n");

function agentRules(backend: GrpcBackend): string {
  return [
    "version: 1",
    "upstreams:",
    "  - name: echo-backend",
    "    protocol: grpc",
    `    addresses: [${backend.address}]`,
    "routes:",
    "  - name: echo",
    "    match:",
    "      service: test.Echo",
    "    upstream: echo-backend",
    "",
  ].join("\n");
}

function framed<Desc extends DescMessage>(schema: Desc, init: MessageInitShape<Desc>): Buffer {
  return Buffer.from(encodeFrame(schema, create(schema, init)));
}

const agentMessage = (init: MessageInitShape<typeof AgentMessageSchema>) => framed(AgentMessageSchema, init);
const tunnelFrame = (init: MessageInitShape<typeof TunnelFrameSchema>) => framed(TunnelFrameSchema, init);

/** A length prefix that lies: declares more than any limit (or 4 GiB), followed by a few bytes. */
function oversized(rng: Rng): Buffer {
  const header = Buffer.alloc(5);
  header[0] = rng.chance(0.8) ? 0 : rng.range(1, 255);
  header.writeUInt32BE(rng.pick([0xffff_ffff, 0x7fff_ffff, 1024 * 1024 + 1, 64 * 1024 * 1024]), 1);
  return Buffer.concat([header, rng.bytes(rng.range(0, 64))]);
}

/** A name field: valid, an unknown group, nasty, unicode, huge. */
function oddName(rng: Rng, valid: string): string {
  return rng.pick<() => string>([
    () => valid,
    () => mutateString(rng, valid),
    () => rng.pick(NASTY_STRINGS),
    () => "unknown-group",
    () => "ünïcødé-😀",
    () => "x".repeat(rng.pick([128, 129, 4_096, 200_000])),
    () => "",
  ])();
}

function registerMessage(rng: Rng, group: string): Buffer {
  return agentMessage({
    kind: {
      case: "register",
      value: {
        clientId: rng.chance(0.5) ? `fuzz-${rng.int(1_000)}` : oddName(rng, "fuzz-client"),
        group: rng.chance(0.5) ? group : oddName(rng, group),
        token: rng.chance(0.7) ? "" : rng.pick([TOKEN, "wrong", mutateString(rng, TOKEN)]),
        agentVersion: rng.chance(0.8) ? "fuzz/1" : oddName(rng, "fuzz/1"),
        capabilities: rng.chance(0.3)
          ? undefined
          : {
              grpc: rng.chance(0.5),
              http: rng.chance(0.5),
              websocket: rng.chance(0.5),
              maxConcurrentStreams: rng.pick([0, 1, 8, 0xffff_ffff, 0x7fff_ffff]),
              maxMessageBytes: rng.pick([0, 1, 0xffff_ffff]),
            },
      },
    },
  });
}

/** Control messages other than Register, some odd. */
function otherAgentMessage(rng: Rng): Buffer {
  switch (rng.int(6)) {
    case 0:
      return agentMessage({
        kind: {
          case: "heartbeat",
          value: { sentAtUnixMs: BigInt(rng.pick([0, -1, Date.now(), 2 ** 53])), reply: rng.chance(0.5) },
        },
      });
    case 1:
      return agentMessage({
        kind: {
          case: "health",
          value: {
            upstreams: Array.from({ length: rng.pick([0, 1, 500]) }, () => ({
              name: oddName(rng, "up"),
              address: "127.0.0.1:1",
              serving: rng.chance(0.5),
              detail: rng.pick(NASTY_STRINGS),
            })),
          },
        },
      });
    case 2:
      return agentMessage({ kind: { case: "drain", value: { reason: rng.pick(NASTY_STRINGS) } } });
    case 3:
      return agentMessage({});
    case 4:
      // An unknown field (a newer agent's kind) and nothing else.
      return grpcFrame(Buffer.from([0xfa, 0x01, 0x02, 0x08, 0x01]));
    default:
      return registerMessage(rng, "hold");
  }
}

/** The body of one raw Control call. */
function controlBody(rng: Rng): Buffer {
  const valid = registerMessage(rng, rng.pick(["hold", "fuzz", "echo"]));
  switch (rng.int(7)) {
    case 0:
      return rng.bytes(rng.range(0, 300));
    case 1:
      return mutateBytesMany(rng, valid, 4);
    case 2:
      return valid;
    case 3:
      // Messages in any order (Register later, twice, or never).
      return Buffer.concat(
        Array.from({ length: rng.range(1, 6) }, () => (rng.chance(0.3) ? valid : otherAgentMessage(rng))),
      );
    case 4:
      return rng.chance(0.5) ? oversized(rng) : Buffer.concat([valid, oversized(rng)]);
    case 5:
      // Truncated: a valid prefix cut inside a frame.
      return Buffer.concat([valid, otherAgentMessage(rng)]).subarray(0, rng.range(1, valid.length + 4));
    default:
      return Buffer.concat([valid, mutateBytesMany(rng, otherAgentMessage(rng))]);
  }
}

/** Request headers of a raw agent call: mostly right, sometimes a wrong/missing token, content type or method. */
function agentCallHeaders(rng: Rng, path: string): Record<string, string> {
  const headers: Record<string, string> = {
    ":method": "POST",
    ":path": path,
    "content-type": "application/grpc",
    te: "trailers",
    authorization: `Bearer ${TOKEN}`,
  };
  for (let n = rng.chance(0.6) ? 0 : rng.range(1, 2); n > 0; n--) {
    switch (rng.int(5)) {
      case 0:
        delete headers.authorization;
        break;
      case 1:
        headers.authorization = rng.pick(["Bearer wrong", "Bearer ", "Basic Zm9vOmJhcg==", "bearer", TOKEN]);
        break;
      case 2:
        headers["content-type"] = rng.pick(["application/grpc+json", "application/json", "text/plain", ""]);
        break;
      case 3:
        headers[":method"] = rng.pick(["GET", "PUT"]);
        break;
      default:
        headers[":path"] = rng.pick([`${path}x`, "/streamgate.tunnel.v1.Tunnel/", "/streamgate.tunnel.v1.Tunnel/Nope"]);
        break;
    }
  }
  return headers;
}

/** Frames an agent may send, and some it may not (in any order). */
function agentFrame(rng: Rng, sessionId: string, requestId: string): Buffer {
  const id = rng.chance(0.85) ? requestId : rng.pick(["", "unknown-request", mutateString(rng, requestId)]);
  switch (rng.int(11)) {
    case 0:
      return tunnelFrame({ kind: { case: "attach", value: { sessionId } } });
    case 1:
      return tunnelFrame({
        requestId: id,
        kind: {
          case: "responseHead",
          value: {
            // Statuses a response cannot have (0, 99, 999, 101 without an upgrade) and non-200 ones gRPC maps.
            status: rng.pick([200, 200, 200, 404, 503, 400, 500, 0, 99, 999, 101]),
            headers: Array.from({ length: rng.range(0, 3) }, () => ({
              name: rng.pick([
                "content-type",
                "x-a",
                ":status",
                "connection",
                "Bad Name",
                "x-b\r\n",
                "",
                "te",
                "grpc-status",
                `x-fuzz-${rng.int(1_000)}`,
              ]),
              value: rng.pick(["application/grpc", "v", "\u0000", "a\r\nb", "é", "14", "5"]),
            })),
            // Trailers-only: with or without a (valid) grpc-status among the headers.
            endStream: rng.chance(0.2),
          },
        },
      });
    case 2:
    case 3:
      return tunnelFrame({
        requestId: id,
        kind: {
          case: "data",
          value: {
            data: rng.chance(0.5) ? grpcFrame(rng.bytes(rng.range(0, 40))) : rng.bytes(rng.range(0, 300)),
            endStream: rng.chance(0.3),
          },
        },
      });
    case 4:
      return tunnelFrame({
        requestId: id,
        kind: {
          case: "trailers",
          value: {
            headers: rng.pick([
              [{ name: "grpc-status", value: "0" }],
              [
                { name: "grpc-status", value: "5" },
                { name: "grpc-message", value: "not here" },
              ],
              [
                { name: "grpc-status", value: "14" },
                { name: "grpc-message", value: "gone" },
              ],
              // Without grpc-status (or with an invalid one): UNAVAILABLE, the agent broke the protocol.
              [],
              [{ name: "x-trailer", value: rng.pick(["t", "\r\n"]) }],
              [{ name: "grpc-status", value: rng.pick(["99", "x", ""]) }],
            ]),
          },
        },
      });
    case 5:
      return tunnelFrame({
        requestId: id,
        // The agent's own status passes through: only valid codes with a message (99 or an empty message is the agent's doing).
        kind: { case: "error", value: { code: rng.pick([5, 14]), message: `agent error ${rng.pick(NASTY_STRINGS)}` } },
      });
    case 6:
      return tunnelFrame({ requestId: id, kind: { case: "cancel", value: { reason: "fuzz" } } });
    case 7:
      return tunnelFrame({
        requestId: id,
        kind: { case: "requestHead", value: { method: "POST", path: "/x.Y/Z", protocol: 1 } },
      });
    case 8:
      return tunnelFrame({ requestId: id });
    case 9:
      return rng.chance(0.5) ? oversized(rng) : rng.bytes(rng.range(1, 40));
    default:
      return mutateBytesMany(
        rng,
        tunnelFrame({ requestId: id, kind: { case: "data", value: { data: rng.bytes(8) } } }),
      );
  }
}

/** The body of one raw Stream call: Attach (to a live or unknown session) and frames in any order. */
function streamBody(rng: Rng, liveSession: string): Buffer {
  const sessionId = rng.pick([
    liveSession,
    liveSession,
    "0".repeat(32),
    "",
    mutateString(rng, liveSession),
    "x".repeat(10_000),
  ]);
  const attach = tunnelFrame({ kind: { case: "attach", value: { sessionId } } });
  const frames = Array.from({ length: rng.range(0, 5) }, () => agentFrame(rng, sessionId, "r-1"));
  switch (rng.int(5)) {
    case 0:
      return Buffer.concat(frames.length > 0 ? frames : [rng.bytes(rng.range(0, 100))]);
    case 1:
      return mutateBytesMany(rng, Buffer.concat([attach, ...frames]), 3);
    case 2: {
      const whole = Buffer.concat([attach, ...frames]);
      return whole.subarray(0, rng.range(0, whole.length));
    }
    default:
      return Buffer.concat([attach, ...frames]);
  }
}

const BAD_STATUSES = new Set([2, 13]);

/**
 * The oracle for a gRPC answer: it ended (no stream left open, no bare reset), with a valid grpc-status,
 * a message with every error, and never UNKNOWN or INTERNAL (but for an agent's HTTP status mapped as gRPC says,
 * see MAPPED_HTTP_STATUS). Returns the problem, or null.
 */
function grpcProblem(result: H2Result, _bodyBytes = 0, agentStatus = false): string | null {
  if (result.open) return "the stream stayed open after its request ended";
  if (result.httpStatus === 0) return `no answer: ${result.streamError}`;
  const status = result.trailers["grpc-status"] ?? result.headers["grpc-status"];
  if (status === undefined) {
    // A request that is not gRPC at all (content type) gets an HTTP 4xx with the JSON error body.
    const text = result.body.toString();
    if (result.httpStatus >= 400 && result.httpStatus < 500 && text.startsWith('{"error":{')) return null;
    return `HTTP ${result.httpStatus} without grpc-status: ${text.slice(0, 200)}`;
  }
  const code = Number(status);
  if (!/^\d{1,2}$/.test(status) || code > 16) return `grpc-status ${JSON.stringify(status)}`;
  const message = decodeURIComponent(result.trailers["grpc-message"] ?? result.headers["grpc-message"] ?? "");
  if (BAD_STATUSES.has(code) && !(agentStatus && MAPPED_HTTP_STATUS.test(message)))
    return `grpc-status ${code} (${code === 2 ? "UNKNOWN" : "INTERNAL"}): ${message}`;
  // A status the agent sent passes through as it is (grpc-message is optional in gRPC).
  if (code !== 0 && message === "" && !agentStatus) return `grpc-status ${code} without a grpc-message`;
  return null;
}

function grpcOutcome(result: H2Result, _bodyBytes = 0): string {
  const status = result.trailers["grpc-status"] ?? result.headers["grpc-status"];
  if (result.open) return "open";
  if (result.httpStatus === 0) return "reset";
  return status === undefined ? `http ${result.httpStatus}` : `grpc ${status}`;
}

function describeCall(headers: Record<string, string>, body: Buffer): string {
  const shown = Object.fromEntries(
    Object.entries(headers).map(([k, v]) => [k, v.length > 100 ? `${v.slice(0, 100)}…` : v]),
  );
  return `${JSON.stringify(shown)} body ${describeInput(body, 300)}`;
}

/** Sends one raw call; headers node refuses to send are replaced by `fallback`, so the body still reaches the server. */
async function call(
  url: string,
  shared: Http2Pool,
  headers: Record<string, string>,
  body: Buffer,
  fallback: Record<string, string>,
): Promise<{ result: H2Result; sent: Record<string, string> }> {
  // A body beyond one flow-control window goes on its own connection.
  const own = body.length > 60_000 ? new Http2Pool(url, 1) : null;
  const pool = own ?? shared;
  // An answer that starts but does not end within OPEN_MS is reported `open` (a failure).
  try {
    const openMs = OPEN_MS;
    const result = await h2Call(pool, headers, body, ANSWER_MS, openMs).catch((error: unknown) => {
      if (!String(error).includes("unsendable")) throw error;
      return null;
    });
    if (result !== null) return { result, sent: headers };
    return { result: await h2Call(pool, fallback, body, ANSWER_MS, openMs), sent: fallback };
  } finally {
    own?.close();
  }
}

describe("fuzz tunnel endpoint", () => {
  let dir: string;
  let backend: GrpcBackend;
  let server: TestServer;
  let realAgent: TunnelAgent;
  let client: InstanceType<typeof EchoClient>;
  let holder: ScriptedAgent;
  let misbehaving: MisbehavingAgent;
  let mainPool: Http2Pool;
  let entryPool: Http2Pool;
  let entryUrl: string;
  const seed = fuzzSeed();

  const tunnel = () => {
    const value = server.server.tunnel;
    assert.ok(value, "the tunnel server runs");
    return value;
  };
  const assertAlive = async (after: string) => {
    // `connection: close`: no keep-alive connection outlives the check (the server's close counts leaks).
    const response = await fetch(`${server.url}/healthz`, {
      headers: { connection: "close" },
      signal: AbortSignal.timeout(5_000),
    }).catch((error: unknown) => {
      throw new Error(`after ${after}: the server no longer answers /healthz (${String(error)})`);
    });
    await response.arrayBuffer();
    assert.equal(response.status, 200, `after ${after}: /healthz answered ${response.status}`);
  };
  const echo = (text: string) =>
    new Promise<Buffer>((resolve, reject) => {
      (client as unknown as Record<string, (...args: unknown[]) => unknown>).Unary!.call(
        client,
        Buffer.from(text),
        new grpc.Metadata(),
        { deadline: Date.now() + 10_000 },
        (error: grpc.ServiceError | null, response: Buffer) => (error ? reject(error) : resolve(response)),
      );
    });
  const realAgentReady = () =>
    waitFor(
      () =>
        tunnel()
          .agents()
          .some((agent) => agent.client_id === "real-agent" && agent.standby > 0),
      {
        timeoutMs: 10_000,
        describe: () => `the real agent with standby streams: ${JSON.stringify(tunnel().agents())}`,
      },
    );

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "streamgate-fuzz-tunnel-"));
    backend = await startGrpcBackend("fuzz-backend");
    writeFileSync(join(dir, "server.yaml"), SERVER_RULES);
    writeFileSync(join(dir, "agent.yaml"), agentRules(backend));
    server = await startTestServer({ tunnelRulesPath: join(dir, "server.yaml"), tunnelHttpPort: 0, tunnelGrpcPort: 0 });
    realAgent = createTunnelAgent({
      serverUrl: server.url,
      token: TOKEN,
      group: "echo",
      clientId: "real-agent",
      rulesPath: join(dir, "agent.yaml"),
      reconnect: { initialMs: 50, maxMs: 300 },
      drainTimeoutMs: 5_000,
    });
    await withTimeout(realAgent.start(), 10_000, "the real agent to register");
    await realAgentReady();
    const addresses = tunnel().addresses();
    assert.ok(addresses, "the tunnel entries listen");
    client = new EchoClient(`127.0.0.1:${addresses.grpc.port}`, grpc.credentials.createInsecure(), {
      "grpc.use_local_subchannel_pool": 1,
    });
    assert.equal((await echo("before")).toString(), "before", "a tunnelled call before fuzzing");
    holder = await startScriptedAgent({
      url: server.url,
      token: TOKEN,
      group: "hold",
      clientId: "holder",
      passive: true,
      respond: async () => undefined,
    });
    mainPool = new Http2Pool(server.url, Number(process.env.FZ_POOL ?? 4));
    entryUrl = `http://127.0.0.1:${addresses.grpc.port}`;
    entryPool = new Http2Pool(entryUrl, 4);
  });

  after(async () => {
    mainPool?.close();
    entryPool?.close();
    client?.close();
    misbehaving?.close();
    await holder?.close();
    await realAgent?.close();
    await server?.close({ graceMs: 5_000 });
    await backend?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("fuzz - raw Tunnel/Control calls end with a clear gRPC status, never hang", { timeout: 60_000 }, async () => {
    const recorder = new FuzzRecorder("tunnel control");
    const count = fuzzCount(0.3);
    const batch = 200;
    for (let start = 0; start < count; start += batch) {
      await runPool(Math.min(batch, count - start), Number(process.env.FZ_CONC ?? 12), async (offset) => {
        const index = start + offset;
        const rng = recorder.input(index);
        const headers = agentCallHeaders(rng, CONTROL_PATH);
        const body = controlBody(rng);
        try {
          const { result, sent } = await call(
            server.url,
            mainPool,
            headers,
            body,
            agentCallHeaders(new Rng(0), CONTROL_PATH),
          );
          recorder.outcome(grpcOutcome(result, body.length));
          const problem = grpcProblem(result, body.length);
          if (problem !== null) recorder.fail(index, problem, describeCall(sent, body));
        } catch (error) {
          recorder.outcome("hang");
          recorder.fail(index, String(error), describeCall(headers, body));
        }
      });
      await assertAlive(`control inputs ${start}..${start + batch - 1}`);
    }
    recorder.finish();
  });

  test("fuzz - raw Tunnel/Stream calls end with a clear gRPC status, never hang", { timeout: 60_000 }, async () => {
    const recorder = new FuzzRecorder("tunnel stream");
    const count = fuzzCount(0.3);
    const batch = 200;
    for (let start = 0; start < count; start += batch) {
      await runPool(Math.min(batch, count - start), Number(process.env.FZ_CONC ?? 12), async (offset) => {
        const index = start + offset;
        const rng = recorder.input(index);
        const headers = agentCallHeaders(rng, STREAM_PATH);
        const body = streamBody(rng, holder.sessionId);
        try {
          const { result, sent } = await call(
            server.url,
            mainPool,
            headers,
            body,
            agentCallHeaders(new Rng(0), STREAM_PATH),
          );
          recorder.outcome(grpcOutcome(result, body.length));
          const problem = grpcProblem(result, body.length);
          if (problem !== null) recorder.fail(index, problem, describeCall(sent, body));
        } catch (error) {
          recorder.outcome("hang");
          recorder.fail(index, String(error), describeCall(headers, body));
        }
      });
      await assertAlive(`stream inputs ${start}..${start + batch - 1}`);
    }
    recorder.finish();
  });

  test("fuzz - an agent answering with frames out of order, lies and garbage gives its clients a clear status", {
    timeout: 60_000,
  }, async () => {
    const recorder = new FuzzRecorder("tunnel agent frames");
    misbehaving = await startMisbehavingAgent(server.url, (head, requestId, stream) => {
      const index = Number(head.headers.find((header) => header.name === "x-fuzz-index")?.value ?? -1);
      // The script needs the request id, so it is made here, from the input's own generator.
      const rng = new Rng(seed, `tunnel agent frames (agent)#${index}`);
      const frames = Array.from({ length: rng.range(0, 6) }, () => agentFrame(rng, misbehaving.sessionId, requestId));
      scripts.set(index, Buffer.concat(frames));
      if (!stream.destroyed) stream.write(Buffer.concat(frames));
      if (rng.chance(0.85)) stream.end();
      else stream.close(rng.pick([0, 8, 2]));
    });
    const scripts = new Map<number, Buffer>();
    await waitFor(
      () =>
        tunnel()
          .agents()
          .some((agent) => agent.client_id === "misbehaving" && agent.standby > 0),
      {
        timeoutMs: 10_000,
        describe: () => `the misbehaving agent with standby streams: ${JSON.stringify(tunnel().agents())}`,
      },
    );
    const count = fuzzCount(0.2);
    const batch = 200;
    for (let start = 0; start < count; start += batch) {
      await runPool(Math.min(batch, count - start), 8, async (offset) => {
        const index = start + offset;
        const headers = {
          ":method": "POST",
          ":path": "/fuzz.Target/Call",
          "content-type": "application/grpc",
          te: "trailers",
          "x-fuzz-index": String(index),
        };
        const body = grpcFrame(Buffer.from(`input ${index}`));
        try {
          const result = await h2Call(entryPool, headers, body, ANSWER_MS, OPEN_MS);
          recorder.outcome(grpcOutcome(result));
          const problem = grpcProblem(result, body.length, true);
          if (problem !== null)
            recorder.fail(
              index,
              problem,
              `agent answered ${describeInput(scripts.get(index) ?? Buffer.alloc(0), 300)}`,
            );
        } catch (error) {
          recorder.outcome("hang");
          recorder.fail(
            index,
            String(error),
            `agent answered ${describeInput(scripts.get(index) ?? Buffer.alloc(0), 300)}`,
          );
        }
      });
      await assertAlive(`agent frame inputs ${start}..${start + batch - 1}`);
    }
    recorder.finish();
  });

  test("fuzz - malformed gRPC requests to the public entry end with a clear status while a real agent serves", {
    timeout: 60_000,
  }, async () => {
    const recorder = new FuzzRecorder("tunnel entry grpc");
    const count = fuzzCount(0.2);
    const batch = 200;
    for (let start = 0; start < count; start += batch) {
      await runPool(Math.min(batch, count - start), 8, async (offset) => {
        const index = start + offset;
        const rng = recorder.input(index);
        const path = rng.pick([
          "/test.Echo/Unary",
          "/test.Echo/Bidi",
          "/test.Echo/ClientStream",
          "/test.Echo/Fail",
          "/nope.Svc/X",
        ]);
        const headers: Record<string, string> = {
          ":method": "POST",
          ":path": path,
          "content-type": "application/grpc",
          te: "trailers",
        };
        if (rng.chance(0.3)) headers["grpc-timeout"] = rng.pick(["1S", "0m", "99999999H", "x", "-1S", "1"]);
        if (rng.chance(0.2)) headers["grpc-encoding"] = rng.pick(["gzip", "snappy", ""]);
        if (rng.chance(0.2)) headers["x-meta-bin"] = rng.pick(["!!!", "AAAA", "a".repeat(10_000)]);
        if (rng.chance(0.1))
          headers["content-type"] = rng.pick(["application/grpc+proto", "application/grpc-web", "text/plain"]);
        const payload = Buffer.from(`entry ${index}`);
        const body = rng.pick<() => Buffer>([
          () => grpcFrame(payload),
          () => grpcFrame(payload, { declaredLength: payload.length + rng.range(1, 100) }),
          () => grpcFrame(payload, { declaredLength: rng.pick([0xffff_ffff, 0x7fff_ffff, 64 * 1024 * 1024]) }),
          () => grpcFrame(payload, { compressed: true }),
          () => grpcFrame(payload).subarray(0, rng.int(5 + payload.length)),
          () => Buffer.concat(Array.from({ length: rng.range(2, 10) }, () => grpcFrame(payload))),
          () => mutateBytesMany(rng, grpcFrame(payload), 3),
          () => rng.bytes(rng.range(0, 64)),
        ])();
        try {
          const { result, sent } = await call(entryUrl, entryPool, headers, body, {
            ":method": "POST",
            ":path": path,
            "content-type": "application/grpc",
            te: "trailers",
          });
          recorder.outcome(grpcOutcome(result, body.length));
          // A gzip message that does not inflate is the backend's (grpc-js) INTERNAL, as the gRPC spec has it;
          // the tunnel passes a backend's status through unchanged.
          const backendInflateError =
            sent["grpc-encoding"] === "gzip" &&
            decodeURIComponent(result.trailers["grpc-message"] ?? result.headers["grpc-message"] ?? "") ===
              "Failed to decompress message";
          const problem = backendInflateError ? null : grpcProblem(result, body.length);
          if (problem !== null) recorder.fail(index, problem, describeCall(sent, body));
        } catch (error) {
          recorder.outcome("hang");
          recorder.fail(index, String(error), describeCall(headers, body));
        }
      });
      await assertAlive(`entry inputs ${start}..${start + batch - 1}`);
    }
    recorder.finish();
  });

  test("fuzz - after the campaign the real agent still serves and the tunnel holds nothing leaked", {
    timeout: 30_000,
  }, async () => {
    misbehaving?.close();
    await holder.close();
    await waitFor(
      () => {
        const stats = tunnel().stats();
        return stats.inFlight === 0 && stats.pending === 0 && stats.sessions === 1;
      },
      { timeoutMs: 10_000, describe: () => `an idle tunnel with one session: ${JSON.stringify(tunnel().stats())}` },
    );
    assert.deepEqual(
      tunnel()
        .agents()
        .map((agent) => agent.client_id),
      ["real-agent"],
    );
    await realAgentReady();
    assert.equal((await echo("after")).toString(), "after", "a tunnelled call after fuzzing");
    const stats = tunnel().stats();
    assert.equal(stats.streams, stats.standby, `every open agent stream is a standby: ${JSON.stringify(stats)}`);
    await assertAlive("the campaign");
  });
});

interface MisbehavingAgent {
  sessionId: string;
  close(): void;
}

/**
 * A registered agent (group `fuzz`) that keeps standby streams open and answers each request by
 * calling `answer` with the raw stream: it writes whatever bytes it likes (frames in any order, garbage).
 */
async function startMisbehavingAgent(
  url: string,
  answer: (head: RequestHead, requestId: string, stream: ClientHttp2Stream) => void,
): Promise<MisbehavingAgent> {
  const session = connect(url);
  session.on("error", () => undefined);
  const control = createFrameChannel(session.request(grpcHeaders(CONTROL_PATH, TOKEN)), {
    receive: ServerMessageSchema,
    send: AgentMessageSchema,
  });
  await control.send(
    create(AgentMessageSchema, {
      kind: { case: "register", value: { clientId: "misbehaving", group: "fuzz", capabilities: { grpc: true } } },
    }),
  );
  const messages = control[Symbol.asyncIterator]();
  const first = await withTimeout(messages.next(), 10_000, "Registered");
  if (first.done || first.value.kind.case !== "registered") throw new Error("the misbehaving agent got no Registered");
  const sessionId = first.value.kind.value.sessionId;
  const openStandby = () => {
    if (session.closed || session.destroyed) return;
    const stream = session.request(grpcHeaders(STREAM_PATH, TOKEN));
    stream.on("error", () => undefined);
    const channel = createFrameChannel(stream, { receive: TunnelFrameSchema, send: TunnelFrameSchema });
    void (async () => {
      await channel.send(create(TunnelFrameSchema, { kind: { case: "attach", value: { sessionId } } }));
      const next = await channel[Symbol.asyncIterator]().next();
      if (next.done || next.value.kind.case !== "requestHead") return;
      answer(next.value.kind.value, next.value.requestId, stream);
    })().catch(() => stream.destroy());
  };
  for (let index = 0; index < first.value.kind.value.standbyStreams; index++) openStandby();
  void (async () => {
    for (;;) {
      const result = await messages.next();
      if (result.done) return;
      const kind = result.value.kind;
      if (kind.case === "openStreams") for (let index = 0; index < kind.value.count; index++) openStandby();
      if (kind.case === "heartbeat" && !kind.value.reply) {
        await control.send(
          create(AgentMessageSchema, {
            kind: { case: "heartbeat", value: { sentAtUnixMs: kind.value.sentAtUnixMs, reply: true } },
          }),
        );
      }
    }
  })().catch(() => undefined);
  return { sessionId, close: () => session.destroy() };
}
