// The key limits count against: the current principal's id; requests without one (internal work) are not limited.
import { currentPrincipal, type Principal } from "../auth/principal-context.js";

/** `::ffff:127.0.0.1` → `127.0.0.1`, so one client has one key whichever socket family accepted it. */
export function normalizeAddress(address: string | undefined): string {
  if (address === undefined || address === "") return "unknown";
  return address.startsWith("::ffff:") ? address.slice(7) : address;
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
