// `streamgate snapshots create|list|get|delete`: manage snapshots of subscriptions over Pub/Sub REST.
import { parseKeyValues, UsageError } from "./args.js";
import { type CommandGroup, defineCommand } from "./command.js";
import { clientOptions, createClientContext, jsonOption } from "./context.js";
import { formatFields, formatKeyValues, formatTable, writeJson } from "./output.js";

const createSpec = {
  path: "snapshots create",
  summary: "Snapshot a subscription's acknowledgement state (to seek back to later).",
  positionals: ["NAME"],
  options: {
    subscription: { type: "string", valueName: "SUBSCRIPTION", description: "Subscription to snapshot (required)" },
    label: { type: "string", multiple: true, valueName: "KEY=VALUE", description: "Label of the snapshot" },
    json: jsonOption,
    ...clientOptions,
  },
  examples: ["streamgate snapshots create before-deploy --subscription orders-worker"],
} as const;

const listSpec = {
  path: "snapshots list",
  summary: "List the snapshots of the project.",
  positionals: [],
  options: { json: jsonOption, ...clientOptions },
  examples: ["streamgate snapshots list"],
} as const;

const getSpec = {
  path: "snapshots get",
  summary: "Show one snapshot.",
  positionals: ["NAME"],
  options: { json: jsonOption, ...clientOptions },
  examples: ["streamgate snapshots get before-deploy"],
} as const;

const deleteSpec = {
  path: "snapshots delete",
  summary: "Delete a snapshot.",
  positionals: ["NAME"],
  options: { ...clientOptions },
  examples: ["streamgate snapshots delete before-deploy"],
} as const;

/** The `snapshots` command group. */
export const snapshotsGroup: CommandGroup = {
  name: "snapshots",
  summary: "Create, list, show and delete snapshots (seek targets).",
  commands: {
    create: defineCommand(createSpec, async ({ values, positionals }, io) => {
      if (values.subscription === undefined) {
        throw new UsageError("missing --subscription (see streamgate snapshots create --help)");
      }
      const context = createClientContext(values, io.env);
      const name = context.name("snapshots", positionals[0]!);
      const labels = parseKeyValues(values.label, "--label");
      const subscription = context.name("subscriptions", values.subscription);
      const created = await context.client.createSnapshot(
        name,
        subscription,
        Object.keys(labels).length > 0 ? labels : undefined,
      );
      if (values.json) writeJson(io, created);
      else io.stdout.write(`created snapshot ${created.name ?? name} of ${subscription}\n`);
      return 0;
    }),
    list: defineCommand(listSpec, async ({ values }, io) => {
      const context = createClientContext(values, io.env);
      const snapshots = await context.client.listSnapshots(context.project);
      if (values.json) writeJson(io, snapshots);
      else if (snapshots.length === 0) io.stderr.write(`no snapshots in project ${context.project}\n`);
      else {
        const rows = snapshots.map((snapshot) => [
          context.display(snapshot.name),
          context.display(snapshot.topic),
          snapshot.expireTime ?? "",
          formatKeyValues(snapshot.labels),
        ]);
        io.stdout.write(formatTable(["SNAPSHOT", "TOPIC", "EXPIRES", "LABELS"], rows));
      }
      return 0;
    }),
    get: defineCommand(getSpec, async ({ values, positionals }, io) => {
      const context = createClientContext(values, io.env);
      const snapshot = await context.client.getSnapshot(context.name("snapshots", positionals[0]!));
      if (values.json) writeJson(io, snapshot);
      else {
        io.stdout.write(
          formatFields([
            ["name", snapshot.name],
            ["topic", snapshot.topic],
            ["expires", snapshot.expireTime],
            ["labels", formatKeyValues(snapshot.labels)],
          ]),
        );
      }
      return 0;
    }),
    delete: defineCommand(deleteSpec, async ({ values, positionals }, io) => {
      const context = createClientContext(values, io.env);
      const name = context.name("snapshots", positionals[0]!);
      await context.client.deleteSnapshot(name);
      io.stdout.write(`deleted snapshot ${name}\n`);
      return 0;
    }),
  },
};
