// The CLI's REST client and request building against a node:http fake: bodies, batching, paging, errors.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import type { CliIo } from "./command.js";
import { main } from "./main.js";

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

/** Asserts a failure: the exit code and exactly one `streamgate: ...` line on stderr. */
function assertFailure(run: Run, code: number, pattern: RegExp): void {
  assert.equal(run.code, code, `exit code; stderr: ${run.stderr}`);
  assert.match(run.stderr, /^streamgate: [^\n]+\n$/, "one line on stderr");
  assert.match(run.stderr, pattern);
}

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
          expirationPolicy: {},
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
