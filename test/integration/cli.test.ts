// The `streamgate` command: parsing and usage in-process, the REST client against a fake, and end to end against a real server.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { parseDurationSeconds, toProtoDuration, UsageError } from "../../src/cli/args.js";
import type { CliIo } from "../../src/cli/command.js";
import { resolveName, resolveServerUrl } from "../../src/cli/context.js";
import { commandPaths, main } from "../../src/cli/main.js";
import { formatData } from "../../src/cli/output.js";
import { parseSeekTime } from "../../src/cli/seek.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";

const bin = fileURLToPath(new URL("../../bin/streamgate.mjs", import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in this process with captured I/O and an empty environment. */
async function runInProcess(argv: string[], stdin = "", env: NodeJS.ProcessEnv = {}): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    stdin: Readable.from([stdin]),
    env,
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
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

describe("cli parsing", () => {
  test("cli - an unknown flag exits 2 with one line naming the flag and the command's help", async () => {
    const run = await runInProcess(["topics", "create", "orders", "--foo"]);
    assert.equal(run.code, 2);
    assert.equal(run.stderr, "streamgate: unknown option --foo (see streamgate topics create --help)\n");
    assert.equal(run.stdout, "");
  });

  test("cli - missing arguments, bad values and unknown commands are usage errors (exit 2)", async () => {
    assertFailure(await runInProcess(["topics", "get"]), 2, /missing NAME/);
    assertFailure(await runInProcess(["topics", "get", "a", "b"]), 2, /unexpected argument "b"/);
    assertFailure(await runInProcess(["pull", "s", "--max", "many"]), 2, /--max: expected an integer/);
    assertFailure(await runInProcess(["pull", "s", "--max"]), 2, /option --max needs a value/);
    assertFailure(await runInProcess(["seek", "s"]), 2, /exactly one of --time and --snapshot/);
    assertFailure(await runInProcess(["subscriptions", "create", "s"]), 2, /missing --topic/);
    assertFailure(await runInProcess(["topics", "create", "t", "--retention", "soon"]), 2, /invalid duration/);
    assertFailure(await runInProcess(["serve", "--engine", "sqlite"]), 2, /--engine: expected one of/);
    assertFailure(await runInProcess(["serve", "--tls-cert", "a.pem"]), 2, /--tls-key must be given together/);
    assertFailure(await runInProcess(["frobnicate"]), 2, /unknown command "frobnicate"/);
    assertFailure(await runInProcess([]), 2, /missing command/);
    assertFailure(await runInProcess(["topics"]), 2, /missing topics command/);
  });

  test("cli - every command prints usage with its flags for --help, -h and help", async () => {
    for (const path of commandPaths()) {
      const run = await runInProcess([...path, "--help"]);
      assert.equal(run.code, 0, path.join(" "));
      assert.match(run.stdout, new RegExp(`^Usage: streamgate ${path.join(" ")}`), path.join(" "));
      assert.match(run.stdout, /-h, --help/);
      assert.deepEqual(await runInProcess([...path, "-h"]), run);
      assert.deepEqual(await runInProcess(["help", ...path]), run);
    }
    const serve = await runInProcess(["serve", "--help"]);
    assert.match(serve.stdout, /--drain-ms MS .*default \$STREAMGATE_DRAIN_MS, else 10000/);
    assert.match((await runInProcess(["help"])).stdout, /^Usage: streamgate COMMAND/);
    assert.match((await runInProcess(["topics", "--help"])).stdout, /create .*Create a topic/);
    assert.match((await runInProcess(["--version"])).stdout, /^streamgate \d+\.\d+\.\d+\n$/);
  });

  test("cli - durations, names, server URL and seek times parse as documented", () => {
    assert.equal(parseDurationSeconds("7d", "--retention"), 604_800);
    assert.equal(parseDurationSeconds("1h30m", "--retention"), 5400);
    assert.equal(parseDurationSeconds("600", "--retention"), 600);
    assert.equal(toProtoDuration("1.5s", "--min-backoff"), "1.5s");
    assert.throws(() => parseDurationSeconds("7 days", "--retention"), UsageError);
    assert.equal(resolveName("topics", "orders", "p"), "projects/p/topics/orders");
    assert.equal(resolveName("topics", "projects/q/topics/orders", "p"), "projects/q/topics/orders");
    assert.throws(() => resolveName("topics", "projects/q/subscriptions/orders", "p"), /invalid topic name/);
    assert.equal(resolveServerUrl(undefined, {}), "http://localhost:8080");
    assert.equal(resolveServerUrl(undefined, { PUBSUB_EMULATOR_HOST: "h:1" }), "http://h:1");
    assert.equal(resolveServerUrl(undefined, { PUBSUB_EMULATOR_HOST: "h:1", STREAMGATE_URL: "http://s/" }), "http://s");
    assert.equal(resolveServerUrl("https://flag:9", { STREAMGATE_URL: "http://s" }), "https://flag:9");
    assert.equal(parseSeekTime("2024-05-01T14:00:00+02:00"), "2024-05-01T12:00:00.000Z");
    assert.throws(() => parseSeekTime("yesterday"), UsageError);
    assert.equal(formatData(Buffer.from("héllo\nworld").toString("base64")), "héllo\\nworld");
    assert.equal(formatData(Buffer.from([0, 1, 255]).toString("base64")), "base64:AAH/");
  });
});

interface Recorded {
  method: string;
  url: string;
  authorization: string | undefined;
  body: unknown;
}

describe("cli REST client against a fake server", () => {
  let fake: Server;
  let url = "";
  const requests: Recorded[] = [];
  let respond: (request: Recorded) => { status: number; body: string } = () => ({ status: 200, body: "{}" });

  before(async () => {
    fake = createServer(async (request: IncomingMessage, response) => {
      let text = "";
      for await (const chunk of request) text += chunk;
      const recorded: Recorded = {
        method: request.method ?? "",
        url: request.url ?? "",
        authorization: request.headers.authorization,
        body: text === "" ? undefined : JSON.parse(text),
      };
      requests.push(recorded);
      const { status, body } = respond(recorded);
      response.writeHead(status, { "content-type": "application/json" }).end(body);
    });
    fake.listen(0, "127.0.0.1");
    await once(fake, "listening");
    url = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
  });
  after(() => fake.close());

  test("cli - subscriptions create sends only the given fields, as Pub/Sub REST names them", async () => {
    requests.length = 0;
    respond = (request) => ({
      status: 200,
      body: JSON.stringify({ name: "projects/p/subscriptions/s", ...(request.body as object) }),
    });
    const argv = ["subscriptions", "create", "s", "--topic", "t", "--project", "p", "--server", url, "--token", "tok"];
    const flags = [
      "--ack-deadline",
      "30",
      "--dead-letter-topic",
      "dl",
      "--max-delivery-attempts",
      "7",
      "--retain-acked",
    ];
    const more = ["--min-backoff", "1s", "--expiration", "never", "--retention", "1d", "--label", "a=b", "--ordering"];
    const run = await runInProcess([...argv, ...flags, ...more]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, "created subscription projects/p/subscriptions/s\n");
    assert.deepEqual(requests, [
      {
        method: "PUT",
        url: "/v1/projects/p/subscriptions/s",
        authorization: "Bearer tok",
        body: {
          topic: "projects/p/topics/t",
          ackDeadlineSeconds: 30,
          deadLetterPolicy: { deadLetterTopic: "projects/p/topics/dl", maxDeliveryAttempts: 7 },
          retryPolicy: { minimumBackoff: "1s" },
          enableMessageOrdering: true,
          retainAckedMessages: true,
          messageRetentionDuration: "86400s",
          expirationPolicy: { ttl: "" },
          labels: { a: "b" },
        },
      },
    ]);
  });

  test("cli - publish batches stdin lines 1000 per request and prints ids with offsets", async () => {
    requests.length = 0;
    let next = 0;
    respond = (request) => {
      const count = messagesOf(request).length;
      const ids = Array.from({ length: count }, () => String(++next));
      return { status: 200, body: JSON.stringify({ messageIds: ids, offsets: ids }) };
    };
    const lines = Array.from({ length: 2500 }, (_, index) => `line ${index}`).join("\n");
    const run = await runInProcess(["publish", "t", "--attr", "k=v", "--server", url], `${lines}\n\n`);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(
      requests.map((request) => messagesOf(request).length),
      [1000, 1000, 500],
    );
    assert.equal(requests[0]?.url, "/v1/projects/default/topics/t:publish");
    assert.deepEqual(messagesOf(requests[0])[0] as object, {
      data: Buffer.from("line 0").toString("base64"),
      attributes: { k: "v" },
    });
    assert.equal(run.stdout.split("\n")[0], "1\toffset 1");
    assert.equal(run.stdout.trim().split("\n").length, 2500);
  });

  test("cli - list follows nextPageToken across pages", async () => {
    requests.length = 0;
    respond = (request) =>
      request.url.includes("pageToken=two")
        ? { status: 200, body: JSON.stringify({ topics: [{ name: "projects/default/topics/b" }] }) }
        : {
            status: 200,
            body: JSON.stringify({ topics: [{ name: "projects/default/topics/a" }], nextPageToken: "two" }),
          };
    const run = await runInProcess(["topics", "list", "--json", "--server", url]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), [
      { name: "projects/default/topics/a" },
      { name: "projects/default/topics/b" },
    ]);
  });

  test("cli - server errors print STATUS: message on one line and exit 1", async () => {
    const notFound = {
      code: 404,
      message: "Resource not found (resource=projects/default/topics/x).",
      status: "NOT_FOUND",
    };
    respond = () => ({ status: 404, body: JSON.stringify({ error: notFound }) });
    const run = await runInProcess(["topics", "get", "x", "--server", url]);
    assert.equal(run.code, 1);
    assert.equal(run.stderr, "streamgate: NOT_FOUND: Resource not found (resource=projects/default/topics/x).\n");
    respond = () => ({ status: 502, body: "<html>\n<b>Bad Gateway</b>\n</html>" });
    assertFailure(await runInProcess(["topics", "get", "x", "--server", url]), 1, /^streamgate: HTTP 502: <html>/);
  });

  test("cli - an unreachable server is reported with its URL and the network reason", async () => {
    const closed = createServer();
    closed.listen(0, "127.0.0.1");
    await once(closed, "listening");
    const port = (closed.address() as AddressInfo).port;
    closed.close();
    const run = await runInProcess(["topics", "list"], "", { STREAMGATE_URL: `http://127.0.0.1:${port}` });
    assert.equal(run.code, 1);
    assert.equal(run.stderr, `streamgate: cannot reach http://127.0.0.1:${port}: ECONNREFUSED\n`);
  });
});

/** The messages of a recorded publish request. */
function messagesOf(request: Recorded | undefined): unknown[] {
  return (request?.body as { messages?: unknown[] } | undefined)?.messages ?? [];
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
