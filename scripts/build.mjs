// Compiles src/ to dist/ (JavaScript + .d.ts: what `streamgate` runs and the npm package ships), bundles the browser
// client and stamps the build. In a checkout, bin/streamgate.mjs runs dist/ only while the stamp is newer than every
// file under src/, so an edit after a build falls back to the sources (through tsx) instead of running stale code.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { BROWSER_CLIENT_FILE, bundleBrowserClient } from "./browser-client.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);

execFileSync(process.execPath, [join(root, "scripts", "generate.mjs")], { stdio: "inherit" });
execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", join(root, "tsconfig.build.json")], {
  cwd: root,
  stdio: "inherit",
});
await bundleBrowserClient(root, { outFile: join(root, BROWSER_CLIENT_FILE) });
console.error(`build: dist/ compiled, browser client -> ${BROWSER_CLIENT_FILE}`);
writeFileSync(join(root, "dist", ".build-stamp"), `${new Date().toISOString()}\n`);
