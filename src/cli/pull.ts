// `streamgate pull SUBSCRIPTION`: pull messages once (optionally long-polling) and optionally ack them.
import { parseInteger } from "./args.js";
import { defineCommand } from "./command.js";
import { clientOptions, createClientContext } from "./context.js";
import { formatData, formatKeyValues, formatTable, writeJson } from "./output.js";
import type { ReceivedMessage } from "./rest-client.js";

const pullSpec = {
  path: "pull",
  summary: "Pull messages from a subscription and print them.",
  details:
    "Prints message id, publish time, attributes and data (UTF-8 text when printable, else base64:...).\n" +
    "Without --ack the messages are redelivered once their ack deadline passes.",
  positionals: ["SUBSCRIPTION"],
  options: {
    max: { type: "string", valueName: "N", description: "Most messages to pull (1-1000)", defaultText: "10" },
    ack: { type: "boolean", description: "Acknowledge the messages after printing them" },
    wait: {
      type: "boolean",
      description: "Wait for messages if there are none (long poll) instead of returning at once",
    },
    json: { type: "boolean", description: "Print the received messages as a JSON array (data stays base64)" },
    ...clientOptions,
  },
  examples: [
    "streamgate pull orders-worker",
    "streamgate pull orders-worker --max 100 --ack",
    "streamgate pull orders-worker --wait --json",
  ],
} as const;

/** The `pull` command. */
export const pullCommand = defineCommand(pullSpec, async ({ values, positionals }, io) => {
  const maxMessages = values.max === undefined ? 10 : parseInteger(values.max, "--max", 1, 1000);
  const context = createClientContext(values, io.env);
  const subscription = context.name("subscriptions", positionals[0]!);
  const received = await context.client.pull(subscription, maxMessages, values.wait !== true);
  if (values.json) writeJson(io, received);
  else if (received.length === 0) io.stderr.write("no messages\n");
  else io.stdout.write(formatReceived(received));
  if (values.ack && received.length > 0) {
    await context.client.acknowledge(
      subscription,
      received.map((item) => item.ackId),
    );
    if (!values.json) io.stderr.write(`acknowledged ${received.length} message(s)\n`);
  }
  return 0;
});

/** A table of received messages; ordering key, offset and attempt columns appear only when some message has one. */
export function formatReceived(received: readonly ReceivedMessage[]): string {
  const columns: { header: string; cell: (item: ReceivedMessage) => string }[] = [
    { header: "MESSAGE ID", cell: (item) => item.message.messageId },
  ];
  if (received.some((item) => item.message.offset !== undefined)) {
    columns.push({ header: "OFFSET", cell: (item) => String(item.message.offset ?? "") });
  }
  columns.push({ header: "PUBLISH TIME", cell: (item) => item.message.publishTime ?? "" });
  if (received.some((item) => item.message.orderingKey)) {
    columns.push({ header: "ORDERING KEY", cell: (item) => item.message.orderingKey ?? "" });
  }
  if (received.some((item) => item.deliveryAttempt !== undefined && item.deliveryAttempt > 0)) {
    columns.push({ header: "ATTEMPT", cell: (item) => String(item.deliveryAttempt ?? "") });
  }
  columns.push(
    { header: "ATTRIBUTES", cell: (item) => formatKeyValues(item.message.attributes) },
    { header: "DATA", cell: (item) => formatData(item.message.data) },
  );
  return formatTable(
    columns.map((column) => column.header),
    received.map((item) => columns.map((column) => column.cell(item))),
  );
}
