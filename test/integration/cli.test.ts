// The `streamgate` command end to end: bin/streamgate.mjs as a child process against a real server.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { commandPaths } from "../../src/cli/main.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";

const bin = fileURLToPath(new URL("../../bin/streamgate.mjs", import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `node bin/streamgate.mjs` as a child process. */
async function runBin(argv: string[], stdin = ""): Promise<Run> {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  const child = spawn(process.execPath, [bin, ...argv], { env, stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  child.stdin.end(stdin);
  const [code] = (await once(child, "exit")) as [number | null];
  return { code: code ?? -1, stdout, stderr };
}

/** Asserts a failure: the exit code and exactly one `streamgate: ...` line on stderr. */
function assertFailure(run: Run, code: number, pattern: RegExp): void {
  assert.equal(run.code, code, `exit code; stderr: ${run.stderr}`);
  assert.match(run.stderr, /^streamgate: [^\n]+\n$/, "one line on stderr");
  assert.match(run.stderr, pattern);
}

describe("cli end to end against a real server", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.close());

  const cli = (argv: string[], stdin = "") => runBin([...argv, "--server", server.url], stdin);

  test("cli - create, publish from stdin, pull --ack, pull empty, seek --time replays", async () => {
    const created = await cli(["topics", "create", "orders", "--label", "team=cli", "--retention", "1d"]);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(created.stdout, "created topic projects/default/topics/orders\n");
    const subscribed = await cli(["subscriptions", "create", "worker", "--topic", "orders", "--retain-acked"]);
    assert.equal(subscribed.code, 0, subscribed.stderr);
    assert.match((await cli(["topics", "list"])).stdout, /^TOPIC +RETENTION +LABELS\norders +1d +team=cli\n$/);
    assert.match((await cli(["subscriptions", "get", "worker"])).stdout, /retain acked: +yes/);

    const before = new Date(Date.now() - 1000).toISOString();
    const published = await cli(["publish", "orders", "--attr", "kind=test", "--attr", "n=1"], "one\ntwo\nthree\n");
    assert.equal(published.code, 0, published.stderr);
    const ids = published.stdout.trim().split("\n");
    assert.equal(ids.length, 3);

    const pulled = await cli(["pull", "worker", "--ack", "--max", "10"]);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.match(pulled.stdout, /^MESSAGE ID .*PUBLISH TIME .*ATTRIBUTES +DATA\n/);
    for (const data of ["one", "two", "three"]) assert.match(pulled.stdout, new RegExp(`kind=test, n=1 +${data}\\n`));
    for (const id of ids) assert.ok(pulled.stdout.includes(id.split("\t")[0]!), `message ${id} pulled`);
    assert.match(pulled.stderr, /acknowledged 3 message\(s\)/);

    const empty = await cli(["pull", "worker", "--json"]);
    assert.equal(empty.code, 0, empty.stderr);
    assert.deepEqual(JSON.parse(empty.stdout), []);

    const seeked = await cli(["seek", "worker", "--time", before]);
    assert.equal(seeked.code, 0, seeked.stderr);
    const replayed = await cli(["pull", "worker", "--json", "--ack"]);
    assert.equal(replayed.code, 0, replayed.stderr);
    const messages = JSON.parse(replayed.stdout) as { message: { data: string; attributes: Record<string, string> } }[];
    const texts = messages.map((item) => Buffer.from(item.message.data, "base64").toString()).sort();
    assert.deepEqual(texts, ["one", "three", "two"]);
    assert.deepEqual(messages[0]?.message.attributes, { kind: "test", n: "1" });
  });

  test("cli - subscription options round-trip; snapshots create, list and seek", async () => {
    assert.equal((await cli(["topics", "create", "events"])).code, 0);
    assert.equal((await cli(["topics", "create", "events-dead"])).code, 0);
    const flags = ["--topic", "events", "--expiration", "never", "--ack-deadline", "30", "--ordering"];
    const dead = ["--dead-letter-topic", "events-dead", "--max-delivery-attempts", "7", "--min-backoff", "2s"];
    const created = await cli(["subscriptions", "create", "events-sub", ...flags, ...dead, "--label", "a=b"]);
    assert.equal(created.code, 0, created.stderr);
    const shown = (await cli(["subscriptions", "get", "events-sub"])).stdout;
    assert.match(shown, /ack deadline: +30s\n/);
    assert.match(shown, /ordering: +enabled\n/);
    assert.match(shown, /expiration: +never\n/);
    assert.match(shown, /dead letter: +projects\/default\/topics\/events-dead after 7 attempts\n/);
    assert.match(shown, /labels: +a=b\n/);
    assert.match(
      (await cli(["subscriptions", "list"])).stdout,
      /events-sub +events +30s +pull +ordering, dead-letter\n/,
    );

    const snapshot = await cli(["snapshots", "create", "events-snap", "--subscription", "events-sub"]);
    assert.equal(snapshot.code, 0, snapshot.stderr);
    assert.match((await cli(["snapshots", "list"])).stdout, /^SNAPSHOT .*\nevents-snap +events +\d{4}-/);
    const seeked = await cli(["seek", "events-sub", "--snapshot", "events-snap"]);
    assert.equal(seeked.code, 0, seeked.stderr);
    assert.equal(
      seeked.stdout,
      "seeked projects/default/subscriptions/events-sub to projects/default/snapshots/events-snap\n",
    );
    assert.equal((await cli(["snapshots", "delete", "events-snap"])).code, 0);
    assertFailure(await cli(["snapshots", "get", "events-snap"]), 1, /^streamgate: NOT_FOUND: /);
  });

  test("cli - bad and unknown names exit 1 with a one-line reason", async () => {
    assertFailure(await cli(["topics", "get", "nope"]), 1, /^streamgate: NOT_FOUND: .*nope/);
    assertFailure(await cli(["topics", "create", "bad name!"]), 1, /^streamgate: INVALID_ARGUMENT: /);
    assertFailure(await cli(["topics", "get", "a/b/c"]), 1, /^streamgate: invalid topic name "a\/b\/c"/);
    assertFailure(await cli(["pull", "no-such-subscription"]), 1, /^streamgate: NOT_FOUND: /);
  });

  test("cli - unknown flag exits 2 and --help exits 0 for every command", async () => {
    const unknown = await runBin(["pull", "worker", "--foo"]);
    assert.equal(unknown.code, 2);
    assert.equal(unknown.stderr, "streamgate: unknown option --foo (see streamgate pull --help)\n");
    const paths = [[], ["help"], ["topics"], ["subscriptions"], ["snapshots"], ...commandPaths()];
    const runs = await Promise.all(paths.map((path) => runBin([...path, "--help"])));
    runs.forEach((run, index) => {
      assert.equal(run.code, 0, `${paths[index]?.join(" ")} --help: ${run.stderr}`);
      assert.match(run.stdout, /^Usage: streamgate /);
      assert.equal(run.stderr, "");
    });
  });
});

describe("cli serve", () => {
  test("cli - serve prints where it listens, serves clients, and drains to exit 0 on SIGTERM", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "streamgate-cli-"));
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, STREAMGATE_LOG_LEVEL: "warn" };
    const args = [bin, "serve", "--port", "0", "--host", "127.0.0.1", "--data-dir", dataDir, "--drain-ms", "2000"];
    const child = spawn(process.execPath, args, { env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8");
    const exited = once(child, "exit");
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`serve did not start:\n${stderr}`)), 15_000);
        child.stderr.on("data", (chunk: string) => {
          stderr += chunk;
          const match = /^streamgate listening on (http:\/\/127\.0\.0\.1:\d+) \(engine embedded, data (.+)\)$/m.exec(
            stderr,
          );
          if (match) {
            clearTimeout(timer);
            assert.equal(match[2], dataDir);
            resolve(match[1]!);
          }
        });
        void exited.then(() => reject(new Error(`serve exited early:\n${stderr}`)));
      });
      const listed = await runBin(["topics", "list", "--server", url]);
      assert.equal(listed.code, 0, listed.stderr);
      assert.equal(listed.stderr, "no topics in project default\n");
      child.kill("SIGTERM");
      const [code] = (await exited) as [number | null];
      assert.equal(code, 0, stderr);
      assert.match(stderr, /streamgate: SIGTERM, draining for up to 2000 ms/);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
