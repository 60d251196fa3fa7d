// Fuzz: 1,000+ malformed PROXY protocol v1/v2 headers over real TCP (wrong signatures, fields, versions, families,
// lengths, TLVs, checksums, truncated, oversized, slowloris, untrusted senders). Each connection must be closed with
// no answer and the warn line naming the reason its generator built in; a live SSE client stays unaffected.
import assert from "node:assert/strict";
import { connect, isIP, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { crc32c, PROXY_V2_SIGNATURE } from "../../src/http/proxy-protocol.js";
import { captureLogs, type LogCapture } from "../harness/log-capture.js";
import { connectWithHeader, ipv4Addresses, proxyV1, proxyV2 } from "../harness/proxy-header.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";
import { waitFor } from "../harness/wait-for.js";
import { describeInput, FuzzRecorder, fuzzCount, NASTY_STRINGS, type Rng, runPool } from "./fuzz-kit.js";

/**
 * The server's header deadline in this test. A bad header must be refused for its own reason before the deadline
 * could fire; the deadline is long enough that an event-loop stall of a loaded machine (seen: ~1 s in CI beside
 * other suites) cannot make the timer win the race against bytes already received.
 */
const TIMEOUT_MS = 2_000;
/** Outside the trusted 127.0.0.1/32 (Linux answers for all of 127.0.0.0/8). */
const UNTRUSTED_LOCAL = "127.0.0.2";

interface Case {
  family: string;
  bytes: Buffer;
  reason: string;
  /** Close our side after sending (a truncated header). */
  end?: boolean;
  /** Send one byte every `dripMs` instead of all at once (slowloris). */
  dripMs?: number;
  localAddress?: string;
}

const ipv4 = (rng: Rng) => `${rng.int(256)}.${rng.int(256)}.${rng.int(256)}.${rng.int(256)}`;
const ipv6 = (rng: Rng) => Array.from({ length: 8 }, () => rng.int(0x10000).toString(16)).join(":");

function validHeader(rng: Rng): Buffer {
  if (rng.chance(0.5)) {
    return rng.chance(0.7)
      ? proxyV1(ipv4(rng), rng.int(65536), ipv4(rng), rng.int(65536))
      : proxyV1(ipv6(rng), rng.int(65536), ipv6(rng), rng.int(65536));
  }
  const tlvs = rng.chance(0.5) ? [{ type: rng.pick([1, 2, 4, 5]), value: rng.bytes(rng.int(40)) }] : [];
  return proxyV2({ addresses: ipv4Addresses(ipv4(rng), ipv4(rng), rng.int(65536), rng.int(65536)), tlvs });
}

const BAD_FIELDS = [
  "TCP5",
  "tcp4",
  "1.2.3",
  "256.1.1.1",
  "1.2.3.4.5",
  "::g",
  "65536",
  "-1",
  "01",
  "0x10",
  "1e3",
  "",
  ...NASTY_STRINGS.filter((text) => /^[\x21-\x7e]+$/.test(text)).slice(0, 10),
  // Never a field that is valid in some position (an address, a port, a protocol): every line below must be bad.
].filter(
  (field) => isIP(field) === 0 && !/^(0|[1-9]\d{0,4})$/.test(field) && !["TCP4", "TCP6", "UNKNOWN"].includes(field),
);

/** Generators, each building one kind of bad header and the reason the server must give. */
const generators: { weight: number; build(rng: Rng): Case }[] = [
  {
    weight: 12,
    build(rng) {
      const fields = ["TCP4", ipv4(rng), ipv4(rng), String(rng.int(65536)), String(rng.int(65536))];
      const at = rng.int(5);
      fields[at] = rng.pick(BAD_FIELDS);
      const line = `PROXY ${fields.join(" ")}\r\n`;
      return {
        family: "v1 bad field",
        bytes: Buffer.from(line),
        reason: line.length > 107 ? "too_large" : "malformed",
      };
    },
  },
  {
    weight: 6,
    build(rng) {
      const fields = ["TCP6", ipv6(rng), ipv6(rng), String(rng.int(65536)), String(rng.int(65536))];
      if (rng.chance(0.5)) fields.splice(1 + rng.int(4), 1);
      else fields.push(String(rng.int(100)));
      return { family: "v1 field count", bytes: Buffer.from(`PROXY ${fields.join(" ")}\r\n`), reason: "malformed" };
    },
  },
  {
    weight: 4,
    build(rng) {
      const line = proxyV1(ipv4(rng), rng.int(65536)).toString("latin1").replace("\r\n", "\n");
      return { family: "v1 bare LF", bytes: Buffer.from(line, "latin1"), reason: "malformed" };
    },
  },
  {
    weight: 6,
    build(rng) {
      const filler = Array.from({ length: rng.range(110, 400) }, () => rng.pick(["1", ".", " ", "9", "a"])).join("");
      return { family: "v1 oversized", bytes: Buffer.from(`PROXY TCP4 ${filler}`), reason: "too_large" };
    },
  },
  {
    weight: 8,
    build(rng) {
      const header = Buffer.from(validHeader(rng));
      const v2 = header[0] === 0x0d;
      // Change one signature byte (v1: "PROXY ", v2: its 12 bytes) to any other value.
      const at = rng.int(v2 ? 12 : 6);
      header[at] = (header[at]! + 1 + rng.int(255)) & 0xff;
      return { family: "wrong signature", bytes: header, reason: "missing" };
    },
  },
  {
    weight: 6,
    build(rng) {
      const bytes = rng.bytes(rng.range(1, 64));
      // Anything whose first byte starts neither header is refused at once.
      if (bytes[0] === 0x50 || bytes[0] === 0x0d) bytes[0] = 0x16;
      return { family: "random bytes", bytes, reason: "missing" };
    },
  },
  {
    weight: 8,
    build(rng) {
      const header = proxyV2({ addresses: ipv4Addresses(ipv4(rng), ipv4(rng), 1, 2) });
      const kind = rng.int(4);
      if (kind === 0)
        header[12] = (rng.pick([0, 1, 3, 4, 15]) << 4) | 1; // version
      else if (kind === 1)
        header[12] = 0x20 | rng.range(2, 15); // command
      else if (kind === 2)
        header[13] = (rng.range(4, 15) << 4) | 1; // family
      else header[13] = rng.chance(0.5) ? 0x12 : 0x10 | rng.range(3, 15); // UDP, or an undefined transport
      return { family: "v2 version/command/family", bytes: header, reason: "malformed" };
    },
  },
  {
    weight: 6,
    build(rng) {
      const family = rng.pick([0x11, 0x21, 0x31]);
      const needed = family === 0x11 ? 12 : family === 0x21 ? 36 : 216;
      const length = rng.int(needed);
      const header = Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x21, family, length >> 8, length & 0xff])]);
      return {
        family: "v2 length below addresses",
        bytes: Buffer.concat([header, rng.bytes(length)]),
        reason: "malformed",
      };
    },
  },
  {
    weight: 6,
    build(rng) {
      const length = rng.range(4081, 65535);
      const header = Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x21, 0x11, length >> 8, length & 0xff])]);
      return { family: "v2 oversized", bytes: Buffer.concat([header, rng.bytes(rng.int(200))]), reason: "too_large" };
    },
  },
  {
    weight: 6,
    build(rng) {
      const value = rng.bytes(rng.int(20));
      const header = proxyV2({
        addresses: ipv4Addresses(ipv4(rng), ipv4(rng), 1, 2),
        tlvs: [{ type: rng.pick([1, 2, 5, 0x20, 0x30, 0xe0]), value }],
      });
      // The TLV claims more bytes than the header holds, or the area ends inside a TLV's type/length.
      if (rng.chance(0.5)) header.writeUInt16BE(value.length + rng.range(1, 500), 16 + 12 + 1);
      else {
        const cut = rng.range(1, 2);
        header.writeUInt16BE(12 + cut, 14);
        return { family: "v2 TLV", bytes: header.subarray(0, 16 + 12 + cut), reason: "malformed" };
      }
      return { family: "v2 TLV", bytes: header, reason: "malformed" };
    },
  },
  {
    weight: 3,
    build(rng) {
      const addresses = ipv4Addresses(ipv4(rng), ipv4(rng), 1, 2);
      const zeroed = proxyV2({ addresses, tlvs: [{ type: 3, value: Buffer.alloc(4) }] });
      const sum = Buffer.alloc(4);
      sum.writeUInt32BE((crc32c(zeroed) ^ (1 + rng.int(0xfffffffe))) >>> 0);
      return {
        family: "v2 checksum",
        bytes: proxyV2({ addresses, tlvs: [{ type: 3, value: sum }] }),
        reason: "checksum",
      };
    },
  },
  {
    weight: 10,
    build(rng) {
      const header = validHeader(rng);
      return {
        family: "truncated",
        bytes: header.subarray(0, rng.range(1, header.length - 1)),
        reason: "truncated",
        end: true,
      };
    },
  },
  {
    weight: 2,
    build(rng) {
      // One byte per tenth of the deadline: the shortest valid header (28 bytes) needs 2.8 deadlines.
      return { family: "slowloris", bytes: validHeader(rng), reason: "timeout", dripMs: TIMEOUT_MS / 10 };
    },
  },
  {
    weight: 3,
    build(rng) {
      return { family: "partial then silence", bytes: validHeader(rng).subarray(0, 5), reason: "timeout" };
    },
  },
  {
    weight: 3,
    build(rng) {
      return {
        family: "untrusted sender",
        bytes: validHeader(rng),
        reason: "untrusted",
        localAddress: UNTRUSTED_LOCAL,
      };
    },
  },
];
const totalWeight = generators.reduce((sum, generator) => sum + generator.weight, 0);

function generate(rng: Rng): Case {
  let pick = rng.int(totalWeight);
  for (const generator of generators) {
    if (pick < generator.weight) return generator.build(rng);
    pick -= generator.weight;
  }
  throw new Error("unreachable");
}

/** Sends a case and resolves when the server closes: our local port and the bytes the server sent back. */
function send(port: number, input: Case): Promise<{ localPort: number; answered: number; closedMs: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket: Socket = connect({
      port,
      host: "127.0.0.1",
      ...(input.localAddress === undefined ? {} : { localAddress: input.localAddress }),
    });
    let answered = 0;
    let drip: NodeJS.Timeout | undefined;
    socket.on("data", (chunk: Buffer) => {
      answered += chunk.length;
    });
    socket.on("error", () => undefined);
    const guard = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server did not close the connection in ${TIMEOUT_MS + 3_000} ms`));
    }, TIMEOUT_MS + 3_000);
    socket.once("connect", () => {
      const localPort = socket.localPort!;
      socket.once("close", () => {
        clearTimeout(guard);
        clearInterval(drip);
        resolve({ localPort, answered, closedMs: Date.now() - started });
      });
      if (input.dripMs === undefined) {
        socket.write(input.bytes);
        if (input.end === true) socket.end();
        return;
      }
      let offset = 0;
      drip = setInterval(() => {
        if (offset < input.bytes.length && !socket.destroyed) socket.write(input.bytes.subarray(offset, ++offset));
      }, input.dripMs);
    });
  });
}

describe("fuzz proxy headers", () => {
  let server: TestServer;
  let logs: LogCapture;
  let witness: Socket;
  let witnessText = "";
  let topic: string;

  before(async () => {
    logs = captureLogs("warn");
    server = await startTestServer(
      { trustedProxies: ["127.0.0.1"], proxyProtocol: true, proxyProtocolTimeoutMs: TIMEOUT_MS, heartbeatMs: 1_000 },
      { logger: logs.logger },
    );
    topic = `projects/${uniqueName("fuzz")}/topics/${uniqueName("pp")}`;
    await server.server.engine.createTopic({ name: topic });
    // Another client behind the same proxy: an SSE stream that must see every event while the fuzz runs.
    witness = await connectWithHeader(server.port, proxyV1("198.51.100.200", 4242));
    witness.on("data", (chunk: Buffer) => {
      witnessText += chunk.toString("utf8");
    });
    witness.write(`GET /v1/${topic}/events?from=earliest HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    await waitFor(() => witnessText.startsWith("HTTP/1.1 200"), { timeoutMs: 5_000, describe: () => witnessText });
  });
  after(async () => {
    witness?.destroy();
    await server?.close();
  });

  test("fuzz proxy headers - every malformed, truncated, oversized, slow or untrusted header closes its connection with its reason", async () => {
    const recorder = new FuzzRecorder("proxy-headers");
    const count = Math.max(1_000, fuzzCount(0.6));
    const sent: { index: number; input: Case; localPort: number; answered: number }[] = [];
    let published = 0;
    const publisher = setInterval(() => {
      published++;
      void server.server.engine.publish(topic, [
        { data: Buffer.from(`event ${published}`), attributes: {}, orderingKey: "" },
      ]);
    }, 50);
    try {
      await runPool(count, 48, async (index) => {
        const input = generate(recorder.input(index));
        try {
          const result = await send(server.port, input);
          sent.push({ index, input, localPort: result.localPort, answered: result.answered });
          if (input.reason !== "timeout" && result.closedMs >= TIMEOUT_MS) {
            recorder.fail(
              index,
              `${input.family}: closed only after ${result.closedMs} ms, by the ${TIMEOUT_MS} ms deadline`,
              describeInput(input.bytes),
            );
          }
        } catch (error) {
          recorder.fail(index, `${input.family}: ${(error as Error).message}`, describeInput(input.bytes));
        }
      });
    } finally {
      clearInterval(publisher);
    }
    // A local port is reused over 1,200 connections: per port, the k-th refusal logged is the k-th connection
    // that closed (the server logs before it closes, and one port holds one connection at a time).
    const sentOnPort = new Map<number, number>();
    const turn = sent.map((entry) => {
      const k = sentOnPort.get(entry.localPort) ?? 0;
      sentOnPort.set(entry.localPort, k + 1);
      return k;
    });
    let refusals = new Map<number, string[]>();
    await waitFor(
      () => {
        refusals = new Map();
        for (const line of logs.lines()) {
          if (line.msg === "connection closed: PROXY protocol header refused") {
            const port = Number(line.peerPort);
            refusals.set(port, [...(refusals.get(port) ?? []), String(line.reason)]);
          }
        }
        return sent.every((entry, at) => refusals.get(entry.localPort)?.[turn[at]!] !== undefined);
      },
      {
        timeoutMs: 5_000,
        describe: () =>
          `${sent.filter((entry, at) => refusals.get(entry.localPort)?.[turn[at]!] === undefined).length} without a log line`,
      },
    );
    for (const [at, { index, input, localPort, answered }] of sent.entries()) {
      const reason = refusals.get(localPort)?.[turn[at]!];
      recorder.outcome(`${input.family} -> ${reason}`);
      if (reason !== input.reason) {
        recorder.fail(index, `${input.family}: reason ${reason}, expected ${input.reason}`, describeInput(input.bytes));
      }
      if (answered > 0)
        recorder.fail(index, `${input.family}: the server answered ${answered} bytes`, describeInput(input.bytes));
    }
    recorder.finish();
    assert.ok(recorder.count >= 1_000, `only ${recorder.count} inputs`);

    // The other client saw every event, in order, and its stream is still open; the server still serves.
    await waitFor(() => (witnessText.match(/event: message/g) ?? []).length >= published, {
      timeoutMs: 5_000,
      describe: () => `${(witnessText.match(/event: message/g) ?? []).length} of ${published} events`,
    });
    const offsets = [...witnessText.matchAll(/^id: (\d+)$/gm)].map((match) => Number(match[1]));
    assert.deepEqual(
      offsets,
      offsets.map((_, i) => offsets[0]! + i),
      "offsets in order without gaps",
    );
    assert.equal(witness.destroyed, false);
    const probe = await connectWithHeader(server.port, proxyV1("198.51.100.201", 1));
    const answer = await new Promise<string>((resolve) => {
      let text = "";
      probe.on("data", (chunk: Buffer) => {
        text += chunk.toString();
      });
      probe.once("close", () => resolve(text));
      probe.write("GET /readyz HTTP/1.0\r\n\r\n");
    });
    assert.match(answer, /^HTTP\/1\.1 200/);
  });
});
