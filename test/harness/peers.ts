// Whether a test whose real peer (nats-server, nginx, chromium, ...) is missing fails or skips.

/** Whether a missing real peer must fail the run (CI=true) rather than skip. */
export function peersRequired(): boolean {
  return process.env.CI === "true" || process.env.CI === "1";
}
