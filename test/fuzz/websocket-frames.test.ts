// Fuzz: raw WebSocket frames after a valid upgrade to /v1/ws, and garbage JSON commands in valid frames.
import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import {
  describeInput,
  FuzzRecorder,
  fuzzCount,
  mutateBytesMany,
  mutatedJsonText,
  type Rng,
  runPool,
} from "./fuzz-kit.js";
import { type FuzzServer, startFuzzServer } from "./fuzz-server.js";

interface FrameSpec {
  fin?: boolean;
  rsv?: number;
  opcode: number;
  masked?: boolean;
  payload: Buffer;
  /** A length field that lies about the payload. */
  declaredLength?: number;
}

/** Encodes one client frame (masked unless told otherwise). */
function wsFrame(spec: FrameSpec): Buffer {
  const length = spec.declaredLength ?? spec.payload.length;
  const masked = spec.masked ?? true;
  const head: number[] = [((spec.fin ?? true) ? 0x80 : 0) | ((spec.rsv ?? 0) << 4) | (spec.opcode & 0x0f)];
  let extended = Buffer.alloc(0);
  if (length < 126) head.push((masked ? 0x80 : 0) | length);
  else if (length < 0x1_0000) {
    head.push((masked ? 0x80 : 0) | 126);
    extended = Buffer.alloc(2);
    extended.writeUInt16BE(length);
  } else {
    head.push((masked ? 0x80 : 0) | 127);
    extended = Buffer.alloc(8);
    extended.writeBigUInt64BE(BigInt(length));
  }
  const key = masked ? randomBytes(4) : Buffer.alloc(0);
  const body = Buffer.from(spec.payload);
  if (masked) for (let i = 0; i < body.length; i++) body[i] = body[i]! ^ key[i % 4]!;
  return Buffer.concat([Buffer.from(head), extended, key, body]);
}

const PONG = '{"type":"pong"}';
const text = (value: unknown) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value));

/** Frames the server sends (unmasked); `rest` is what is not yet a whole frame. */
function parseServerFrames(data: Buffer): { frames: { opcode: number; payload: Buffer }[]; rest: Buffer } {
  const frames: { opcode: number; payload: Buffer }[] = [];
  let at = 0;
  for (;;) {
    if (data.length - at < 2) break;
    const opcode = data[at]! & 0x0f;
    let length = data[at + 1]! & 0x7f;
    let offset = at + 2;
    if (length === 126) {
      if (data.length - at < 4) break;
      length = data.readUInt16BE(at + 2);
      offset = at + 4;
    } else if (length === 127) {
      if (data.length - at < 10) break;
      length = Number(data.readBigUInt64BE(at + 2));
      offset = at + 10;
    }
    if (data.length < offset + length) break;
    frames.push({ opcode, payload: data.subarray(offset, offset + length) });
    at = offset + length;
  }
  return { frames, rest: data.subarray(at) };
}

interface WsExchange {
  /** Close code and reason the server sent, or null when the connection ended without a close frame. */
  close: { code: number; reason: string } | null;
  texts: string[];
}

/**
 * Upgrades, writes `bytes` after the handshake, and collects server frames until `done(texts)` holds
 * (then closes cleanly), the server closes, or `idleMs` pass without a byte (then half-closes and
 * expects the server to close within `timeoutMs`).
 * @throws Error "hang: …" when the server neither answers nor closes.
 */
function wsExchange(
  port: number,
  writes: Uint8Array[],
  options: { idleMs: number; timeoutMs: number; done?: (texts: string[]) => boolean },
): Promise<WsExchange> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host: "127.0.0.1", port, noDelay: true });
    const result: WsExchange = { close: null, texts: [] };
    let buffer: Buffer = Buffer.alloc(0);
    let upgraded = false;
    let settled = false;
    let closing = false;
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(idle);
      clearTimeout(deadline);
      socket.destroy();
      if (error !== undefined) reject(error);
      else resolve(result);
    };
    let idle: NodeJS.Timeout | undefined;
    const armIdle = () => {
      clearTimeout(idle);
      idle = setTimeout(() => socket.end(), options.idleMs);
    };
    const deadline = setTimeout(
      () => finish(new Error(`hang: no close within ${options.timeoutMs} ms`)),
      options.timeoutMs,
    );
    socket.on("error", () => undefined);
    socket.on("close", () =>
      finish(upgraded ? undefined : new Error(`upgrade failed: ${buffer.toString("latin1").slice(0, 200)}`)),
    );
    socket.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      armIdle();
      if (!upgraded) {
        const end = buffer.indexOf("\r\n\r\n");
        if (end < 0) return;
        if (!buffer.subarray(0, 12).toString().includes("101"))
          return finish(new Error(`no 101: ${buffer.toString("latin1").slice(0, 200)}`));
        upgraded = true;
        buffer = buffer.subarray(end + 4);
        for (const write of writes) socket.write(write);
      }
      const { frames, rest } = parseServerFrames(buffer);
      buffer = rest;
      for (const frame of frames) {
        if (frame.opcode === 0x1) result.texts.push(frame.payload.toString("utf8"));
        else if (frame.opcode === 0x8) {
          result.close = {
            code: frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : 1005,
            reason: frame.payload.subarray(2).toString("utf8"),
          };
          return finish();
        }
      }
      if (!closing && options.done?.(result.texts) === true) {
        closing = true;
        socket.write(wsFrame({ opcode: 0x8, payload: Buffer.from([0x03, 0xe8]) }));
      }
    });
    socket.write(
      "GET /v1/ws HTTP/1.1\r\nhost: localhost\r\nconnection: Upgrade\r\nupgrade: websocket\r\n" +
        `sec-websocket-version: 13\r\nsec-websocket-key: ${randomBytes(16).toString("base64")}\r\n\r\n`,
    );
  });
}

/** Generator kinds that leave the server waiting for more bytes (length lies, truncation, a lone fragment). */
const CUT_FRAME_KINDS = new Set([3, 4, 6, 8, 12]);

/** Raw frame corruption: opcodes, RSV, masking, length lies, control frames, fragmentation, UTF-8, close payloads. */
function fuzzedFrames(rng: Rng, command: Buffer): { kind: number; frames: Uint8Array[] } {
  const kind = rng.int(13);
  return { kind, frames: framesOf(kind, rng, command) };
}

function framesOf(kind: number, rng: Rng, command: Buffer): Uint8Array[] {
  switch (kind) {
    case 0:
      return [wsFrame({ opcode: rng.pick([3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]), payload: command })];
    case 1:
      return [wsFrame({ opcode: 1, rsv: rng.range(1, 7), payload: command })];
    case 2:
      return [wsFrame({ opcode: 1, masked: false, payload: command })];
    case 3:
      return [wsFrame({ opcode: 1, payload: command, declaredLength: command.length + rng.range(1, 1000) })];
    case 4:
      return [
        wsFrame({
          opcode: rng.pick([1, 2]),
          payload: Buffer.alloc(0),
          declaredLength: rng.pick([0x10_0001, 2 ** 32, 2 ** 53, 70_000]),
        }),
      ];
    case 5:
      return [wsFrame({ opcode: rng.pick([8, 9, 0xa]), payload: Buffer.alloc(rng.range(126, 300), 0x41) })];
    case 6:
      return [wsFrame({ opcode: 9, fin: false, payload: Buffer.from("p") })];
    case 7:
      return [wsFrame({ opcode: 0, payload: command })];
    case 8:
      return [
        wsFrame({ opcode: 1, fin: false, payload: command.subarray(0, 3) }),
        wsFrame({ opcode: 1, payload: command.subarray(3) }),
      ];
    case 9:
      return [
        wsFrame({
          opcode: 1,
          payload: Buffer.concat([
            command.subarray(0, 5),
            rng.pick([
              Buffer.from([0xff]),
              Buffer.from([0xc3]),
              Buffer.from([0xed, 0xa0, 0x80]),
              Buffer.from([0xf4, 0x90, 0x80, 0x80]),
            ]),
            command.subarray(5),
          ]),
        }),
      ];
    case 10: {
      const code = Buffer.alloc(2);
      code.writeUInt16BE(rng.pick([0, 999, 1004, 1005, 1006, 1015, 2999, 5000, 65535]));
      return [
        wsFrame({
          opcode: 8,
          payload: rng.chance(0.3)
            ? Buffer.from([0x03])
            : Buffer.concat([code, rng.chance(0.5) ? Buffer.from([0xff, 0xfe]) : Buffer.from("bye")]),
        }),
      ];
    }
    case 11:
      return [mutateBytesMany(rng, wsFrame({ opcode: 1, payload: command }))];
    default:
      return [wsFrame({ opcode: 1, payload: command }).subarray(0, rng.range(1, 6))];
  }
}

describe("fuzz WebSocket", () => {
  let fuzz: FuzzServer;
  let commands: Record<string, unknown>[];
  before(async () => {
    fuzz = await startFuzzServer();
    commands = [
      { type: "subscribe", id: "s1", topic: fuzz.topic, from: "earliest", filter: "attributes:n" },
      { type: "subscribe", id: "s2", topic: fuzz.topic, from: "1" },
      { type: "unsubscribe", id: "s1" },
      {
        type: "publish",
        ref: "r1",
        topic: fuzz.topic,
        messages: [{ data: "aGVsbG8=", attributes: { k: "v" }, orderingKey: "o" }],
      },
      { type: "ping" },
    ];
  });
  after(async () => {
    await fuzz?.finish();
  });

  test("fuzz - raw WebSocket frames end in a close frame with a valid code, never a hang", {
    timeout: 90_000,
  }, async () => {
    const recorder = new FuzzRecorder("websocket frames");
    const count = fuzzCount();
    await runPool(count, 12, async (index) => {
      const rng = recorder.input(index);
      const { kind, frames } = fuzzedFrames(rng, text(rng.pick(commands)));
      const shown = describeInput(Buffer.concat(frames), 200);
      try {
        const result = await wsExchange(fuzz.server.port, frames, { idleMs: 300, timeoutMs: 10_000 });
        if (result.close === null) {
          // Only a frame the server is still waiting for (truncated, or a length that lies) ends this way.
          recorder.outcome("cut frame: closed after the client's FIN");
          if (!CUT_FRAME_KINDS.has(kind) && kind !== 11)
            recorder.fail(index, `kind ${kind}: closed without a close frame`, shown);
          return;
        }
        recorder.outcome(`close ${result.close.code}${result.close.reason === "" ? "" : " with reason"}`);
        if (result.close.code < 1000 || result.close.code === 1011 || result.close.code === 1005)
          recorder.fail(index, `close code ${result.close.code} (${result.close.reason})`, shown);
      } catch (error) {
        recorder.outcome("hang or refused");
        recorder.fail(index, String(error), shown);
      }
      if (index % 250 === 249) await fuzz.assertAlive(`WebSocket frame ${index}`);
    });
    await fuzz.assertAlive("WebSocket frames");
    recorder.finish();
  });

  test("fuzz - garbage JSON commands get error frames (never INTERNAL) and the connection keeps serving", {
    timeout: 90_000,
  }, async () => {
    const recorder = new FuzzRecorder("websocket commands");
    const count = fuzzCount();
    const perConnection = 4;
    await runPool(Math.ceil(count / perConnection), 12, async (connectionIndex) => {
      const rng = recorder.input(connectionIndex);
      const inputs = Array.from({ length: perConnection }, () => mutatedJsonText(rng, rng.pick(commands) as never));
      // A ping last: its pong shows the connection still serves after the garbage.
      const frames = [
        ...inputs.map((payload) => wsFrame({ opcode: 1, payload })),
        wsFrame({ opcode: 1, payload: text({ type: "ping" }) }),
      ];
      const shown = inputs.map((input) => describeInput(input, 150)).join(" | ");
      try {
        const result = await wsExchange(fuzz.server.port, frames, {
          idleMs: 2_000,
          timeoutMs: 10_000,
          done: (texts) => texts.includes(PONG),
        });
        for (const reply of result.texts) {
          const frame = JSON.parse(reply) as { type: string; status?: string; message?: string; reason?: string };
          if (frame.type !== "error") continue;
          if (frame.status === "INTERNAL" || frame.status === "UNKNOWN" || !frame.message || !frame.reason)
            recorder.fail(connectionIndex, `error frame ${reply.slice(0, 300)}`, shown);
        }
        for (let i = 0; i < perConnection; i++)
          recorder.outcome(result.close === null ? "answered" : `close ${result.close.code}`);
        if (result.close !== null && (result.close.code === 1011 || result.close.code < 1000))
          recorder.fail(connectionIndex, `closed ${result.close.code} ${result.close.reason}`, shown);
        // By design a command over the payload limit (1009) or with invalid UTF-8 (1007) ends the connection;
        // otherwise the ping after the garbage is answered.
        if (result.close?.code !== 1009 && result.close?.code !== 1007 && !result.texts.includes(PONG))
          recorder.fail(connectionIndex, `no pong after the garbage (close ${JSON.stringify(result.close)})`, shown);
      } catch (error) {
        for (let i = 0; i < perConnection; i++) recorder.outcome("hang");
        recorder.fail(connectionIndex, String(error), shown);
      }
    });
    await fuzz.assertAlive("WebSocket commands");
    recorder.finish();
  });
});
