// `streamgate topics create|list|get|delete`: manage topics over Pub/Sub REST.
import { parseKeyValues, toProtoDuration } from "./args.js";
import { type CliIo, type CommandGroup, defineCommand } from "./command.js";
import { type ClientContext, clientOptions, createClientContext, jsonOption } from "./context.js";
import { formatDuration, formatFields, formatKeyValues, formatTable, writeJson } from "./output.js";
import type { Topic } from "./rest-client.js";

const createSpec = {
  path: "topics create",
  summary: "Create a topic.",
  positionals: ["NAME"],
  options: {
    label: { type: "string", multiple: true, valueName: "KEY=VALUE", description: "Label of the topic" },
    retention: {
      type: "string",
      valueName: "DURATION",
      description: "Keep messages this long (e.g. 600s, 1h, 7d)",
      defaultText: "the server's retention",
    },
    json: jsonOption,
    ...clientOptions,
  },
  examples: ["streamgate topics create orders", "streamgate topics create orders --retention 7d --label team=billing"],
} as const;

const listSpec = {
  path: "topics list",
  summary: "List the topics of the project.",
  positionals: [],
  options: { json: jsonOption, ...clientOptions },
  examples: ["streamgate topics list", "streamgate topics list --project shop --json"],
} as const;

const getSpec = {
  path: "topics get",
  summary: "Show one topic.",
  positionals: ["NAME"],
  options: { json: jsonOption, ...clientOptions },
  examples: ["streamgate topics get orders", "streamgate topics get projects/shop/topics/orders --json"],
} as const;

const deleteSpec = {
  path: "topics delete",
  summary: "Delete a topic.",
  positionals: ["NAME"],
  options: { ...clientOptions },
  examples: ["streamgate topics delete orders"],
} as const;

/** The `topics` command group. */
export const topicsGroup: CommandGroup = {
  name: "topics",
  summary: "Create, list, show and delete topics.",
  commands: {
    create: defineCommand(createSpec, async ({ values, positionals }, io) => {
      const context = createClientContext(values, io.env);
      const topic: Topic = { name: context.name("topics", positionals[0]!) };
      const labels = parseKeyValues(values.label, "--label");
      if (Object.keys(labels).length > 0) topic.labels = labels;
      if (values.retention !== undefined) {
        topic.messageRetentionDuration = toProtoDuration(values.retention, "--retention");
      }
      const created = await context.client.createTopic(topic);
      if (values.json) writeJson(io, created);
      else io.stdout.write(`created topic ${created.name ?? topic.name}\n`);
      return 0;
    }),
    list: defineCommand(listSpec, async ({ values }, io) => {
      const context = createClientContext(values, io.env);
      const topics = await context.client.listTopics(context.project);
      if (values.json) writeJson(io, topics);
      else if (topics.length === 0) io.stderr.write(`no topics in project ${context.project}\n`);
      else {
        const rows = topics.map((topic) => [
          context.display(topic.name),
          formatDuration(topic.messageRetentionDuration),
          formatKeyValues(topic.labels),
        ]);
        io.stdout.write(formatTable(["TOPIC", "RETENTION", "LABELS"], rows));
      }
      return 0;
    }),
    get: defineCommand(getSpec, async ({ values, positionals }, io) => {
      const context = createClientContext(values, io.env);
      const topic = await context.client.getTopic(context.name("topics", positionals[0]!));
      if (values.json) writeJson(io, topic);
      else writeTopic(io, topic, context);
      return 0;
    }),
    delete: defineCommand(deleteSpec, async ({ values, positionals }, io) => {
      const context = createClientContext(values, io.env);
      const name = context.name("topics", positionals[0]!);
      await context.client.deleteTopic(name);
      io.stdout.write(`deleted topic ${name}\n`);
      return 0;
    }),
  },
};

function writeTopic(io: CliIo, topic: Topic, context: ClientContext): void {
  const known = new Set(["name", "labels", "messageRetentionDuration"]);
  const extra = Object.entries(topic)
    .filter(([key, value]) => !known.has(key) && value !== undefined && value !== null)
    .map(([key, value]) => [key, typeof value === "string" ? value : JSON.stringify(value)] as const);
  io.stdout.write(
    formatFields([
      ["name", topic.name],
      ["id", context.display(topic.name)],
      ["retention", formatDuration(topic.messageRetentionDuration)],
      ["labels", formatKeyValues(topic.labels)],
      ...extra,
    ]),
  );
}
