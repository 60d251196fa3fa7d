#!/usr/bin/env node
// Launcher of the `streamgate` command. Installed from npm (no src/ next to dist/) it runs the compiled dist/. In a
// checkout it runs dist/ (`npm run build`; `npm start` builds first) while that build is newer than every file under
// src/, else the TypeScript sources through tsx (a dev dependency: it is only imported in a checkout).
// The compiled form is the one to run in production: tsx's transform gives every closure an own `name`
// property (esbuild keepNames), about a third of the server's heap per idle tunnelled stream, and CPU per call.
// STREAMGATE_FROM_SOURCE=1 forces the sources (in a checkout).
import { existsSync, readdirSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
/** A repository checkout has the sources; the npm package ships dist/ only. */
const checkout = existsSync(`${root}src/cli/main.ts`);

/** Newest modification time of the files under `dir` (0 when it does not exist). */
function newestMtimeMs(dir) {
  if (!existsSync(dir)) return 0;
  let newest = 0;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(`${entry.parentPath ?? entry.path}/${entry.name}`).mtimeMs);
  }
  return newest;
}

function builtAndFresh() {
  if (process.env.STREAMGATE_FROM_SOURCE === "1") return false;
  const stamp = `${root}dist/.build-stamp`;
  if (!existsSync(stamp) || !existsSync(`${root}dist/cli/main.js`)) return false;
  return statSync(stamp).mtimeMs >= newestMtimeMs(`${root}src`);
}

let main;
if (!checkout || builtAndFresh()) {
  ({ main } = await import("../dist/cli/main.js"));
} else {
  // On a terminal, say why the first command is slow (tsx compiles each source file on first use, then caches it).
  if (process.stderr.isTTY) {
    process.stderr.write(
      "streamgate: running the TypeScript sources (no fresh build; `npm run build` compiles them)\n",
    );
  }
  const { register } = await import("tsx/esm/api");
  register();
  ({ main } = await import("../src/cli/main.ts"));
}
const code = await main(process.argv.slice(2));
// Leave through the event loop so piped stdout is flushed; force it if a handle lingers (keep-alive sockets).
process.exitCode = code;
setTimeout(() => process.exit(code), 1000).unref();
