// endGrpc with closeUnread over real node:http2 sockets: a call answered before its body was read ends, stream and connection.
import assert from "node:assert/strict";
import { once } from "node:events";
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect,
  createServer,
  type Http2Server,
  type Http2Session,
  type ServerHttp2Stream,
} from "node:http2";
import type { Socket } from "node:net";
import { afterEach, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, StreamgateError } from "../../errors/index.js";
import { endGrpc } from "./grpc-stream.js";

/** A bare HTTP/2 server whose handler answers each stream; it counts open sockets and keeps its streams. */
interface Fixture {
  server: Http2Server;
  url: string;
  sockets: Set<Socket>;
  sessions: Set<Http2Session>;
  streams: ServerHttp2Stream[];
}

let fixture: Fixture | null = null;

async function start(handler: (stream: ServerHttp2Stream) => void): Promise<Fixture> {
  const server = createServer();
  const sockets = new Set<Socket>();
  const sessions = new Set<Http2Session>();
  const streams: ServerHttp2Stream[] = [];
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  server.on("stream", (stream) => {
    stream.on("error", () => undefined);
    streams.push(stream);
    handler(stream);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  assert.ok(address !== null && typeof address === "object");
  fixture = { server, url: `http://127.0.0.1:${address.port}`, sockets, sessions, streams };
  return fixture;
}

afterEach(() => {
  if (fixture === null) return;
  for (const session of fixture.sessions) session.destroy();
  for (const socket of fixture.sockets) socket.destroy();
  fixture.server.close();
  fixture = null;
});

/** What the client saw of one call. */
interface Answer {
  status: string | undefined;
  message: string | undefined;
  rstCode: number;
}

function call(
  session: ClientHttp2Session,
  body: Buffer,
  endBody: boolean,
): { stream: ClientHttp2Stream; answer: Promise<Answer> } {
  const stream = session.request(
    { ":method": "POST", ":path": "/x.Y/Z", "content-type": "application/grpc", te: "trailers" },
    { endStream: false },
  );
  stream.on("error", () => undefined);
  let status: string | undefined;
  let message: string | undefined;
  const take = (headers: Record<string, unknown>) => {
    if (headers["grpc-status"] !== undefined) status = String(headers["grpc-status"]);
    if (headers["grpc-message"] !== undefined) message = String(headers["grpc-message"]);
  };
  stream.on("response", take);
  stream.on("trailers", take);
  stream.resume();
  if (endBody) stream.end(body);
  else stream.write(body);
  const answer = once(stream, "close").then(() => ({ status, message, rstCode: stream.rstCode ?? -1 }));
  return { stream, answer };
}

/** Waits until `done()` holds, or fails after `timeoutMs` with `what`. */
async function until(done: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) assert.fail(what());
    await sleep(10);
  }
}

/** The answered server stream is destroyed, and once the client closes `session` its connection closes too. */
async function assertReleased(
  { sockets, streams }: Pick<Fixture, "sockets" | "streams">,
  session: ClientHttp2Session,
): Promise<void> {
  await until(
    () => streams[0]?.destroyed === true,
    2_000,
    () => `the server stream stays (${streams[0]?.readableLength} bytes unread)`,
  );
  session.close();
  await until(
    () => sockets.size === 0,
    2_000,
    () => `${sockets.size} connection(s) still open on the server`,
  );
}

/** A handler that reads a little of the body, keeps its reader attached, then answers as `answer` says. */
function readSomeThenAnswer(waitMs: number, answer: (stream: ServerHttp2Stream) => void) {
  return (stream: ServerHttp2Stream) => {
    // Like the frame channel after a refused first frame: a `readable` listener stays, nothing reads any more.
    stream.on("readable", () => undefined);
    setTimeout(() => {
      stream.read(1_000);
      answer(stream);
    }, waitMs);
  };
}

const refused = () => new StreamgateError(Code.INVALID_ARGUMENT, "the first frame must be Attach");

describe("grpc-stream closeUnread", () => {
  it("grpc-stream - a refused call whose whole body arrived unread is destroyed and its connection closes", async () => {
    // 48 KiB: three DATA frames, all inside the flow-control window, so the body has ended before the answer.
    const { url, sockets, streams } = await start(
      readSomeThenAnswer(100, (stream) => endGrpc(stream, refused(), true)),
    );
    const session = connect(url);
    session.on("error", () => undefined);
    const { answer } = call(session, Buffer.alloc(48 * 1024, 7), true);
    const seen = await answer;
    assert.equal(seen.status, String(Code.INVALID_ARGUMENT));
    assert.equal(decodeURIComponent(seen.message ?? ""), "the first frame must be Attach");
    await assertReleased({ sockets, streams }, session);
  });

  it("grpc-stream - an OK answer while the body still arrives resets the stream and reads the rest out", async () => {
    const { url, sockets, streams } = await start(readSomeThenAnswer(100, (stream) => endGrpc(stream, null, true)));
    const session = connect(url);
    session.on("error", () => undefined);
    // The body does not end: the client is still sending when the status comes.
    const { answer } = call(session, Buffer.alloc(40 * 1024, 7), false);
    const seen = await answer;
    assert.equal(seen.status, "0");
    await assertReleased({ sockets, streams }, session);
  });

  it("grpc-stream - an error while a body beyond the flow-control window arrives ends the call with its status", async () => {
    const { url, sockets, streams } = await start(readSomeThenAnswer(50, (stream) => endGrpc(stream, refused(), true)));
    const session = connect(url);
    session.on("error", () => undefined);
    // 1 MiB, ended: the client's upload waits on flow control when the status comes, so only a reset ends it.
    const { answer } = call(session, Buffer.alloc(1024 * 1024, 7), true);
    const seen = await answer;
    assert.equal(seen.status, String(Code.INVALID_ARGUMENT));
    await until(
      () => streams[0]?.destroyed === true,
      2_000,
      () => "the server stream stays",
    );
    session.close();
    await until(
      () => sockets.size === 0,
      2_000,
      () => `${sockets.size} connection(s) still open on the server`,
    );
  });
});
