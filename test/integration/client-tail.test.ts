// `streamgate tail` end to end: bin/streamgate.mjs as a child process against a real server, over each transport.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";

const bin = fileURLToPath(new URL("../../bin/streamgate.mjs", import.meta.url));

async function runTail(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  const child = spawn(process.execPath, [bin, "tail", ...argv], { env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill(), 20_000);
  const [code] = (await once(child, "exit")) as [number | null];
  clearTimeout(timer);
  return { code: code ?? -1, stdout, stderr };
}

describe("cli tail", () => {
  let server: TestServer;
  let topicId: string;
  before(async () => {
    server = await startTestServer();
    topicId = uniqueName("tail");
    const topic = `projects/default/topics/${topicId}`;
    await server.server.engine.createTopic({ name: topic });
    await server.server.engine.publish(topic, [
      { data: Buffer.from("hello\nworld"), attributes: { kind: "a", b: "2" }, orderingKey: "" },
      { data: new Uint8Array([0, 1, 255]), attributes: {}, orderingKey: "" },
      { data: Buffer.from("third"), attributes: {}, orderingKey: "" },
    ]);
  });
  after(async () => {
    await server.close();
  });

  for (const transport of ["sse", "websocket", "longpoll"]) {
    it(`cli tail - ${transport} prints offset, time, attributes and data per event from an offset`, async () => {
      const run = await runTail([
        topicId,
        "--server",
        server.url,
        "--from",
        "0",
        "--count",
        "3",
        "--transport",
        transport,
      ]);
      assert.equal(run.code, 0, run.stderr);
      const lines = run.stdout.trimEnd().split("\n");
      assert.equal(lines.length, 3);
      assert.match(lines[0]!, /^1 {2}\d{4}-\d\d-\d\dT[\d:.]+Z {2}b=2, kind=a {2}hello\\nworld$/);
      assert.match(lines[1]!, /^2 {2}\S+ {2}- {2}base64:AAH\/$/);
      assert.match(lines[2]!, /^3 {2}\S+ {2}- {2}third$/);
    });
  }

  it("cli tail - --json prints the server's message form, one object per line, after the given offset", async () => {
    const run = await runTail([topicId, "--server", server.url, "--from", "2", "--count", "1", "--json"]);
    assert.equal(run.code, 0, run.stderr);
    const message = JSON.parse(run.stdout);
    assert.equal(message.offset, "3");
    assert.equal(Buffer.from(message.data, "base64").toString(), "third");
  });

  it("cli tail - unknown topic exits 1 with NOT_FOUND; a bad --from or --transport is a usage error", async () => {
    const missing = await runTail([uniqueName("missing"), "--server", server.url, "--from", "earliest"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^streamgate: NOT_FOUND: [^\n]+\n$/);
    const badFrom = await runTail([topicId, "--server", server.url, "--from", "yesterday"]);
    assert.equal(badFrom.code, 2);
    assert.match(badFrom.stderr, /--from/);
    const badTransport = await runTail([topicId, "--server", server.url, "--transport", "pigeon"]);
    assert.equal(badTransport.code, 2);
  });
});
