// The browser build of `streamgate/client` the dashboard serves (its app.js imports it): the built file, or from sources.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createStaticFile, type StaticFile } from "./static-files.js";

/** URL path of the browser build of `streamgate/client` (one ES module): the dashboard's live tail imports it. */
export const DASHBOARD_CLIENT_PATH = "/streamgate-client.browser.js";

/** The package root: this module is src/transports/dashboard/ in a checkout, dist/transports/dashboard/ when built. */
const PACKAGE_ROOT = new URL("../../../", import.meta.url);
/** Written by scripts/build.mjs (scripts/browser-client.mjs' BROWSER_CLIENT_FILE); `exports["./client"].browser`. */
const BUILT_FILE = new URL("dist/client/streamgate-client.browser.js", PACKAGE_ROOT);
const JAVASCRIPT = "text/javascript; charset=utf-8";

/**
 * Where the bundle comes from. Decided here, not in a test harness, so the dashboard works wherever the server runs:
 * - compiled code (an installed package, a checkout's `npm run build`): the file the build wrote, read once now; a
 *   build without it is broken, so this throws and the server does not start with a dashboard that cannot tail.
 * - sources (a checkout through tsx): bundled in memory from src/client on first request, by the build's own
 *   scripts/browser-client.mjs, so it is never stale or missing; its esbuild is there because tsx depends on it.
 * Resolves the file to serve; a failed bundle from sources is retried on the next request.
 */
export function createClientBundleLoader(): () => Promise<StaticFile> {
  if (!import.meta.url.endsWith(".ts")) {
    let body: Buffer;
    try {
      body = readFileSync(BUILT_FILE);
    } catch (error) {
      throw new Error(`dashboard: ${fileURLToPath(BUILT_FILE)} is missing: run \`npm run build\``, { cause: error });
    }
    const file = createStaticFile(body, JAVASCRIPT);
    return () => Promise.resolve(file);
  }
  let pending: Promise<StaticFile> | undefined;
  return () => {
    pending ??= bundleFromSources().catch((error: unknown) => {
      pending = undefined;
      throw error;
    });
    return pending;
  };
}

async function bundleFromSources(): Promise<StaticFile> {
  const script = new URL("scripts/browser-client.mjs", PACKAGE_ROOT).href;
  const { bundleBrowserClient } = (await import(script)) as typeof import("../../../scripts/browser-client.mjs");
  const text = await bundleBrowserClient(fileURLToPath(PACKAGE_ROOT));
  return createStaticFile(Buffer.from(text), JAVASCRIPT);
}
