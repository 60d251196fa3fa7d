// Runs the official Pub/Sub client suite (pubsub-client.test.ts) unchanged on the jetstream engine, as a child process.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { findNatsServerBinary, NATS_SERVER_NOT_FOUND } from "../harness/nats-server.js";
import { peersRequired } from "../harness/start-test-server.js";

const root = fileURLToPath(new URL("../../", import.meta.url));

let missing: string | false = false;
try {
  findNatsServerBinary();
} catch (error) {
  if (!String(error).includes(NATS_SERVER_NOT_FOUND) || peersRequired()) throw error;
  missing = `SKIPPED: ${String(error)}`;
  console.warn(`pubsub-client-jetstream: ${missing}`);
}

test("pubsub client suite on the jetstream engine (STREAMGATE_TEST_ENGINE=jetstream)", {
  skip: missing,
  timeout: 90_000,
}, async () => {
  // Run as scripts/run-tests.mjs runs a file (open-handle check included), with an explicit reporter: without
  // one, node picks it by TTY and version (Node 24 gives a non-TTY child `spec`, not TAP).
  const args = [
    "--import",
    "tsx",
    "--import",
    "./test/harness/open-handle-check.ts",
    "--test",
    "--test-reporter=tap",
    "test/integration/pubsub-client.test.ts",
  ];
  const child = spawn(process.execPath, args, {
    cwd: root,
    // NODE_TEST_CONTEXT would make the child skip its files as a recursive run.
    env: { ...process.env, NODE_TEST_CONTEXT: undefined, STREAMGATE_TEST_ENGINE: "jetstream" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (text: string) => {
    output += text;
  });
  child.stderr.setEncoding("utf8").on("data", (text: string) => {
    output += text;
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 85_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.once("exit", (exitCode, exitSignal) => resolve([exitCode, exitSignal])),
  );
  clearTimeout(timer);
  if (code !== 0) console.error(output);
  assert.equal(code, 0, `pubsub-client.test.ts on jetstream exited with ${code ?? signal}`);
  assert.match(output, /^# pass [1-9]/m, "the child ran tests");
  assert.match(output, /^# fail 0$/m);
});
