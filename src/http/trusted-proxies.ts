// Trusted proxy ranges (CIDR list) and the client address behind them: PROXY header, else Forwarded / X-Forwarded-For (right-most untrusted hop), else the TCP peer.
import { BlockList, isIP } from "node:net";

/** A parsed `--trusted-proxies` list. */
export interface TrustedProxies {
  /** The ranges as given (for logs and errors). */
  readonly ranges: readonly string[];
  /** Whether `address` (IPv4, IPv6 or IPv4-mapped IPv6) is inside one of the ranges. */
  trusts(address: string | undefined): boolean;
}

/** `::ffff:10.0.0.1` → `10.0.0.1`, so an IPv4 range matches an IPv4 client on a dual-stack socket. */
export function plainAddress(address: string): string {
  return address.toLowerCase().startsWith("::ffff:") && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/**
 * Parses CIDR ranges or single addresses (`10.0.0.0/8`, `127.0.0.1`, `fd00::/8`).
 * @throws Error naming the entry that is not one.
 */
export function parseTrustedProxies(ranges: readonly string[]): TrustedProxies {
  const list = new BlockList();
  for (const raw of ranges) {
    const entry = raw.trim();
    const [address = "", prefixText, extra] = entry.split("/");
    const family = isIP(address);
    const prefix = prefixText === undefined ? (family === 6 ? 128 : 32) : Number(prefixText);
    const valid =
      family !== 0 &&
      extra === undefined &&
      (prefixText === undefined || /^[0-9]{1,3}$/.test(prefixText)) &&
      prefix <= (family === 6 ? 128 : 32);
    if (!valid) throw new Error(`"${entry}" is not an IP address or CIDR range (e.g. 10.0.0.0/8, 127.0.0.1, fd00::/8)`);
    list.addSubnet(address, prefix, family === 6 ? "ipv6" : "ipv4");
  }
  const kept = ranges.map((range) => range.trim());
  return {
    ranges: kept,
    trusts(address) {
      if (address === undefined || kept.length === 0) return false;
      const plain = plainAddress(address);
      const family = isIP(plain);
      return family !== 0 && list.check(plain, family === 6 ? "ipv6" : "ipv4");
    },
  };
}

/** Trusts nothing: forwarding headers are ignored and PROXY headers refused. */
export const NO_TRUSTED_PROXIES: TrustedProxies = parseTrustedProxies([]);

type Headers = Record<string, string | string[] | undefined>;

const joined = (value: string | string[] | undefined): string | undefined =>
  value === undefined ? undefined : Array.isArray(value) ? value.join(",") : value;

/** The `for=` nodes of a Forwarded header (RFC 7239), oldest first; a node that is not an IP is kept as given. */
export function forwardedForNodes(header: string): string[] {
  const nodes: string[] = [];
  for (const element of header.split(",")) {
    for (const pair of element.split(";")) {
      const equals = pair.indexOf("=");
      if (equals === -1 || pair.slice(0, equals).trim().toLowerCase() !== "for") continue;
      nodes.push(
        nodeAddress(
          pair
            .slice(equals + 1)
            .trim()
            .replace(/^"(.*)"$/, "$1"),
        ),
      );
    }
  }
  return nodes;
}

/** `[2001:db8::1]:4711` → `2001:db8::1`, `192.0.2.1:80` → `192.0.2.1`; anything else unchanged. */
function nodeAddress(node: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(node);
  if (bracketed !== null) return bracketed[1]!;
  const withPort = /^([0-9.]+):\d+$/.exec(node);
  return withPort !== null ? withPort[1]! : node;
}

/**
 * The hops a request's forwarding headers name, oldest (the client) first: `X-Forwarded-For`'s entries when that
 * header is present, else `Forwarded`'s `for=` nodes. X-Forwarded-For first because it is the one every common
 * proxy maintains (nginx, haproxy, Google's and AWS's load balancers, ingress-nginx; Cloud Run sets both): a
 * client's forged `Forwarded` passed through untouched by such a proxy must not win over the proxy's own header.
 */
export function forwardedHops(headers: Headers): string[] {
  const xff = joined(headers["x-forwarded-for"]);
  if (xff !== undefined && xff.trim() !== "") {
    return xff
      .split(",")
      .map((hop) => nodeAddress(hop.trim()))
      .filter((hop) => hop !== "");
  }
  const forwarded = joined(headers.forwarded);
  return forwarded === undefined ? [] : forwardedForNodes(forwarded);
}

/** Where a request's client address came from; a bounded label for metrics. */
export type ClientAddressSource = "proxy_protocol" | "forwarded" | "peer";

/**
 * The verified chain from the client to this server: starting at `nearest` (the PROXY header's source, else the
 * TCP peer), while the current hop is trusted, step one hop left in the forwarding headers. The first untrusted
 * hop is the client; hops left of it were written by the client and are dropped. Returns the chain client-first
 * (its first entry is the client address) and whether any hop came from the headers.
 */
export function verifiedChain(
  nearest: string,
  headers: Headers,
  trusted: TrustedProxies,
): { chain: string[]; fromHeaders: boolean } {
  const chain = [plainAddress(nearest)];
  if (!trusted.trusts(nearest)) return { chain, fromHeaders: false };
  const hops = forwardedHops(headers);
  let fromHeaders = false;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!;
    // "unknown", an obfuscated node or garbage: the chain cannot be followed past the proxy that wrote it.
    if (isIP(hop) === 0) break;
    chain.unshift(plainAddress(hop));
    fromHeaders = true;
    if (!trusted.trusts(hop)) break;
  }
  return { chain, fromHeaders };
}
