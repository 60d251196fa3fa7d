// `streamgate publish TOPIC`: publish --data, a --file, or one message per stdin line (batched).
import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import { CliError, parseKeyValues, UsageError } from "./args.js";
import { type CliIo, defineCommand } from "./command.js";
import { clientOptions, createClientContext } from "./context.js";
import { writeJson } from "./output.js";
import type { OutgoingMessage, PublishResponse, RestClient } from "./rest-client.js";

/** Most messages per publish request, as in Pub/Sub. */
export const maxBatchMessages = 1000;
/** Most base64 data bytes per publish request: below Pub/Sub's 10 MB request limit, leaving room for JSON. */
export const maxBatchBytes = 9_000_000;

const publishSpec = {
  path: "publish",
  summary: "Publish messages to a topic.",
  details:
    "Each --data is one message; --file publishes the whole file as one message; otherwise every\n" +
    "non-empty line of stdin (UTF-8) is one message, sent in batches of up to 1000.\n" +
    "Prints one message id per line (with the offset when the server reports it).",
  positionals: ["TOPIC"],
  options: {
    data: { type: "string", multiple: true, valueName: "TEXT", description: "Publish TEXT (UTF-8) as one message" },
    file: { type: "string", valueName: "PATH", description: "Publish the bytes of the file as one message" },
    attr: { type: "string", multiple: true, valueName: "KEY=VALUE", description: "Attribute of every message" },
    "ordering-key": { type: "string", valueName: "KEY", description: "Ordering key of every message" },
    json: { type: "boolean", description: "Print {messageIds, offsets} as JSON" },
    ...clientOptions,
  },
  examples: [
    "streamgate publish orders --data '{\"id\":1}' --attr kind=created",
    "streamgate publish orders --file invoice.pdf --attr type=pdf",
    "seq 1 5000 | streamgate publish orders --ordering-key batch-7",
  ],
} as const;

/** The `publish` command. */
export const publishCommand = defineCommand(publishSpec, async ({ values, positionals }, io) => {
  if (values.data !== undefined && values.file !== undefined) {
    throw new UsageError("--data and --file cannot be combined (see streamgate publish --help)");
  }
  const context = createClientContext(values, io.env);
  const topic = context.name("topics", positionals[0]!);
  const attributes = parseKeyValues(values.attr, "--attr");
  const toMessage = (data: Buffer): OutgoingMessage => {
    const message: OutgoingMessage = { data: data.toString("base64") };
    if (Object.keys(attributes).length > 0) message.attributes = attributes;
    if (values["ordering-key"] !== undefined) message.orderingKey = values["ordering-key"];
    return message;
  };
  const publisher = new BatchPublisher(context.client, topic, io, values.json === true);
  if (values.data !== undefined) {
    for (const text of values.data) await publisher.add(toMessage(Buffer.from(text, "utf8")));
  } else if (values.file !== undefined) {
    await publisher.add(toMessage(await readInput(values.file)));
  } else {
    if (io.stdin.isTTY) io.stderr.write("reading messages from stdin, one per line; end with Ctrl-D\n");
    const lines = createInterface({ input: io.stdin, crlfDelay: Number.POSITIVE_INFINITY });
    for await (const line of lines) {
      if (line !== "") await publisher.add(toMessage(Buffer.from(line, "utf8")));
    }
  }
  const result = await publisher.finish();
  if (values.json) writeJson(io, result);
  else io.stderr.write(`published ${result.messageIds.length} message(s) to ${topic}\n`);
  return 0;
});

async function readInput(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw new CliError(`cannot read ${path}: ${typeof code === "string" ? code : String(error)}`);
  }
}

/** Collects messages into requests of at most {@link maxBatchMessages} / {@link maxBatchBytes}, in order. */
class BatchPublisher {
  readonly #batch: OutgoingMessage[] = [];
  #batchBytes = 0;
  readonly #result: PublishResponse = { messageIds: [] };
  #offsets: (string | number)[] = [];

  constructor(
    private readonly client: RestClient,
    private readonly topic: string,
    private readonly io: CliIo,
    private readonly json: boolean,
  ) {}

  async add(message: OutgoingMessage): Promise<void> {
    let size = (message.data?.length ?? 0) + (message.orderingKey?.length ?? 0);
    for (const [key, value] of Object.entries(message.attributes ?? {})) size += key.length + value.length;
    if (this.#batch.length >= maxBatchMessages || (this.#batch.length > 0 && this.#batchBytes + size > maxBatchBytes)) {
      await this.#flush();
    }
    this.#batch.push(message);
    this.#batchBytes += size;
  }

  async finish(): Promise<PublishResponse> {
    await this.#flush();
    if (this.#offsets.length === this.#result.messageIds.length && this.#offsets.length > 0) {
      this.#result.offsets = this.#offsets;
    }
    return this.#result;
  }

  async #flush(): Promise<void> {
    if (this.#batch.length === 0) return;
    const messages = this.#batch.splice(0);
    this.#batchBytes = 0;
    const response = await this.client.publish(this.topic, messages);
    const ids = response.messageIds ?? [];
    ids.forEach((id, index) => {
      const offset = response.offsets?.[index];
      if (offset !== undefined) this.#offsets.push(offset);
      if (!this.json) this.io.stdout.write(offset === undefined ? `${id}\n` : `${id}\toffset ${offset}\n`);
    });
    this.#result.messageIds.push(...ids);
  }
}
