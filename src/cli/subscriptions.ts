// `streamgate subscriptions create|list|get|delete`: manage subscriptions over Pub/Sub REST.
import { parseInteger, parseKeyValues, toProtoDuration, UsageError } from "./args.js";
import { type CliIo, type CommandArgs, type CommandGroup, defineCommand } from "./command.js";
import { type ClientContext, clientOptions, createClientContext, jsonOption } from "./context.js";
import { formatDuration, formatFields, formatKeyValues, formatTable, writeJson } from "./output.js";
import type { Subscription } from "./rest-client.js";

const createSpec = {
  path: "subscriptions create",
  summary: "Create a subscription to a topic.",
  positionals: ["NAME"],
  options: {
    topic: { type: "string", valueName: "TOPIC", description: "Topic to subscribe to (required)" },
    "ack-deadline": {
      type: "string",
      valueName: "SECONDS",
      description: "Seconds a pulled message stays leased (10-600)",
      defaultText: "10",
    },
    filter: {
      type: "string",
      valueName: "EXPR",
      description: 'Pub/Sub filter on attributes, e.g. attributes.kind="a"',
    },
    "dead-letter-topic": { type: "string", valueName: "TOPIC", description: "Topic for messages that keep failing" },
    "max-delivery-attempts": {
      type: "string",
      valueName: "N",
      description: "Attempts before dead-lettering (5-100; needs --dead-letter-topic)",
      defaultText: "5",
    },
    ordering: { type: "boolean", description: "Deliver messages with the same ordering key in order" },
    "retain-acked": { type: "boolean", description: "Keep acknowledged messages (for seek to a time)" },
    retention: {
      type: "string",
      valueName: "DURATION",
      description: "Keep unacked messages this long",
      defaultText: "7d",
    },
    "min-backoff": {
      type: "string",
      valueName: "DURATION",
      description: "Retry policy minimum backoff",
      defaultText: "10s",
    },
    "max-backoff": {
      type: "string",
      valueName: "DURATION",
      description: "Retry policy maximum backoff",
      defaultText: "600s",
    },
    "push-endpoint": { type: "string", valueName: "URL", description: "Push messages to this URL instead of pull" },
    expiration: {
      type: "string",
      valueName: "DURATION|never",
      description: "Delete the subscription after this much inactivity",
      defaultText: "31d",
    },
    label: { type: "string", multiple: true, valueName: "KEY=VALUE", description: "Label of the subscription" },
    json: jsonOption,
    ...clientOptions,
  },
  examples: [
    "streamgate subscriptions create orders-worker --topic orders",
    "streamgate subscriptions create audit --topic orders --retain-acked --ack-deadline 60 --expiration never",
    "streamgate subscriptions create risky --topic orders --dead-letter-topic orders-dead --max-delivery-attempts 10",
    "streamgate subscriptions create orders-eu --topic orders --filter 'attributes.region = \"eu\"'",
  ],
} as const;

const listSpec = {
  path: "subscriptions list",
  summary: "List the subscriptions of the project.",
  positionals: [],
  options: { json: jsonOption, ...clientOptions },
  examples: ["streamgate subscriptions list", "streamgate subscriptions list --json"],
} as const;

const getSpec = {
  path: "subscriptions get",
  summary: "Show one subscription.",
  positionals: ["NAME"],
  options: { json: jsonOption, ...clientOptions },
  examples: ["streamgate subscriptions get orders-worker"],
} as const;

const deleteSpec = {
  path: "subscriptions delete",
  summary: "Delete a subscription and its backlog.",
  positionals: ["NAME"],
  options: { ...clientOptions },
  examples: ["streamgate subscriptions delete orders-worker"],
} as const;

/** The `subscriptions` command group. */
export const subscriptionsGroup: CommandGroup = {
  name: "subscriptions",
  summary: "Create, list, show and delete subscriptions.",
  commands: {
    create: defineCommand(createSpec, async (args, io) => {
      const context = createClientContext(args.values, io.env);
      const name = context.name("subscriptions", args.positionals[0]!);
      const created = await context.client.createSubscription(name, subscriptionFromFlags(args, context));
      if (args.values.json) writeJson(io, created);
      else io.stdout.write(`created subscription ${created.name ?? name}\n`);
      return 0;
    }),
    list: defineCommand(listSpec, async ({ values }, io) => {
      const context = createClientContext(values, io.env);
      const subscriptions = await context.client.listSubscriptions(context.project);
      if (values.json) writeJson(io, subscriptions);
      else if (subscriptions.length === 0) io.stderr.write(`no subscriptions in project ${context.project}\n`);
      else {
        const rows = subscriptions.map((subscription) => [
          context.display(subscription.name),
          context.display(subscription.topic),
          subscription.ackDeadlineSeconds === undefined ? "" : `${subscription.ackDeadlineSeconds}s`,
          subscription.pushConfig?.pushEndpoint ? "push" : "pull",
          features(subscription).join(", "),
        ]);
        io.stdout.write(formatTable(["SUBSCRIPTION", "TOPIC", "ACK DEADLINE", "DELIVERY", "OPTIONS"], rows));
      }
      return 0;
    }),
    get: defineCommand(getSpec, async ({ values, positionals }, io) => {
      const context = createClientContext(values, io.env);
      const subscription = await context.client.getSubscription(context.name("subscriptions", positionals[0]!));
      if (values.json) writeJson(io, subscription);
      else writeSubscription(io, subscription);
      return 0;
    }),
    delete: defineCommand(deleteSpec, async ({ values, positionals }, io) => {
      const context = createClientContext(values, io.env);
      const name = context.name("subscriptions", positionals[0]!);
      await context.client.deleteSubscription(name);
      io.stdout.write(`deleted subscription ${name}\n`);
      return 0;
    }),
  },
};

/** The REST body of `subscriptions create`; only flags that were given are sent, so server defaults apply. */
function subscriptionFromFlags(args: CommandArgs<typeof createSpec>, context: ClientContext): Subscription {
  const { values } = args;
  if (values.topic === undefined) throw new UsageError("missing --topic (see streamgate subscriptions create --help)");
  const body: Subscription = { topic: context.name("topics", values.topic) };
  if (values["ack-deadline"] !== undefined) {
    body.ackDeadlineSeconds = parseInteger(values["ack-deadline"], "--ack-deadline", 0, 600);
  }
  if (values.filter !== undefined) body.filter = values.filter;
  if (values["max-delivery-attempts"] !== undefined && values["dead-letter-topic"] === undefined) {
    throw new UsageError("--max-delivery-attempts needs --dead-letter-topic");
  }
  if (values["dead-letter-topic"] !== undefined) {
    body.deadLetterPolicy = { deadLetterTopic: context.name("topics", values["dead-letter-topic"]) };
    if (values["max-delivery-attempts"] !== undefined) {
      body.deadLetterPolicy.maxDeliveryAttempts = parseInteger(
        values["max-delivery-attempts"],
        "--max-delivery-attempts",
      );
    }
  }
  if (values["min-backoff"] !== undefined || values["max-backoff"] !== undefined) {
    body.retryPolicy = {};
    if (values["min-backoff"] !== undefined) {
      body.retryPolicy.minimumBackoff = toProtoDuration(values["min-backoff"], "--min-backoff");
    }
    if (values["max-backoff"] !== undefined) {
      body.retryPolicy.maximumBackoff = toProtoDuration(values["max-backoff"], "--max-backoff");
    }
  }
  if (values.ordering) body.enableMessageOrdering = true;
  if (values["retain-acked"]) body.retainAckedMessages = true;
  if (values.retention !== undefined) body.messageRetentionDuration = toProtoDuration(values.retention, "--retention");
  if (values.expiration !== undefined) {
    // A policy without ttl means "never expires"; an empty ttl string is not valid Duration JSON.
    const never = values.expiration.toLowerCase() === "never";
    body.expirationPolicy = never ? {} : { ttl: toProtoDuration(values.expiration, "--expiration") };
  }
  if (values["push-endpoint"] !== undefined) body.pushConfig = { pushEndpoint: values["push-endpoint"] };
  const labels = parseKeyValues(values.label, "--label");
  if (Object.keys(labels).length > 0) body.labels = labels;
  return body;
}

function features(subscription: Subscription): string[] {
  const list: string[] = [];
  if (subscription.filter) list.push("filter");
  if (subscription.enableMessageOrdering) list.push("ordering");
  if (subscription.retainAckedMessages) list.push("retain-acked");
  if (subscription.deadLetterPolicy?.deadLetterTopic) list.push("dead-letter");
  return list;
}

function writeSubscription(io: CliIo, subscription: Subscription): void {
  const deadLetter = subscription.deadLetterPolicy;
  const retry = subscription.retryPolicy;
  const ttl = subscription.expirationPolicy?.ttl;
  io.stdout.write(
    formatFields([
      ["name", subscription.name],
      ["topic", subscription.topic],
      ["ack deadline", subscription.ackDeadlineSeconds === undefined ? "" : `${subscription.ackDeadlineSeconds}s`],
      ["filter", subscription.filter],
      ["delivery", subscription.pushConfig?.pushEndpoint ? `push to ${subscription.pushConfig.pushEndpoint}` : "pull"],
      ["ordering", subscription.enableMessageOrdering ? "enabled" : ""],
      ["retain acked", subscription.retainAckedMessages ? "yes" : ""],
      ["retention", formatDuration(subscription.messageRetentionDuration)],
      [
        "retry backoff",
        retry ? `${formatDuration(retry.minimumBackoff)}..${formatDuration(retry.maximumBackoff)}` : "",
      ],
      [
        "dead letter",
        deadLetter?.deadLetterTopic
          ? `${deadLetter.deadLetterTopic} after ${deadLetter.maxDeliveryAttempts ?? 5} attempts`
          : "",
      ],
      ["expiration", subscription.expirationPolicy ? (ttl ? formatDuration(ttl) : "never") : ""],
      ["labels", formatKeyValues(subscription.labels)],
    ]),
  );
}
