// Finds *.test.ts files (under the given folders; default src and test) and runs them with node's test runner.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";

const roots = process.argv.slice(2).filter((a) => !a.startsWith("-"));
const passThrough = process.argv.slice(2).filter((a) => a.startsWith("-"));
const files = [];
function walk(dir) {
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name === "gen" || name.startsWith(".")) continue;
    const full = join(dir, name);
    if (statSync(full).isDirectory()) walk(full);
    else if (name.endsWith(".test.ts")) files.push(relative(process.cwd(), full));
  }
}
for (const root of roots.length > 0 ? roots : ["src", "test"]) {
  if (statSync(root, { throwIfNoEntry: false })?.isDirectory()) walk(root);
  else files.push(root);
}
if (files.length === 0) {
  console.error("run-tests: no test files found");
  process.exit(1);
}
files.sort();
const concurrency = process.env.TEST_CONCURRENCY ?? "2";
// A test that hangs fails after this long instead of holding the whole run until CI's limit.
const fileTimeoutMs = process.env.TEST_FILE_TIMEOUT_MS ?? "600000";
// No --test-force-exit: a file that leaves a socket, server, child process or timer open fails, with the
// handle named, through the preloaded check (a forced exit would hide the leak).
const handleCheck = pathToFileURL(join(process.cwd(), "test", "harness", "open-handle-check.ts")).href;
const result = spawnSync(
  process.execPath,
  [
    "--import",
    "tsx",
    "--test",
    `--test-concurrency=${concurrency}`,
    `--test-timeout=${fileTimeoutMs}`,
    "--import",
    handleCheck,
    "--test-reporter=spec",
    ...passThrough,
    ...files,
  ],
  { stdio: "inherit" },
);
process.exit(result.status ?? 1);
