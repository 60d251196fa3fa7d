// Compiles src/ to dist/ (JavaScript + .d.ts: what `streamgate` runs and the npm package ships), bundles the browser
// client, removes outputs whose source is gone, and stamps the build. In a checkout, bin/streamgate.mjs runs dist/
// only while the stamp is newer than every file under src/, so an edit after a build falls back to the sources
// (through tsx) instead of running stale code.
import { execFileSync } from "node:child_process";
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { BROWSER_CLIENT_FILE, bundleBrowserClient } from "./browser-client.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
const require = createRequire(import.meta.url);
const tsc = (...args) =>
  execFileSync(
    process.execPath,
    [require.resolve("typescript/bin/tsc"), "-p", join(root, "tsconfig.build.json"), ...args],
    {
      cwd: root,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    },
  );

// A first build takes tens of seconds on a small machine: say so before it starts (later builds are incremental).
console.error("build: compiling src/ to dist/ (the first build takes a while; later ones are incremental) …");
execFileSync(process.execPath, [join(root, "scripts", "generate.mjs")], { stdio: "inherit" });
try {
  tsc();
} catch (error) {
  process.stderr.write(error.stdout ?? "");
  process.exit(1);
}
await bundleBrowserClient(root, { outFile: join(root, BROWSER_CLIENT_FILE) });
pruneStaleOutputs();
writeFileSync(join(dist, ".build-stamp"), `${new Date().toISOString()}\n`);
console.error(`build: dist/ compiled, browser client -> ${BROWSER_CLIENT_FILE}`);

/**
 * Removes files of dist/ that the current program does not emit (a deleted or newly excluded source), so nothing
 * stale is packed. The incremental compile leaves them; cleaning dist/ first would pull the build from under a
 * server that runs it meanwhile (tests do). The program's inputs come from tsc itself (--listFilesOnly).
 */
function pruneStaleOutputs() {
  const expected = new Set([join(dist, ".build-stamp"), join(dist, ".tsbuildinfo"), join(root, BROWSER_CLIENT_FILE)]);
  for (const input of tsc("--listFilesOnly").split("\n")) {
    const path = relative(join(root, "src"), input.trim());
    if (!input.trim().endsWith(".ts") || input.trim().endsWith(".d.ts") || path.startsWith("..")) continue;
    const base = join(dist, path.replace(/\.ts$/, ""));
    for (const suffix of [".js", ".js.map", ".d.ts"]) expected.add(`${base}${suffix}`);
  }
  for (const entry of readdirSync(dist, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    if (entry.isFile() && !expected.has(path)) rmSync(path);
  }
}
