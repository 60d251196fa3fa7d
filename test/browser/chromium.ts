// Launches Debian's chromium through playwright-core for browser tests (never a downloaded browser).
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium } from "playwright-core";
import { peersRequired } from "../harness/start-test-server.js";

/** Debian's package; `.ci/run` installs it. Override with STREAMGATE_CHROMIUM. */
export const CHROMIUM_PATH = process.env.STREAMGATE_CHROMIUM ?? "/usr/bin/chromium";

/** Where screenshots go (gitignored; CI keeps it as an artifact). */
export const RESULTS_DIR = join(process.cwd(), "test-results");

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * The skip reason for `describe(…, { skip })` when chromium is missing; with CI=true a missing
 * browser is not skipped, so the launch fails the run loudly instead.
 */
export function chromiumMissing(): string | false {
  try {
    accessSync(CHROMIUM_PATH, constants.X_OK);
    return false;
  } catch {
    if (peersRequired()) return false;
    const reason = `chromium not found at ${CHROMIUM_PATH}: install it (apt-get install -y chromium) or set STREAMGATE_CHROMIUM`;
    console.warn(`\n*** SKIPPING browser tests: ${reason} ***\n`);
    return reason;
  }
}

/** A launched browser with a fresh profile; close() removes the profile. */
export interface TestBrowser {
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchChromium(): Promise<TestBrowser> {
  const profile = mkdtempSync(join(tmpdir(), "streamgate-chromium-"));
  // Playwright passes the fresh profile as --user-data-dir (it refuses that flag in `args`).
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    args: CHROMIUM_ARGS,
    viewport: { width: 1360, height: 900 },
    timeout: 30_000,
  });
  mkdirSync(RESULTS_DIR, { recursive: true });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
