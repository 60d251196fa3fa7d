// `streamgate tail TOPIC`: follows a topic's live stream through streamgate/client (reconnects and resumes on its own).
import {
  createStreamClient,
  StreamClientError,
  type StreamFrom,
  type StreamMessage,
  type StreamTransport,
} from "../client/index.js";
import { CliError, parseInteger, UsageError } from "./args.js";
import { defineCommand } from "./command.js";
import { clientOptions, resolveConnection, resolveName } from "./context.js";
import { formatData, formatKeyValues } from "./output.js";

const transports: readonly StreamTransport[] = ["sse", "websocket", "longpoll"];

const tailSpec = {
  path: "tail",
  summary: "Follow a topic's events live (SSE, WebSocket or long poll), resuming after disconnects.",
  details:
    "Prints one line per event: offset, publish time, attributes (k=v, or -) and data (UTF-8 text when printable,\n" +
    "else base64:...). Reconnects with backoff and resumes after the last offset printed, so nothing is\n" +
    "repeated or skipped. Runs until Ctrl-C, or until --count events were printed.",
  positionals: ["TOPIC"],
  options: {
    from: {
      type: "string",
      valueName: "POSITION",
      description: "earliest, latest, an offset (print what follows it) or an RFC 3339 time",
      defaultText: "latest",
    },
    filter: {
      type: "string",
      valueName: "FILTER",
      description: 'Pub/Sub filter on attributes, e.g. attributes.kind="a"',
    },
    transport: { type: "string", valueName: "NAME", description: "sse, websocket or longpoll", defaultText: "sse" },
    count: { type: "string", valueName: "N", description: "Exit after N events" },
    json: {
      type: "boolean",
      description: "Print each event as one line of JSON (data base64), as the server sends it",
    },
    ...clientOptions,
  },
  examples: [
    "streamgate tail orders",
    "streamgate tail orders --from earliest --count 10",
    "streamgate tail orders --from 2024-05-01T12:00:00Z --filter 'attributes.kind = \"created\"' --json",
    "streamgate tail orders --transport longpoll",
  ],
} as const;

/** earliest | latest | offset | RFC 3339 time. */
export function parseTailFrom(text: string): StreamFrom {
  if (text === "earliest" || text === "latest") return text;
  if (/^\d{1,15}$/.test(text)) return Number(text);
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.test(text)) {
    const time = new Date(text);
    if (!Number.isNaN(time.getTime())) return time;
  }
  throw new UsageError(`--from: expected earliest, latest, an offset or an RFC 3339 time, got ${JSON.stringify(text)}`);
}

/** `OFFSET  TIME  ATTRIBUTES  DATA` on one line. */
export function formatTailLine(message: StreamMessage): string {
  const attributes = formatKeyValues(message.attributes) || "-";
  return `${message.offset}  ${message.publishTime.toISOString()}  ${attributes}  ${formatData(base64(message.data))}`;
}

/** The documented JSON form of a message (offset as a string, data base64). */
export function formatTailJson(message: StreamMessage): string {
  return JSON.stringify({
    offset: String(message.offset),
    messageId: message.messageId,
    publishTime: message.publishTime.toISOString(),
    attributes: message.attributes,
    orderingKey: message.orderingKey,
    data: base64(message.data),
  });
}

function base64(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64");
}

/** The `tail` command. */
export const tailCommand = defineCommand(tailSpec, async ({ values, positionals }, io) => {
  const transport = values.transport ?? "sse";
  if (!(transports as readonly string[]).includes(transport)) {
    throw new UsageError(`--transport: expected sse, websocket or longpoll, got ${JSON.stringify(transport)}`);
  }
  const from = parseTailFrom(values.from ?? "latest");
  const count = values.count === undefined ? Number.POSITIVE_INFINITY : parseInteger(values.count, "--count", 1);
  const { baseUrl, token, project } = resolveConnection(values, io.env);
  const topic = resolveName("topics", positionals[0]!, project);
  const client = createStreamClient({
    baseUrl,
    transport: transport as StreamTransport,
    ...(token === undefined ? {} : { token }),
  });
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  let printed = 0;
  try {
    for await (const message of client.subscribe(topic, {
      from,
      filter: values.filter ?? "",
      signal: controller.signal,
      onGap: (gap) =>
        io.stderr.write(`gap: ${gap.lost} message(s) before offset ${gap.firstAvailable} are no longer retained\n`),
    })) {
      io.stdout.write(`${values.json ? formatTailJson(message) : formatTailLine(message)}\n`);
      if (++printed >= count) break;
    }
  } catch (error) {
    if (error instanceof StreamClientError) {
      // The client's message may already start with the status; say it once.
      const message = error.message.startsWith(`${error.status}:`)
        ? error.message
        : `${error.status}: ${error.message}`;
      throw new CliError(message);
    }
    throw error;
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    await client.close();
  }
  return 0;
});
