// The production form: src/ compiled to dist/ (tsconfig.build.json, as `npm run build` and the Dockerfile do)
// runs `streamgate serve`, and the launcher picks it only while the build is newer than the sources.
// Built into a scratch root (bin, package.json, dist; node_modules and web linked) so the repository's own
// dist/ and the other test files are not touched.
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { BROWSER_CLIENT_FILE, bundleBrowserClient } from "../../scripts/browser-client.mjs";
import { withTimeout } from "../harness/wait-for.js";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const require = createRequire(import.meta.url);

interface Started {
  child: ChildProcess;
  listening: Record<string, unknown>;
}

/** `streamgate serve` from `root` on port 0; resolves with its "streamgate listening" log line. */
async function serve(root: string): Promise<Started> {
  const child = spawn(
    process.execPath,
    [join(root, "bin/streamgate.mjs"), "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", join(root, "data")],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, STREAMGATE_LOG_LEVEL: "info" } },
  );
  let output = "";
  const listening = new Promise<Record<string, unknown>>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString("utf8");
      for (const line of output.split("\n")) {
        if (!line.startsWith("{")) continue;
        const parsed = JSON.parse(line) as Record<string, unknown>;
        if (parsed.msg === "streamgate listening") resolve(parsed);
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => reject(new Error(`streamgate exited with ${code}:\n${output}`)));
  });
  return { child, listening: await withTimeout(listening, 60_000, "streamgate serve to listen") };
}

async function stop(started: Started | undefined): Promise<void> {
  const child = started?.child;
  if (child === undefined || child.exitCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  await exited;
}

describe("compiled build", () => {
  let root: string;
  before(async () => {
    root = mkdtempSync(join(tmpdir(), "streamgate-build-"));
    mkdirSync(join(root, "bin"));
    copyFileSync(join(repo, "bin/streamgate.mjs"), join(root, "bin/streamgate.mjs"));
    copyFileSync(join(repo, "package.json"), join(root, "package.json"));
    for (const linked of ["node_modules", "web"]) symlinkSync(join(repo, linked), join(root, linked));
    execFileSync(
      process.execPath,
      [
        require.resolve("typescript/bin/tsc"),
        "-p",
        join(repo, "tsconfig.build.json"),
        "--outDir",
        join(root, "dist"),
        "--tsBuildInfoFile",
        join(root, "dist/.tsbuildinfo"),
      ],
      { cwd: repo, stdio: "pipe" },
    );
    // The dashboard of compiled code serves the build's browser client and refuses to start without it.
    await bundleBrowserClient(repo, { outFile: join(root, BROWSER_CLIENT_FILE) });
    writeFileSync(join(root, "dist/.build-stamp"), `${new Date().toISOString()}\n`);
  });
  after(() => {
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
  });

  it("compiled build - dist/ alone (no sources, as in the image) serves, and says it runs compiled code", async () => {
    let started: Started | undefined;
    try {
      started = await serve(root);
      assert.equal(started.listening.code, "compiled");
      const response = await fetch(`http://127.0.0.1:${started.listening.port}/healthz`);
      assert.equal(response.status, 200);
    } finally {
      await stop(started);
    }
  });

  it("compiled build - sources newer than the build are run instead (no stale dist/)", async () => {
    symlinkSync(join(repo, "src"), join(root, "src"));
    let started: Started | undefined;
    try {
      // A build newer than every source file is used...
      started = await serve(root);
      assert.equal(started.listening.code, "compiled");
      await stop(started);
      // ...but once a source file is newer than the build stamp, the launcher runs the sources.
      utimesSync(join(root, "dist/.build-stamp"), new Date(0), new Date(0));
      started = await serve(root);
      assert.equal(started.listening.code, "sources");
    } finally {
      await stop(started);
    }
  });
});
