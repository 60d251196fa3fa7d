// Builds PROXY protocol v1/v2 headers (as haproxy and nginx send them) for tests, and opens connections that start with one.
import { connect, isIPv4, type Socket } from "node:net";
import { PROXY_V2_SIGNATURE } from "../../src/http/proxy-protocol.js";

/** `PROXY TCP4|TCP6 <source> <destination> <sourcePort> <destinationPort>\r\n`. */
export function proxyV1(source: string, sourcePort: number, destination = "127.0.0.1", destinationPort = 8080): Buffer {
  const family = isIPv4(source) ? "TCP4" : "TCP6";
  return Buffer.from(`PROXY ${family} ${source} ${destination} ${sourcePort} ${destinationPort}\r\n`);
}

/** A v2 header: command (0 LOCAL, 1 PROXY), family byte (0x11 TCP4, 0x21 TCP6), address block and TLVs. */
export function proxyV2(options: {
  command?: number;
  family?: number;
  addresses?: Buffer;
  tlvs?: { type: number; value: Buffer }[];
}): Buffer {
  const tlvs = Buffer.concat(
    (options.tlvs ?? []).map(({ type, value }) => {
      const head = Buffer.alloc(3);
      head[0] = type;
      head.writeUInt16BE(value.length, 1);
      return Buffer.concat([head, value]);
    }),
  );
  const body = Buffer.concat([options.addresses ?? Buffer.alloc(0), tlvs]);
  const fixed = Buffer.alloc(4);
  fixed[0] = 0x20 | (options.command ?? 1);
  fixed[1] = options.family ?? 0x11;
  fixed.writeUInt16BE(body.length, 2);
  return Buffer.concat([PROXY_V2_SIGNATURE, fixed, body]);
}

/** The 12-byte TCP4 address block of a v2 header. */
export function ipv4Addresses(
  source: string,
  destination: string,
  sourcePort: number,
  destinationPort: number,
): Buffer {
  const out = Buffer.alloc(12);
  source.split(".").forEach((part, i) => {
    out[i] = Number(part);
  });
  destination.split(".").forEach((part, i) => {
    out[4 + i] = Number(part);
  });
  out.writeUInt16BE(sourcePort, 8);
  out.writeUInt16BE(destinationPort, 10);
  return out;
}

/** A v2 PROXY TCP4 header for `source:sourcePort`. */
export function proxyV2For(source: string, sourcePort: number, tlvs: { type: number; value: Buffer }[] = []): Buffer {
  return proxyV2({ addresses: ipv4Addresses(source, "127.0.0.1", sourcePort, 8080), tlvs });
}

/** A TCP connection to 127.0.0.1:`port` whose first bytes are `header`. */
export function connectWithHeader(port: number, header: Buffer, localAddress?: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: "127.0.0.1", ...(localAddress === undefined ? {} : { localAddress }) });
    socket.once("error", reject);
    socket.once("connect", () => {
      socket.off("error", reject);
      socket.write(header);
      resolve(socket);
    });
  });
}
