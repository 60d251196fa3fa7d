// The open-handle check: a test file that leaves a server or a timer open fails and names it; a clean one passes.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

const check = pathToFileURL(fileURLToPath(new URL("./open-handle-check.ts", import.meta.url))).href;
const dir = mkdtempSync(join(tmpdir(), "handle-check-"));

/** Runs one test file the way scripts/run-tests.mjs does; returns its exit code and everything it printed. */
function runFile(name: string, source: string, env: NodeJS.ProcessEnv = {}): { status: number | null; output: string } {
  const file = join(dir, name);
  writeFileSync(file, source);
  // Without NODE_TEST_CONTEXT, which would make the child think it runs inside this file's test runner.
  const { NODE_TEST_CONTEXT: _, ...inherited } = process.env;
  const result = spawnSync(process.execPath, ["--import", check, "--test", "--test-reporter=spec", file], {
    encoding: "utf8",
    timeout: 60_000,
    env: { ...inherited, STREAMGATE_TEST_HANDLE_GRACE_MS: "300", ...env },
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe("open-handle check", () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("open-handle check - a listening server left open fails the file and is named with its address", () => {
    const result = runFile(
      "leaks-server.test.mjs",
      `import { createServer } from "node:net";
import { test } from "node:test";
test("opens a server", () => { createServer().listen(0, "127.0.0.1"); });
`,
    );
    assert.notEqual(result.status, 0, result.output);
    assert.match(result.output, /leaks-server\.test\.mjs was still running 300 ms after its tests/);
    assert.match(result.output, /server listening on 127\.0\.0\.1:\d+/);
  });

  it("open-handle check - an interval left running is named by where it was set, with tracing on", () => {
    const result = runFile(
      "leaks-timer.test.mjs",
      `import { test } from "node:test";
test("sets an interval", () => { setInterval(() => {}, 1_000); });
`,
      { STREAMGATE_TEST_TRACE_TIMERS: "1" },
    );
    assert.notEqual(result.status, 0, result.output);
    assert.match(
      result.output,
      /timer created at\s+at TestContext\.<anonymous> \(file:\/\/.*leaks-timer\.test\.mjs:2:/,
    );
  });

  it("open-handle check - a server closed by the file's own top-level after hook is no leak", () => {
    const result = runFile(
      "closes-in-after.test.mjs",
      `import { after, describe, it } from "node:test";
import { createServer } from "node:net";
const server = createServer().listen(0, "127.0.0.1");
after(() => new Promise((resolve) => server.close(resolve)));
describe("suite", () => { it("uses the server", () => {}); });
`,
    );
    assert.equal(result.status, 0, result.output);
  });

  it("open-handle check - a file that closes what it opens passes, unref'd timers included", () => {
    const result = runFile(
      "clean.test.mjs",
      `import { once } from "node:events";
import { createServer } from "node:net";
import { test } from "node:test";
test("opens and closes", async () => {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  setTimeout(() => {}, 60_000).unref();
  server.close();
});
`,
    );
    assert.equal(result.status, 0, result.output);
  });
});
