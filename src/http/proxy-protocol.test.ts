// PROXY protocol parser: v1 and v2 headers as haproxy and nginx write them, TLVs, every rejection, and a seeded fuzz.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ipv4Addresses, proxyV2 as v2Header } from "../../test/harness/proxy-header.js";
import {
  crc32c,
  mayBeProxyHeader,
  PROXY_V2_MAX_BYTES,
  PROXY_V2_SIGNATURE,
  type ProxyHeaderRejection,
  type ProxyParseResult,
  parseProxyHeader,
} from "./proxy-protocol.js";
import { forwardedHops, parseTrustedProxies, verifiedChain } from "./trusted-proxies.js";

const header = (result: ProxyParseResult) => {
  assert.equal(result.kind, "header", JSON.stringify(result));
  return result as Extract<ProxyParseResult, { kind: "header" }>;
};
const rejection = (result: ProxyParseResult) => (result.kind === "rejected" ? result.reason : result.kind);

describe("proxy protocol v1", () => {
  test("proxy protocol - v1 TCP4 and TCP6 lines give the source, and the bytes after the line are the client's", () => {
    const bytes = Buffer.from("PROXY TCP4 198.51.100.7 10.0.0.1 51234 443\r\nGET / HTTP/1.1\r\n");
    const parsed = header(parseProxyHeader(bytes));
    assert.deepEqual(parsed.header.source, { address: "198.51.100.7", port: 51234 });
    assert.deepEqual(parsed.header.destination, { address: "10.0.0.1", port: 443 });
    assert.equal(bytes.subarray(parsed.length).toString(), "GET / HTTP/1.1\r\n");
    const six = header(parseProxyHeader(Buffer.from("PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n")));
    assert.equal(six.header.family, "tcp6");
    assert.equal(six.header.source?.address, "2001:db8::1");
  });

  test("proxy protocol - v1 UNKNOWN has no addresses (the peer's are used)", () => {
    const parsed = header(parseProxyHeader(Buffer.from("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n")));
    assert.equal(parsed.header.family, "unknown");
    assert.equal(parsed.header.source, undefined);
  });

  test("proxy protocol - v1 prefixes are incomplete; wrong fields, ports, addresses and long lines are refused", () => {
    for (const partial of ["P", "PROXY", "PROXY TCP4 1.2.3.4", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r"]) {
      assert.equal(parseProxyHeader(Buffer.from(partial)).kind, "incomplete", partial);
    }
    const cases: [string, ProxyHeaderRejection][] = [
      ["PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "malformed"],
      ["PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "malformed"],
      ["PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "malformed"],
      ["PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", "malformed"],
      ["PROXY TCP4 ::1 5.6.7.8 1 2\r\n", "malformed"],
      ["PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "malformed"],
      ["PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "malformed"],
      ["PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", "malformed"],
      ["PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "malformed"],
      ["PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", "malformed"],
      ["PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "malformed"],
      [`PROXY TCP4 ${"1".repeat(120)}`, "too_large"],
      ["GET / HTTP/1.1\r\n", "missing"],
      ["\x16\x03\x01", "missing"],
    ];
    for (const [input, reason] of cases) assert.equal(rejection(parseProxyHeader(Buffer.from(input))), reason, input);
  });
});

describe("proxy protocol v2", () => {
  test("proxy protocol - v2 PROXY TCP4 gives the source and keeps ALPN, authority, unique id and SSL TLVs", () => {
    const ssl = Buffer.concat([
      Buffer.from([0x07, 0, 0, 0, 0]),
      Buffer.from([0x21, 0, 7]),
      Buffer.from("TLSv1.3"),
      Buffer.from([0x22, 0, 6]),
      Buffer.from("client"),
    ]);
    const bytes = Buffer.concat([
      v2Header({
        addresses: ipv4Addresses("203.0.113.9", "10.1.2.3", 40000, 8443),
        tlvs: [
          { type: 0x01, value: Buffer.from("h2") },
          { type: 0x02, value: Buffer.from("api.example.com") },
          { type: 0x05, value: Buffer.from("abc123") },
          { type: 0x20, value: ssl },
          { type: 0x04, value: Buffer.alloc(3) },
        ],
      }),
      Buffer.from("PRI * HTTP/2.0"),
    ]);
    const parsed = header(parseProxyHeader(bytes));
    assert.deepEqual(parsed.header.source, { address: "203.0.113.9", port: 40000 });
    assert.equal(parsed.header.tlvs.alpn, "h2");
    assert.equal(parsed.header.tlvs.authority, "api.example.com");
    assert.equal(parsed.header.tlvs.uniqueId?.toString(), "abc123");
    assert.deepEqual(parsed.header.tlvs.ssl, {
      tls: true,
      clientCertificate: true,
      verified: true,
      version: "TLSv1.3",
      commonName: "client",
    });
    assert.equal(bytes.subarray(parsed.length).toString(), "PRI * HTTP/2.0");
  });

  test("proxy protocol - v2 TCP6 addresses print in their short form; LOCAL carries no source", () => {
    const addresses = Buffer.alloc(36);
    Buffer.from("20010db8000000000000000000000001", "hex").copy(addresses, 0);
    Buffer.from("20010db8000000000000000000000002", "hex").copy(addresses, 16);
    addresses.writeUInt16BE(1234, 32);
    const six = header(parseProxyHeader(v2Header({ family: 0x21, addresses })));
    assert.deepEqual(six.header.source, { address: "2001:db8::1", port: 1234 });
    const local = header(parseProxyHeader(v2Header({ command: 0, family: 0x00 })));
    assert.equal(local.header.command, "local");
    assert.equal(local.header.source, undefined);
  });

  test("proxy protocol - v2 CRC32C is checked: the right one passes, a wrong one is refused", () => {
    assert.equal(crc32c(Buffer.from("123456789")), 0xe3069283);
    const addresses = ipv4Addresses("192.0.2.1", "192.0.2.2", 1, 2);
    const zeroed = v2Header({ addresses, tlvs: [{ type: 0x03, value: Buffer.alloc(4) }] });
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc32c(zeroed));
    const good = v2Header({ addresses, tlvs: [{ type: 0x03, value: sum }] });
    assert.equal(parseProxyHeader(good).kind, "header");
    sum[0] = sum[0]! ^ 0xff;
    const bad = v2Header({ addresses, tlvs: [{ type: 0x03, value: sum }] });
    assert.equal(rejection(parseProxyHeader(bad)), "checksum");
  });

  test("proxy protocol - v2 wrong version, command, family, lengths and TLVs are refused; prefixes are incomplete", () => {
    const addresses = ipv4Addresses("192.0.2.1", "192.0.2.2", 1, 2);
    const good = v2Header({ addresses });
    for (let cut = 1; cut < good.length; cut++) {
      assert.equal(parseProxyHeader(good.subarray(0, cut)).kind, "incomplete", `cut at ${cut}`);
    }
    const patched = (offset: number, value: number) => {
      const copy = Buffer.from(good);
      copy[offset] = value;
      return copy;
    };
    assert.equal(rejection(parseProxyHeader(patched(12, 0x11))), "malformed"); // version 1
    assert.equal(rejection(parseProxyHeader(patched(12, 0x22))), "malformed"); // command 2
    assert.equal(rejection(parseProxyHeader(patched(13, 0x41))), "malformed"); // family 4
    assert.equal(rejection(parseProxyHeader(patched(13, 0x13))), "malformed"); // transport 3
    assert.equal(rejection(parseProxyHeader(patched(13, 0x12))), "malformed"); // UDP
    assert.equal(rejection(parseProxyHeader(patched(15, 4))), "malformed"); // shorter than the addresses
    const huge = Buffer.from(good);
    huge.writeUInt16BE(PROXY_V2_MAX_BYTES, 14);
    assert.equal(rejection(parseProxyHeader(huge)), "too_large");
    const overrun = v2Header({ addresses, tlvs: [{ type: 0x01, value: Buffer.from("h2") }] });
    overrun.writeUInt16BE(0xff, 16 + 12 + 1);
    assert.equal(rejection(parseProxyHeader(overrun)), "malformed");
    const cutTlv = Buffer.concat([v2Header({ addresses }), Buffer.from([0x01])]);
    cutTlv.writeUInt16BE(13, 14);
    assert.equal(rejection(parseProxyHeader(cutTlv)), "malformed");
    const wrongSignature = Buffer.from(good);
    wrongSignature[5] = 0x0a;
    assert.equal(rejection(parseProxyHeader(wrongSignature)), "missing");
  });

  test("proxy protocol - seeded fuzz: random and mutated headers never throw and always end in a verdict", () => {
    let seed = 0x5eed_1515;
    const random = () => {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
      return seed;
    };
    const seeds = [
      Buffer.from("PROXY TCP4 198.51.100.7 10.0.0.1 51234 443\r\n"),
      Buffer.from("PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n"),
      v2Header({
        addresses: ipv4Addresses("192.0.2.1", "192.0.2.2", 1, 2),
        tlvs: [{ type: 1, value: Buffer.from("h2") }],
      }),
      v2Header({ family: 0x21, addresses: Buffer.alloc(36) }),
    ];
    const verdicts = new Map<string, number>();
    for (let i = 0; i < 20_000; i++) {
      const input = Buffer.from(seeds[random() % seeds.length]!);
      for (let flips = 1 + (random() % 4); flips > 0; flips--) input[random() % input.length] = random() & 0xff;
      const cut = input.subarray(0, random() % 3 === 0 ? random() % (input.length + 1) : input.length);
      const result = parseProxyHeader(cut);
      const verdict = rejection(result);
      verdicts.set(verdict, (verdicts.get(verdict) ?? 0) + 1);
      if (result.kind === "header") {
        assert.ok(result.length <= cut.length);
        if (result.header.source !== undefined) {
          assert.ok(result.header.source.port >= 0 && result.header.source.port <= 65535);
        }
      }
    }
    for (const expected of ["header", "incomplete", "malformed", "missing"]) {
      assert.ok((verdicts.get(expected) ?? 0) > 0, `no ${expected} verdict in ${JSON.stringify([...verdicts])}`);
    }
  });

  test("proxy protocol - mayBeProxyHeader tells a possible header from TLS, HTTP/1.1 and HTTP/2 at the first byte that differs", () => {
    assert.equal(mayBeProxyHeader(Buffer.from("PRO")), true);
    assert.equal(mayBeProxyHeader(Buffer.from("POST")), false);
    assert.equal(mayBeProxyHeader(Buffer.from("PRI * HTTP/2.0")), false);
    assert.equal(mayBeProxyHeader(Buffer.from([0x16, 0x03])), false);
    assert.equal(mayBeProxyHeader(PROXY_V2_SIGNATURE.subarray(0, 5)), true);
  });
});

describe("trusted proxies", () => {
  const trusted = parseTrustedProxies(["10.0.0.0/8", "127.0.0.1", "fd00::/8"]);

  test("trusted proxies - ranges match IPv4, IPv4-mapped IPv6 and IPv6; bad entries name themselves", () => {
    assert.equal(trusted.trusts("10.200.1.1"), true);
    assert.equal(trusted.trusts("::ffff:10.0.0.1"), true);
    assert.equal(trusted.trusts("127.0.0.2"), false);
    assert.equal(trusted.trusts("fd12::1"), true);
    assert.equal(trusted.trusts("not an address"), false);
    for (const bad of ["10.0.0.0/33", "example.com", "10.0.0.0/8/1", "::/129", "1.2.3.4/x"]) {
      assert.throws(() => parseTrustedProxies([bad]), new RegExp(bad.replace(/[./]/g, "\\$&")));
    }
  });

  test("trusted proxies - the client is the right-most untrusted hop; an untrusted peer's headers are ignored", () => {
    const xff = (value: string) => ({ "x-forwarded-for": value });
    assert.deepEqual(verifiedChain("10.0.0.5", xff("6.6.6.6, 203.0.113.1, 10.0.0.9"), trusted), {
      chain: ["203.0.113.1", "10.0.0.9", "10.0.0.5"],
      fromHeaders: true,
    });
    assert.deepEqual(verifiedChain("198.51.100.3", xff("1.1.1.1"), trusted), {
      chain: ["198.51.100.3"],
      fromHeaders: false,
    });
    // Every hop trusted: the left-most one is the best that is known.
    assert.equal(verifiedChain("10.0.0.5", xff("10.0.0.6"), trusted).chain[0], "10.0.0.6");
    // Garbage stops the walk at the proxy that wrote it.
    assert.equal(verifiedChain("10.0.0.5", xff("1.1.1.1, unknown"), trusted).chain[0], "10.0.0.5");
  });

  test("trusted proxies - Forwarded for= nodes (quoted, bracketed, with ports) count when there is no X-Forwarded-For", () => {
    const headers = { forwarded: 'for=192.0.2.60;proto=http, for="[2001:db8:cafe::17]:4711", for=10.0.0.9:80' };
    assert.deepEqual(forwardedHops(headers), ["192.0.2.60", "2001:db8:cafe::17", "10.0.0.9"]);
    assert.equal(verifiedChain("127.0.0.1", headers, trusted).chain[0], "2001:db8:cafe::17");
    // A proxy that keeps X-Forwarded-For passes a client's forged Forwarded through: X-Forwarded-For wins.
    const forged = { forwarded: "for=6.6.6.6", "x-forwarded-for": "192.0.2.61" };
    assert.equal(verifiedChain("127.0.0.1", forged, trusted).chain[0], "192.0.2.61");
  });
});
