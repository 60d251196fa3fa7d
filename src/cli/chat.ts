// `streamgate chat --user NAME`: the seeds' chat over chat.ChatService/ChatStream (gRPC over HTTP/2, via connect-node).
import { createInterface } from "node:readline";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { codeName } from "../errors/index.js";
import { type ChatMessage, ChatService } from "../gen/chat/chat_pb.js";
import { CliError, UsageError } from "./args.js";
import { defineCommand } from "./command.js";
import { clientOptions, resolveConnection } from "./context.js";

const chatSpec = {
  path: "chat",
  summary: "Chat with other users through chat.ChatService (backed by a topic).",
  details:
    "Every non-empty line of stdin is sent as a message from --user; messages of other users are\n" +
    "printed as `[hh:mm:ss] user: message`, starting with the room's recent history (last 100).\n" +
    "Talks gRPC (HTTP/2) to --server; end stdin (Ctrl-D) to leave.",
  positionals: [],
  options: {
    user: { type: "string", valueName: "NAME", description: "Your name in the room (required)" },
    room: {
      type: "string",
      valueName: "TOPIC",
      description: "Room: a topic id in project streamgate, or a full topic name",
      defaultText: "chat (projects/streamgate/topics/chat)",
    },
    server: clientOptions.server,
    token: clientOptions.token,
    context: clientOptions.context,
  },
  examples: ["streamgate chat --user alice", "streamgate chat --user bob --server http://localhost:8080 --room lobby"],
} as const;

/** `[hh:mm:ss] user: message` in local time. */
export function formatChatLine(message: ChatMessage): string {
  const time = new Date(Number(message.timestamp));
  const pad = (value: number) => String(value).padStart(2, "0");
  return `[${pad(time.getHours())}:${pad(time.getMinutes())}:${pad(time.getSeconds())}] ${message.user}: ${message.message}`;
}

/** The `chat` command. */
export const chatCommand = defineCommand(chatSpec, async ({ values }, io) => {
  const user = values.user?.trim() ?? "";
  if (user === "") throw new UsageError("--user is required (see streamgate chat --help)");
  const { baseUrl, token } = resolveConnection(values, io.env);
  const headers = new Headers();
  if (values.room !== undefined) headers.set("chat-room", values.room);
  if (token !== undefined && token !== "") headers.set("authorization", `Bearer ${token}`);
  const client = createClient(ChatService, createGrpcTransport({ baseUrl }));

  async function* outgoing() {
    if (io.stdin.isTTY) io.stderr.write(`joined as ${user}; type a message and press Enter, Ctrl-D to leave\n`);
    const lines = createInterface({ input: io.stdin, crlfDelay: Number.POSITIVE_INFINITY });
    for await (const line of lines) {
      if (line.trim() === "") continue;
      yield { user, message: line, timestamp: BigInt(Date.now()) };
    }
  }

  try {
    for await (const message of client.chatStream(outgoing(), { headers })) {
      if (message.user !== user) io.stdout.write(`${formatChatLine(message)}\n`);
    }
  } catch (error) {
    if (error instanceof ConnectError)
      // The same status names as every other command (PERMISSION_DENIED, not connect's PermissionDenied).
      throw new CliError(`${codeName(error.code)}: ${error.rawMessage}`);
    throw error;
  }
  return 0;
});
