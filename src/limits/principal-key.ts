// The key limits count against: the current principal's id; requests without one (internal work) are not limited.
import { currentPrincipal, type Principal } from "../auth/principal-context.js";

/** `::ffff:127.0.0.1` → `127.0.0.1`, so one client has one key whichever socket family accepted it. */
export function normalizeAddress(address: string | undefined): string {
  if (address === undefined || address === "") return "unknown";
  return address.startsWith("::ffff:") ? address.slice(7) : address;
}

/**
 * The key the per-IP connection limit counts against: the IPv4 address, or the /64 prefix of an IPv6
 * one, since a single IPv6 host usually holds a whole /64 and could rotate through it.
 */
export function connectionLimitKey(address: string | undefined): string {
  const normalized = normalizeAddress(address);
  if (!normalized.includes(":")) return normalized;
  const [head = "", tail] = normalized.split("%")[0]!.split("::");
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups =
    tail === undefined
      ? headGroups
      : [...headGroups, ...Array(8 - headGroups.length - tailGroups.length).fill("0"), ...tailGroups];
  return `${groups
    .slice(0, 4)
    .map((group) => Number.parseInt(group, 16).toString(16))
    .join(":")}::/64`;
}

/** The principal of a request whose caller is not authenticated: one per client address. */
export function anonymousPrincipal(remoteAddress: string | undefined): Principal {
  const address = normalizeAddress(remoteAddress);
  return { id: `anonymous@${address}`, authenticated: false, remoteAddress: address };
}

/** The limits key of the current request, or undefined outside a request (never limited). */
export function currentLimitKey(): string | undefined {
  return currentPrincipal()?.id;
}
