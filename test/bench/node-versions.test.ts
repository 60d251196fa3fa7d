// bench/node-versions.ts (docs/benchmarks-node24.md's command; the 20-minute run itself is not a test): its
// command line parses as documented and a wrong one is a usage error that names what to change.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));

function runScript(...args: string[]) {
  const result = spawnSync(process.execPath, ["--import", "tsx", "bench/node-versions.ts", ...args], {
    cwd: root,
    encoding: "utf8",
    timeout: 30_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe("bench node-versions", () => {
  it("bench node-versions - --help prints the usage the docs show and exits 0", () => {
    const result = runScript("--help");
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /--old-node PATH --old-root DIR/);
  });

  it("bench node-versions - a missing checkout, an unknown option or benchmark exits 64 and says which", () => {
    const missing = runScript("--old-node", process.execPath);
    assert.equal(missing.status, 64);
    assert.match(missing.stderr, /--old-node and --old-root are required/);
    const unknownOption = runScript("--old-nod", process.execPath);
    assert.equal(unknownOption.status, 64);
    assert.match(unknownOption.stderr, /Unknown option '--old-nod'/);
    const unknownBench = runScript("--old-node", process.execPath, "--old-root", root, "fanuot");
    assert.equal(unknownBench.status, 64);
    assert.match(unknownBench.stderr, /unknown benchmark fanuot/);
  });
});
