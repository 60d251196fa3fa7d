// chat.ChatService/ChatStream driven by independent @grpc/grpc-js clients and by the `streamgate chat` CLI.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createLiveClients, grpc, type LiveClients, type Recorder, record } from "../harness/live-clients.js";
import { startTestServer, type TestServer } from "../harness/start-test-server.js";
import { uniqueName } from "../harness/unique-name.js";
import { waitFor } from "../harness/wait-for.js";

interface ChatMessage {
  user: string;
  message: string;
  timestamp: string;
}

const bin = fileURLToPath(new URL("../../bin/streamgate.mjs", import.meta.url));

describe("chat", () => {
  let server: TestServer;
  const opened: LiveClients[] = [];

  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    for (const clients of opened) clients.close();
    await server?.close();
  });

  function join(room: string): { call: grpc.ClientDuplexStream<unknown, unknown>; recorder: Recorder<ChatMessage> } {
    const clients = createLiveClients(server.hostPort);
    opened.push(clients);
    const metadata = new grpc.Metadata();
    metadata.set("chat-room", room);
    const call = (
      clients.chat as unknown as { ChatStream(metadata: grpc.Metadata): grpc.ClientDuplexStream<unknown, unknown> }
    ).ChatStream(metadata);
    return { call, recorder: record<ChatMessage>(call) };
  }
  const lines = (recorder: Recorder<ChatMessage>) => recorder.items.map((item) => `${item.user}: ${item.message}`);
  async function sees(recorder: Recorder<ChatMessage>, expected: string[]) {
    await waitFor(() => expected.every((line) => lines(recorder).includes(line)) || recorder.ended, {
      timeoutMs: 5_000,
      describe: () => `expected ${JSON.stringify(expected)}, saw ${JSON.stringify(lines(recorder))}`,
    });
    assert.equal(recorder.error, null);
  }
  /** A message from the client itself proves its live subscription is open (it sees its own messages too). */
  async function joined(
    call: grpc.ClientDuplexStream<unknown, unknown>,
    recorder: Recorder<ChatMessage>,
    user: string,
  ) {
    call.write({ user, message: "joined", timestamp: String(Date.now()) });
    await sees(recorder, [`${user}: joined`]);
  }

  test("chat - two grpc-js clients see each other's messages; a third joining later gets the history", async () => {
    const room = uniqueName("room");
    const alice = join(room);
    await joined(alice.call, alice.recorder, "alice");
    const bob = join(room);
    await joined(bob.call, bob.recorder, "bob");

    alice.call.write({ user: "alice", message: "hi bob", timestamp: "1700000000000" });
    bob.call.write({ user: "bob", message: "hi alice", timestamp: "0" });
    await sees(bob.recorder, ["alice: hi bob", "bob: hi alice"]);
    await sees(alice.recorder, ["bob: joined", "alice: hi bob", "bob: hi alice"]);
    const fromAlice = bob.recorder.items.find((item) => item.message === "hi bob")!;
    assert.equal(fromAlice.timestamp, "1700000000000");
    const fromBob = alice.recorder.items.find((item) => item.message === "hi alice")!;
    assert.ok(Math.abs(Number(fromBob.timestamp) - Date.now()) < 60_000, "timestamp 0 is set by the server");

    const carol = join(room);
    const history = ["alice: joined", "bob: joined", "alice: hi bob", "bob: hi alice"];
    await sees(carol.recorder, history);
    assert.deepEqual(lines(carol.recorder).slice(0, 4), history, "history first, in order");

    for (const { call, recorder } of [alice, bob, carol]) {
      call.end();
      await waitFor(() => recorder.ended, { timeoutMs: 5_000, describe: () => "the call to end after half-close" });
      assert.equal(recorder.error, null);
    }
  });

  test("chat - a message without a user is INVALID_ARGUMENT", async () => {
    const anonymous = join(uniqueName("room"));
    anonymous.call.write({ user: "", message: "who am I" });
    await waitFor(() => anonymous.recorder.ended, { timeoutMs: 5_000, describe: () => "the call to fail" });
    assert.equal(anonymous.recorder.error?.code, grpc.status.INVALID_ARGUMENT);
  });

  test("chat - `streamgate chat` sends stdin lines and prints other users' messages", async () => {
    const room = uniqueName("room");
    const watcher = join(room);
    await joined(watcher.call, watcher.recorder, "watcher");
    const child = spawn(process.execPath, [bin, "chat", "--user", "bob", "--server", server.url, "--room", room], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      child.stdin.write("hello from the terminal\n");
      await sees(watcher.recorder, ["bob: hello from the terminal"]);
      // The CLI printed the history (the watcher's join) and prints live messages of others, not its own.
      watcher.call.write({ user: "watcher", message: "welcome bob", timestamp: String(Date.now()) });
      await waitFor(() => stdout.includes("watcher: welcome bob"), {
        timeoutMs: 10_000,
        describe: () => `CLI output ${JSON.stringify(stdout)}, stderr ${JSON.stringify(stderr)}`,
      });
      assert.match(stdout, /^\[\d\d:\d\d:\d\d\] watcher: joined$/m);
      assert.match(stdout, /^\[\d\d:\d\d:\d\d\] watcher: welcome bob$/m);
      assert.doesNotMatch(stdout, /bob: hello/);
      child.stdin.end();
      assert.equal(await exited, 0, stderr);
    } finally {
      child.kill();
      watcher.call.end();
    }
    await waitFor(() => watcher.recorder.ended, { timeoutMs: 5_000, describe: () => "watcher ended" });
  });
});
