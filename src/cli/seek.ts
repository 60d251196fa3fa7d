// `streamgate seek SUBSCRIPTION --time T | --snapshot S`: replay or skip messages of a subscription.
import { UsageError } from "./args.js";
import { defineCommand } from "./command.js";
import { clientOptions, createClientContext } from "./context.js";
import type { SeekTarget } from "./rest-client.js";

const rfc3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

const seekSpec = {
  path: "seek",
  summary: "Seek a subscription to a time or a snapshot (replay or skip messages).",
  details:
    "--time T marks messages published before T acknowledged and those after it unacknowledged;\n" +
    "acknowledged messages come back only if the subscription has --retain-acked.\n" +
    "--snapshot S restores the acknowledgement state saved by `streamgate snapshots create`.",
  positionals: ["SUBSCRIPTION"],
  options: {
    time: {
      type: "string",
      valueName: "RFC3339|now",
      description: "Seek to this time, e.g. 2024-05-01T12:00:00Z; replaying acked messages needs --retain-acked",
    },
    snapshot: { type: "string", valueName: "SNAPSHOT", description: "Seek to the state saved in this snapshot" },
    ...clientOptions,
  },
  examples: [
    "streamgate seek orders-worker --time 2024-05-01T12:00:00Z",
    "streamgate seek orders-worker --time now   # acknowledge the whole backlog",
    "streamgate seek orders-worker --snapshot before-deploy",
  ],
} as const;

/** Parses `--time`: RFC 3339 with a zone, or `now`; returns the instant in UTC RFC 3339. */
export function parseSeekTime(text: string, now: () => Date = () => new Date()): string {
  if (text.toLowerCase() === "now") return now().toISOString();
  const date = new Date(text.replace(" ", "T"));
  if (!rfc3339.test(text) || Number.isNaN(date.getTime())) {
    throw new UsageError(`--time: expected RFC 3339 such as 2024-05-01T12:00:00Z, got ${JSON.stringify(text)}`);
  }
  return date.toISOString();
}

/** The `seek` command. */
export const seekCommand = defineCommand(seekSpec, async ({ values, positionals }, io) => {
  if ((values.time === undefined) === (values.snapshot === undefined)) {
    throw new UsageError("give exactly one of --time and --snapshot (see streamgate seek --help)");
  }
  const context = createClientContext(values, io.env);
  const subscription = context.name("subscriptions", positionals[0]!);
  const target: SeekTarget =
    values.time !== undefined
      ? { time: parseSeekTime(values.time) }
      : { snapshot: context.name("snapshots", values.snapshot!) };
  await context.client.seek(subscription, target);
  const where = "time" in target ? target.time : target.snapshot;
  io.stdout.write(`seeked ${subscription} to ${where}\n`);
  return 0;
});
