// PROXY protocol v1 (text) and v2 (binary) header parser: pure, incremental, no sockets. Written here (no
// npm parser is both maintained and strict about truncation and lengths) and fuzzed in proxy-protocol.test.ts
// and test/fuzz/proxy-headers.test.ts. Spec: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
import { isIPv4, isIPv6 } from "node:net";

/** The v2 signature: 12 bytes no HTTP, TLS or v1 header starts with. */
export const PROXY_V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from("PROXY ");
/** A v1 line is at most 107 bytes, CRLF included (spec 2.1). */
export const PROXY_V1_MAX_BYTES = 107;
/**
 * Largest v2 header accepted (16-byte fixed part, addresses and TLVs). Default 4 KiB: the addresses take at most
 * 232 bytes and the TLVs proxies send (ALPN, authority, SSL, unique id ≤ 128) a few hundred more; the spec's
 * 64 KiB ceiling would let every pending connection hold that much.
 */
export const PROXY_V2_MAX_BYTES = 4096;

/** Why a header was refused; the `reason` label of `streamgate_proxy_protocol_rejected_total`. */
export const ProxyHeaderRejection = {
  /** A trusted peer sent no PROXY header (its first bytes are something else). */
  missing: "missing",
  /** A header that breaks the grammar: signature, version, command, family, addresses, ports, TLV lengths. */
  malformed: "malformed",
  /** A v2 header longer than PROXY_V2_MAX_BYTES or a v1 line without CRLF within 107 bytes. */
  tooLarge: "too_large",
  /** The peer closed the connection in the middle of the header. */
  truncated: "truncated",
  /** The whole header did not arrive within the timeout (slowloris). */
  timeout: "timeout",
  /** A PROXY header from a peer outside the trusted ranges. */
  untrusted: "untrusted",
  /** A v2 header whose CRC32C TLV does not match. */
  checksum: "checksum",
} as const;
export type ProxyHeaderRejection = (typeof ProxyHeaderRejection)[keyof typeof ProxyHeaderRejection];

/** An endpoint the header names. */
export interface ProxyEndpoint {
  address: string;
  port: number;
}

/** The v2 SSL TLV (PP2_TYPE_SSL) and its sub-TLVs, as the proxy saw the client's TLS. */
export interface ProxySslInfo {
  /** PP2_CLIENT_SSL: the client connected over TLS. */
  tls: boolean;
  /** PP2_CLIENT_CERT_CONN / _SESS: the client presented a certificate (on this connection / its session). */
  clientCertificate: boolean;
  /** The proxy verified that certificate (verify field is 0). */
  verified: boolean;
  version?: string;
  commonName?: string;
  cipher?: string;
  signatureAlgorithm?: string;
  keyAlgorithm?: string;
}

/** The TLVs kept from a v2 header; others are skipped. */
export interface ProxyTlvs {
  alpn?: string;
  authority?: string;
  uniqueId?: Buffer;
  ssl?: ProxySslInfo;
  netns?: string;
}

/** A parsed header. `source`/`destination` are absent for LOCAL, UNKNOWN and UNSPEC/UNIX ones (use the TCP peer). */
export interface ProxyHeader {
  version: 1 | 2;
  /** "local": the proxy's own connection (health check); "proxy": relayed for `source`. */
  command: "local" | "proxy";
  family: "tcp4" | "tcp6" | "unix" | "unknown";
  source?: ProxyEndpoint;
  destination?: ProxyEndpoint;
  tlvs: ProxyTlvs;
}

export type ProxyParseResult =
  | { kind: "incomplete" }
  | { kind: "rejected"; reason: ProxyHeaderRejection; message: string }
  | { kind: "header"; header: ProxyHeader /** Bytes the header took; what follows is the client's. */; length: number };

const INCOMPLETE = { kind: "incomplete" } as const;
const reject = (reason: ProxyHeaderRejection, message: string): ProxyParseResult => ({
  kind: "rejected",
  reason,
  message,
});

/** Whether `bytes` (the first ones a peer sent) begin, or may still begin, a v1 or v2 header. */
export function mayBeProxyHeader(bytes: Uint8Array): boolean {
  return startsLike(bytes, V1_PREFIX) || startsLike(bytes, PROXY_V2_SIGNATURE);
}

function startsLike(bytes: Uint8Array, prefix: Buffer): boolean {
  const length = Math.min(bytes.length, prefix.length);
  for (let i = 0; i < length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

/** Parses the header at the start of `bytes`; "incomplete" means more bytes are needed. */
export function parseProxyHeader(bytes: Buffer): ProxyParseResult {
  if (bytes.length === 0) return INCOMPLETE;
  if (startsLike(bytes, V1_PREFIX)) return bytes.length < V1_PREFIX.length ? INCOMPLETE : parseV1(bytes);
  if (startsLike(bytes, PROXY_V2_SIGNATURE)) {
    return bytes.length < PROXY_V2_SIGNATURE.length ? INCOMPLETE : parseV2(bytes);
  }
  return reject(ProxyHeaderRejection.missing, "the connection does not start with a PROXY protocol v1 or v2 header");
}

const PORT = /^(0|[1-9][0-9]{0,4})$/;

function parseV1(bytes: Buffer): ProxyParseResult {
  const end = bytes.indexOf("\r\n", 0, "latin1");
  if (end === -1) {
    if (bytes.length >= PROXY_V1_MAX_BYTES) {
      return reject(ProxyHeaderRejection.tooLarge, `PROXY v1 line without CRLF in ${PROXY_V1_MAX_BYTES} bytes`);
    }
    // A bare LF or a byte no v1 line holds is malformed now, not after the timeout.
    for (let i = V1_PREFIX.length; i < bytes.length; i++) {
      const byte = bytes[i]!;
      if (byte !== 0x0d && (byte < 0x20 || byte > 0x7e)) {
        return reject(ProxyHeaderRejection.malformed, "PROXY v1 line holds a byte outside printable ASCII");
      }
    }
    return INCOMPLETE;
  }
  if (end + 2 > PROXY_V1_MAX_BYTES) {
    return reject(ProxyHeaderRejection.tooLarge, `PROXY v1 line longer than ${PROXY_V1_MAX_BYTES} bytes`);
  }
  const line = bytes.toString("latin1", V1_PREFIX.length, end);
  const length = end + 2;
  if (line === "UNKNOWN" || line.startsWith("UNKNOWN ")) {
    return { kind: "header", length, header: { version: 1, command: "proxy", family: "unknown", tlvs: {} } };
  }
  const fields = line.split(" ");
  if (fields.length !== 5) {
    return reject(ProxyHeaderRejection.malformed, "PROXY v1 line needs: PROXY TCP4|TCP6 <src> <dst> <sport> <dport>");
  }
  const [protocol, sourceAddress, destinationAddress, sourcePort, destinationPort] = fields as [
    string,
    string,
    string,
    string,
    string,
  ];
  const valid = protocol === "TCP4" ? isIPv4 : protocol === "TCP6" ? isIPv6 : null;
  if (valid === null) return reject(ProxyHeaderRejection.malformed, "PROXY v1 protocol must be TCP4, TCP6 or UNKNOWN");
  if (!valid(sourceAddress) || !valid(destinationAddress)) {
    return reject(ProxyHeaderRejection.malformed, `PROXY v1 addresses are not ${protocol} addresses`);
  }
  const ports = [sourcePort, destinationPort].map((port) => (PORT.test(port) ? Number(port) : -1));
  if (ports.some((port) => port < 0 || port > 65535)) {
    return reject(ProxyHeaderRejection.malformed, "PROXY v1 ports must be decimal 0..65535");
  }
  return {
    kind: "header",
    length,
    header: {
      version: 1,
      command: "proxy",
      family: protocol === "TCP4" ? "tcp4" : "tcp6",
      source: { address: sourceAddress, port: ports[0]! },
      destination: { address: destinationAddress, port: ports[1]! },
      tlvs: {},
    },
  };
}

const ADDRESS_BYTES = { 1: 12, 2: 36, 3: 216 } as const;

function parseV2(bytes: Buffer): ProxyParseResult {
  if (bytes.length < 16) return INCOMPLETE;
  const versionCommand = bytes[12]!;
  if (versionCommand >> 4 !== 2) return reject(ProxyHeaderRejection.malformed, "PROXY v2 version nibble is not 2");
  const commandBits = versionCommand & 0x0f;
  if (commandBits > 1) return reject(ProxyHeaderRejection.malformed, "PROXY v2 command is neither LOCAL nor PROXY");
  const familyBits = bytes[13]! >> 4;
  const transportBits = bytes[13]! & 0x0f;
  if (familyBits > 3 || transportBits > 2) {
    return reject(ProxyHeaderRejection.malformed, "PROXY v2 address family or transport is not defined");
  }
  const bodyLength = bytes.readUInt16BE(14);
  const total = 16 + bodyLength;
  if (total > PROXY_V2_MAX_BYTES) {
    return reject(ProxyHeaderRejection.tooLarge, `PROXY v2 header of ${total} bytes (at most ${PROXY_V2_MAX_BYTES})`);
  }
  if (bytes.length < total) return INCOMPLETE;
  const command = commandBits === 0 ? "local" : "proxy";
  const addressBytes = familyBits === 0 ? 0 : ADDRESS_BYTES[familyBits as 1 | 2 | 3];
  if (bodyLength < addressBytes) {
    return reject(ProxyHeaderRejection.malformed, `PROXY v2 length ${bodyLength} is shorter than its addresses`);
  }
  // A datagram (UDP) header on a TCP listener describes another connection than this one.
  if (command === "proxy" && transportBits === 2) {
    return reject(ProxyHeaderRejection.malformed, "PROXY v2 header is for a datagram (UDP) connection");
  }
  const body = bytes.subarray(16, total);
  const tlvs = parseTlvs(body.subarray(addressBytes), bytes.subarray(0, total));
  if ("reason" in tlvs) return reject(tlvs.reason, tlvs.message);
  const header: ProxyHeader = { version: 2, command, family: "unknown", tlvs };
  // LOCAL: the proxy's own connection; its addresses (if any) are ignored, as the spec asks.
  if (command === "proxy" && transportBits === 1 && (familyBits === 1 || familyBits === 2)) {
    header.family = familyBits === 1 ? "tcp4" : "tcp6";
    const half = familyBits === 1 ? 4 : 16;
    header.source = { address: formatAddress(body.subarray(0, half)), port: body.readUInt16BE(2 * half) };
    header.destination = {
      address: formatAddress(body.subarray(half, 2 * half)),
      port: body.readUInt16BE(2 * half + 2),
    };
  } else if (familyBits === 3) header.family = "unix";
  return { kind: "header", header, length: total };
}

function formatAddress(raw: Buffer): string {
  if (raw.length === 4) return `${raw[0]}.${raw[1]}.${raw[2]}.${raw[3]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(raw.readUInt16BE(i).toString(16));
  // Shorten the longest run of zero groups (RFC 5952), so the address reads as other tools print it.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (bestStart === -1) return groups.join(":");
  return `${groups.slice(0, bestStart).join(":")}::${groups.slice(bestStart + bestLength).join(":")}`;
}

const TLV = { alpn: 0x01, authority: 0x02, crc32c: 0x03, uniqueId: 0x05, ssl: 0x20, netns: 0x30 } as const;
const SSL_SUB = {
  version: 0x21,
  commonName: 0x22,
  cipher: 0x23,
  signatureAlgorithm: 0x24,
  keyAlgorithm: 0x25,
} as const;

type TlvFailure = { reason: ProxyHeaderRejection; message: string };

function* walkTlvs(area: Buffer): Generator<{ type: number; value: Buffer; offset: number }, TlvFailure | null> {
  let offset = 0;
  while (offset < area.length) {
    if (area.length - offset < 3) return { reason: "malformed", message: "PROXY v2 TLV cut in its type/length" };
    const type = area[offset]!;
    const length = area.readUInt16BE(offset + 1);
    if (offset + 3 + length > area.length) {
      return { reason: "malformed", message: `PROXY v2 TLV 0x${type.toString(16)} overruns the header` };
    }
    yield { type, value: area.subarray(offset + 3, offset + 3 + length), offset: offset + 3 };
    offset += 3 + length;
  }
  return null;
}

function parseTlvs(area: Buffer, whole: Buffer): ProxyTlvs | TlvFailure {
  const tlvs: ProxyTlvs = {};
  const walker = walkTlvs(area);
  for (let step = walker.next(); ; step = walker.next()) {
    if (step.done === true) {
      if (step.value !== null) return step.value;
      break;
    }
    const { type, value, offset } = step.value;
    if (type === TLV.alpn) tlvs.alpn = value.toString("latin1");
    else if (type === TLV.authority) tlvs.authority = value.toString("utf8");
    else if (type === TLV.uniqueId) {
      if (value.length > 128) return { reason: "malformed", message: "PROXY v2 unique id longer than 128 bytes" };
      tlvs.uniqueId = Buffer.from(value);
    } else if (type === TLV.netns) tlvs.netns = value.toString("latin1");
    else if (type === TLV.crc32c) {
      if (value.length !== 4) return { reason: "malformed", message: "PROXY v2 CRC32C TLV is not 4 bytes" };
      // The checksum covers the whole header with its own value zeroed.
      const copy = Buffer.from(whole);
      copy.fill(0, whole.length - area.length + offset, whole.length - area.length + offset + 4);
      if (crc32c(copy) !== value.readUInt32BE(0)) return { reason: "checksum", message: "PROXY v2 CRC32C mismatch" };
    } else if (type === TLV.ssl) {
      const ssl = parseSsl(value);
      if ("reason" in ssl) return ssl;
      tlvs.ssl = ssl;
    }
  }
  return tlvs;
}

function parseSsl(value: Buffer): ProxySslInfo | TlvFailure {
  if (value.length < 5) return { reason: "malformed", message: "PROXY v2 SSL TLV shorter than 5 bytes" };
  const client = value[0]!;
  const ssl: ProxySslInfo = {
    tls: (client & 0x01) !== 0,
    clientCertificate: (client & 0x06) !== 0,
    verified: value.readUInt32BE(1) === 0,
  };
  const walker = walkTlvs(value.subarray(5));
  for (let step = walker.next(); ; step = walker.next()) {
    if (step.done === true) return step.value ?? ssl;
    const text = step.value.value.toString("utf8");
    if (step.value.type === SSL_SUB.version) ssl.version = text;
    else if (step.value.type === SSL_SUB.commonName) ssl.commonName = text;
    else if (step.value.type === SSL_SUB.cipher) ssl.cipher = text;
    else if (step.value.type === SSL_SUB.signatureAlgorithm) ssl.signatureAlgorithm = text;
    else if (step.value.type === SSL_SUB.keyAlgorithm) ssl.keyAlgorithm = text;
  }
}

let crcTable: Uint32Array | null = null;

/** CRC-32C (Castagnoli), as the v2 PP2_TYPE_CRC32C TLV carries it. */
export function crc32c(bytes: Uint8Array): number {
  if (crcTable === null) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const byte of bytes) crc = crcTable[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
