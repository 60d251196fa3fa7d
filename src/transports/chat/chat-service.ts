// chat.ChatService (the seeds' sample) on top of a topic: every message is published; every client streams the topic.
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { parseTopicName, validateProjectId } from "../../broker/index.js";
import type { StoredMessage, TopicName } from "../../broker/types.js";
import type { Engine } from "../../engines/engine.js";
import { Code, StreamgateError } from "../../errors/index.js";
import { type ChatMessage, ChatMessageSchema, type ChatService } from "../../gen/chat/chat_pb.js";
import { OutputQueue, type StreamHub, withResumeHint } from "../../streams/index.js";

/** Options of the chat service. */
export interface ChatServiceOptions {
  engine: Engine;
  hub: StreamHub;
  /** Project of rooms named by a short id. Default "streamgate". */
  project?: string;
  /** Room (topic id or full topic name) used when the call has no `chat-room` header. Default "chat". */
  defaultRoom?: string;
  /** Messages of history a joining client receives before live ones. Default 100. */
  historyMessages?: number;
}

/** Request header naming the room: a topic id in the chat project, or a full topic name. */
export const CHAT_ROOM_HEADER = "chat-room";
/** Longest user name, in characters. */
const MAX_USER_LENGTH = 128;
/** Longest chat message, in UTF-8 bytes. */
const MAX_TEXT_BYTES = 64 * 1024;

/**
 * ChatStream: each incoming ChatMessage is published to the room's topic (data = JSON
 * `{user, message, timestamp}`, attribute `user`); the response stream carries the last
 * `historyMessages` messages of the topic, then every new one (the sender's own included).
 * `timestamp` is milliseconds since the Unix epoch; 0 is replaced by the server's clock.
 * A client half-close leaves the room: the call ends once its messages are published.
 */
export function createChatService(options: ChatServiceOptions): ServiceImpl<typeof ChatService> {
  const { engine, hub } = options;
  const project = options.project ?? "streamgate";
  const defaultRoom = options.defaultRoom ?? "chat";
  const historyMessages = options.historyMessages ?? 100;
  validateProjectId(project, "project");

  const roomTopic = (room: string): TopicName => {
    const name = room.includes("/") ? room : `projects/${project}/topics/${room}`;
    parseTopicName(name, CHAT_ROOM_HEADER);
    return name;
  };
  const ensureTopic = async (topic: TopicName) => {
    try {
      await engine.getTopic(topic);
    } catch (error) {
      if (!(error instanceof StreamgateError && error.code === Code.NOT_FOUND)) throw error;
      await engine.createTopic({ name: topic }).catch((createError: unknown) => {
        if (!(createError instanceof StreamgateError && createError.code === Code.ALREADY_EXISTS)) throw createError;
      });
    }
  };

  return {
    async *chatStream(requests, context) {
      const topic = roomTopic(context.requestHeader.get(CHAT_ROOM_HEADER) ?? defaultRoom);
      await ensureTopic(topic);
      const stats = await engine.topicStats(topic);
      const first = Math.max(stats.firstOffset, stats.nextOffset - historyMessages);
      const stop = new AbortController();
      const output = new OutputQueue<ChatMessage>({ maxQueued: 64, maxForced: 64 });
      // Server shutdown or drain: end with its UNAVAILABLE so the client reconnects.
      const onAbort = () => {
        stop.abort();
        output.fail(context.signal.reason);
      };
      context.signal.addEventListener("abort", onAbort, { once: true });
      const feed = await hub.subscribe({
        topic,
        from: { kind: "after", offset: first - 1 },
        filter: "",
        signal: stop.signal,
      });

      const pump = (async () => {
        try {
          for await (const event of feed) {
            if (event.kind !== "message") continue;
            if (!(await output.push(chatMessageFromStored(event.message)))) break;
          }
        } catch (error) {
          if (!stop.signal.aborted) output.fail(withResumeHint(error, feed.lastOffset));
        }
      })();
      const read = (async () => {
        try {
          for await (const message of requests) {
            await engine.publish(topic, [toInput(message)]);
          }
          output.end();
        } catch (error) {
          output.fail(error);
        }
      })();

      try {
        yield* output.drain();
      } finally {
        context.signal.removeEventListener("abort", onAbort);
        stop.abort();
        output.end();
        await Promise.allSettled([pump, read]);
      }
    },
  };
}

function toInput(message: ChatMessage) {
  const user = message.user.trim();
  if (user === "") throw invalid("user", "is required");
  if (user.length > MAX_USER_LENGTH) throw invalid("user", `must be at most ${MAX_USER_LENGTH} characters`);
  if (Buffer.byteLength(message.message) > MAX_TEXT_BYTES) {
    throw invalid("message", `must be at most ${MAX_TEXT_BYTES} bytes`);
  }
  const timestamp = message.timestamp === 0n ? Date.now() : Number(message.timestamp);
  const data = Buffer.from(JSON.stringify({ user, message: message.message, timestamp }));
  return { data, attributes: { user }, orderingKey: "" };
}

/** Decodes a chat message; anything else on the topic (e.g. `streamgate publish`) shows as text from its `user` attribute. */
export function chatMessageFromStored(stored: StoredMessage): ChatMessage {
  const text = Buffer.from(stored.data).toString("utf8");
  try {
    const parsed = JSON.parse(text) as { user?: unknown; message?: unknown; timestamp?: unknown };
    if (typeof parsed.user === "string" && typeof parsed.message === "string") {
      const timestamp = typeof parsed.timestamp === "number" ? parsed.timestamp : stored.publishTimeMs;
      return create(ChatMessageSchema, { user: parsed.user, message: parsed.message, timestamp: BigInt(timestamp) });
    }
  } catch {
    // Not JSON: shown as plain text below.
  }
  return create(ChatMessageSchema, {
    user: stored.attributes.user ?? "",
    message: text,
    timestamp: BigInt(stored.publishTimeMs),
  });
}

function invalid(field: string, message: string): StreamgateError {
  return new StreamgateError(Code.INVALID_ARGUMENT, `${field}: ${message}`, {
    reason: "INVALID_ARGUMENT",
    details: { field },
  });
}
