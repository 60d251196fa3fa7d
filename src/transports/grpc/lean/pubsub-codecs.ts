// Hand-written protobuf codecs of the hot unary Pub/Sub messages (GetTopic, Publish, Acknowledge) for the lean path.
//
// Each one does exactly what @bufbuild/protobuf's toBinary / fromBinary do for the common case and gives up
// (undefined, or -1 for a size) on anything else — text that is not well-formed, unknown or repeated-in-odd-ways
// fields, a Timestamp, a message with unknown fields — so the library, with its own errors, handles that call.
// Tested byte for byte against toBinary and field for field against fromBinary (pubsub-codecs.test.ts).
// Why: the library's reflective writer made a BinaryWriter, a growing buffer and a copy into the gRPC frame per
// message (about a tenth of a GetTopic call); these size the message first and write it straight into its frame.

/** A fast codec for one message type; see the file header for its contract. */
export interface MessageCodec {
  /** The message, as fromBinary returns it, or undefined to leave `bytes` to fromBinary. Never throws. */
  decode?(bytes: Uint8Array): object | undefined;
  /** The serialized size of `message` (a message or a plain init object), or -1 to leave it to toBinary. */
  size?(message: unknown): number;
  /** Writes `message`, already sized by size(), into `out` at `offset`. */
  write?(message: unknown, out: Buffer, offset: number): void;
}

/** Wire type of length-delimited fields (strings, bytes, messages, map entries). */
const LEN = 2;

// ---- reading ---------------------------------------------------------------------------------------------------

/** Position of the decoder running now (the decoders are synchronous and do not nest across calls). */
let pos = 0;

/** A varint of at most 32 bits at `pos`, or -1 when it is longer, truncated or past 2^31 - 1. */
function readUint31(bytes: Uint8Array, end: number): number {
  let value = 0;
  for (let shift = 0; shift < 31; shift += 7) {
    if (pos >= end) return -1;
    const byte = bytes[pos++]!;
    value += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) return value <= 0x7fffffff ? value : -1;
  }
  return -1;
}

/** The end of the length-delimited field whose length is at `pos` (pos moves to its start), or -1. */
function delimitedEnd(bytes: Uint8Array, end: number): number {
  const length = readUint31(bytes, end);
  if (length < 0 || pos + length > end) return -1;
  return pos + length;
}

/** ASCII text between pos and `stop` (pos moves to stop), or undefined for any other byte. */
function readAscii(bytes: Uint8Array, stop: number): string | undefined {
  const start = pos;
  for (let index = start; index < stop; index++) if (bytes[index]! > 0x7f) return undefined;
  pos = stop;
  if (stop === start) return "";
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return buffer.toString("latin1", start, stop);
}

/** Reads a string field's value at pos (after its tag), or undefined. */
function stringField(bytes: Uint8Array, end: number): string | undefined {
  const stop = delimitedEnd(bytes, end);
  return stop < 0 ? undefined : readAscii(bytes, stop);
}

// ---- writing ---------------------------------------------------------------------------------------------------

function varintSize(value: number): number {
  return value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x200000 ? 3 : value < 0x10000000 ? 4 : 5;
}

function writeVarint(out: Buffer, offset: number, value: number): number {
  while (value > 0x7f) {
    out[offset++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  out[offset++] = value;
  return offset;
}

/** String.prototype.isWellFormed (ES2024; the compiler's lib is older). */
const isWellFormed = (String.prototype as unknown as { isWellFormed: (this: string) => boolean }).isWellFormed;

/** UTF-8 length of `text`, or -1 when it is not well-formed (toBinary's own check decides then). */
function textBytes(text: unknown): number {
  if (typeof text !== "string") return -1;
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes !== text.length && !isWellFormed.call(text)) return -1;
  return bytes;
}

/** Size of a string field with its tag (one-byte tags only), 0 for "" when `implicit`, -1 when it cannot be sized. */
function stringFieldSize(text: unknown, implicit: boolean): number {
  if (implicit && text === "") return 0;
  const bytes = textBytes(text);
  return bytes < 0 ? -1 : 1 + varintSize(bytes) + bytes;
}

function writeStringField(out: Buffer, offset: number, tag: number, text: string): number {
  out[offset++] = tag;
  const bytes = text.length === 0 ? 0 : Buffer.byteLength(text, "utf8");
  offset = writeVarint(out, offset, bytes);
  return bytes === 0 ? offset : offset + out.write(text, offset, bytes, "utf8");
}

/** Size of a map<string, string> field (one entry per own key, key and value always written), or -1. */
function stringMapSize(record: unknown): number {
  if (record === undefined) return 0;
  if (record === null || typeof record !== "object") return -1;
  let size = 0;
  for (const key of Object.keys(record)) {
    const keyBytes = textBytes(key);
    const valueBytes = textBytes((record as Record<string, unknown>)[key]);
    if (keyBytes < 0 || valueBytes < 0) return -1;
    const entry = 2 + varintSize(keyBytes) + keyBytes + varintSize(valueBytes) + valueBytes;
    size += 1 + varintSize(entry) + entry;
  }
  return size;
}

function writeStringMap(out: Buffer, offset: number, tag: number, record: Record<string, string> | undefined): number {
  if (record === undefined) return offset;
  for (const key of Object.keys(record)) {
    const value = record[key]!;
    const keyBytes = Buffer.byteLength(key, "utf8");
    const valueBytes = Buffer.byteLength(value, "utf8");
    out[offset++] = tag;
    offset = writeVarint(out, offset, 2 + varintSize(keyBytes) + keyBytes + varintSize(valueBytes) + valueBytes);
    offset = writeStringField(out, offset, 0x0a, key);
    offset = writeStringField(out, offset, 0x12, value);
  }
  return offset;
}

/** A message's own object: not a message of another type, no unknown fields to carry. */
function plainOrMessage(message: unknown, typeName: string): message is Record<string, unknown> {
  if (message === null || typeof message !== "object") return false;
  const own = message as { $typeName?: unknown; $unknown?: unknown };
  return (own.$typeName === undefined || own.$typeName === typeName) && own.$unknown === undefined;
}

// ---- google.protobuf.Empty -------------------------------------------------------------------------------------

const emptyCodec: MessageCodec = {
  size: (message) => (plainOrMessage(message, "google.protobuf.Empty") ? 0 : -1),
  write: () => undefined,
};

// ---- google.pubsub.v1.PublishResponse --------------------------------------------------------------------------

const publishResponseCodec: MessageCodec = {
  size(message) {
    if (!plainOrMessage(message, "google.pubsub.v1.PublishResponse")) return -1;
    const ids = message.messageIds;
    if (ids === undefined) return 0;
    if (!Array.isArray(ids)) return -1;
    let size = 0;
    for (const id of ids) {
      const field = stringFieldSize(id, false);
      if (field < 0) return -1;
      size += field;
    }
    return size;
  },
  write(message, out, offset) {
    const ids = (message as { messageIds?: string[] }).messageIds;
    if (ids !== undefined) for (const id of ids) offset = writeStringField(out, offset, 0x0a, id);
  },
};

// ---- google.pubsub.v1.Topic ------------------------------------------------------------------------------------

interface TopicFields {
  name: string;
  labels: Record<string, string>;
  messageStoragePolicy?: { allowedPersistenceRegions: string[]; enforceInTransit: boolean; $unknown?: unknown };
  kmsKeyName: string;
  schemaSettings?: {
    schema: string;
    encoding: number;
    firstRevisionId: string;
    lastRevisionId: string;
    $unknown?: unknown;
  };
  satisfiesPzs: boolean;
  messageRetentionDuration?: { seconds: bigint; nanos: number; $unknown?: unknown };
  state: number;
  ingestionDataSourceSettings?: unknown;
  messageTransforms: unknown[];
  tags: Record<string, string>;
}

/** The three sub-message sizes of the Topic being encoded (size() computes them, write() reuses them). */
let policySize = 0;
let schemaSize = 0;
let retentionSize = 0;

function policyBodySize(policy: NonNullable<TopicFields["messageStoragePolicy"]>): number {
  if (policy.$unknown !== undefined || !Array.isArray(policy.allowedPersistenceRegions)) return -1;
  let size = policy.enforceInTransit === true ? 2 : policy.enforceInTransit === false ? 0 : -1;
  for (const region of policy.allowedPersistenceRegions) {
    const field = stringFieldSize(region, false);
    if (field < 0) return -1;
    size += field;
  }
  return size;
}

function schemaBodySize(settings: NonNullable<TopicFields["schemaSettings"]>): number {
  if (settings.$unknown !== undefined) return -1;
  const { encoding } = settings;
  if (!Number.isInteger(encoding) || encoding < 0 || encoding > 0x7fffffff) return -1;
  const schema = stringFieldSize(settings.schema, true);
  const first = stringFieldSize(settings.firstRevisionId, true);
  const last = stringFieldSize(settings.lastRevisionId, true);
  if (schema < 0 || first < 0 || last < 0) return -1;
  return schema + (encoding === 0 ? 0 : 1 + varintSize(encoding)) + first + last;
}

function durationBodySize(duration: NonNullable<TopicFields["messageRetentionDuration"]>): number {
  const { seconds, nanos } = duration;
  if (duration.$unknown !== undefined || typeof seconds !== "bigint" || !Number.isInteger(nanos)) return -1;
  // Negative values take ten-byte varints: the library's writer handles those.
  if (seconds < 0n || seconds > 0x7fffffffn || nanos < 0 || nanos > 0x7fffffff) return -1;
  return (seconds === 0n ? 0 : 1 + varintSize(Number(seconds))) + (nanos === 0 ? 0 : 1 + varintSize(nanos));
}

function nestedSize(bodySize: number): number {
  return bodySize < 0 ? -1 : 1 + varintSize(bodySize) + bodySize;
}

const topicCodec: MessageCodec = {
  size(message) {
    // Only whole Topic messages (create()'d): an init object has defaults to fill, which toBinary's create() does.
    if (message === null || typeof message !== "object") return -1;
    const topic = message as TopicFields & { $typeName?: unknown; $unknown?: unknown };
    if (topic.$typeName !== "google.pubsub.v1.Topic" || topic.$unknown !== undefined) return -1;
    if (topic.ingestionDataSourceSettings !== undefined || topic.messageTransforms.length > 0) return -1;
    const { state } = topic;
    if (!Number.isInteger(state) || state < 0 || state > 0x7fffffff || typeof topic.satisfiesPzs !== "boolean")
      return -1;
    policySize = topic.messageStoragePolicy === undefined ? 0 : policyBodySize(topic.messageStoragePolicy);
    schemaSize = topic.schemaSettings === undefined ? 0 : schemaBodySize(topic.schemaSettings);
    retentionSize = topic.messageRetentionDuration === undefined ? 0 : durationBodySize(topic.messageRetentionDuration);
    const parts = [
      stringFieldSize(topic.name, true),
      stringMapSize(topic.labels),
      topic.messageStoragePolicy === undefined ? 0 : nestedSize(policySize),
      stringFieldSize(topic.kmsKeyName, true),
      topic.schemaSettings === undefined ? 0 : nestedSize(schemaSize),
      topic.satisfiesPzs ? 2 : 0,
      topic.messageRetentionDuration === undefined ? 0 : nestedSize(retentionSize),
      state === 0 ? 0 : 1 + varintSize(state),
      stringMapSize(topic.tags),
    ];
    let size = 0;
    for (const part of parts) {
      if (part < 0) return -1;
      size += part;
    }
    return size;
  },
  write(message, out, offset) {
    const topic = message as TopicFields;
    if (topic.name !== "") offset = writeStringField(out, offset, 0x0a, topic.name);
    offset = writeStringMap(out, offset, 0x12, topic.labels);
    const policy = topic.messageStoragePolicy;
    if (policy !== undefined) {
      out[offset++] = 0x1a;
      offset = writeVarint(out, offset, policySize);
      for (const region of policy.allowedPersistenceRegions) offset = writeStringField(out, offset, 0x0a, region);
      if (policy.enforceInTransit) {
        out[offset++] = 0x10;
        out[offset++] = 1;
      }
    }
    if (topic.kmsKeyName !== "") offset = writeStringField(out, offset, 0x2a, topic.kmsKeyName);
    const settings = topic.schemaSettings;
    if (settings !== undefined) {
      out[offset++] = 0x32;
      offset = writeVarint(out, offset, schemaSize);
      if (settings.schema !== "") offset = writeStringField(out, offset, 0x0a, settings.schema);
      if (settings.encoding !== 0) {
        out[offset++] = 0x10;
        offset = writeVarint(out, offset, settings.encoding);
      }
      if (settings.firstRevisionId !== "") offset = writeStringField(out, offset, 0x1a, settings.firstRevisionId);
      if (settings.lastRevisionId !== "") offset = writeStringField(out, offset, 0x22, settings.lastRevisionId);
    }
    if (topic.satisfiesPzs) {
      out[offset++] = 0x38;
      out[offset++] = 1;
    }
    const retention = topic.messageRetentionDuration;
    if (retention !== undefined) {
      out[offset++] = 0x42;
      offset = writeVarint(out, offset, retentionSize);
      if (retention.seconds !== 0n) {
        out[offset++] = 0x08;
        offset = writeVarint(out, offset, Number(retention.seconds));
      }
      if (retention.nanos !== 0) {
        out[offset++] = 0x10;
        offset = writeVarint(out, offset, retention.nanos);
      }
    }
    if (topic.state !== 0) {
      out[offset++] = 0x48;
      offset = writeVarint(out, offset, topic.state);
    }
    writeStringMap(out, offset, 0x72, topic.tags);
  },
};

// ---- requests --------------------------------------------------------------------------------------------------

/** Field number and wire type of the tag at pos, as one number (number * 8 + wire type), or -1. */
function readTag(bytes: Uint8Array, end: number): number {
  return readUint31(bytes, end);
}

const getTopicRequestCodec: MessageCodec = {
  decode(bytes) {
    pos = 0;
    const end = bytes.length;
    let topic = "";
    while (pos < end) {
      const tag = readTag(bytes, end);
      if (tag !== ((1 << 3) | LEN)) return undefined;
      const value = stringField(bytes, end);
      if (value === undefined) return undefined;
      topic = value;
    }
    return { $typeName: "google.pubsub.v1.GetTopicRequest", topic };
  },
};

const acknowledgeRequestCodec: MessageCodec = {
  decode(bytes) {
    pos = 0;
    const end = bytes.length;
    let subscription = "";
    const ackIds: string[] = [];
    while (pos < end) {
      const tag = readTag(bytes, end);
      if (tag !== ((1 << 3) | LEN) && tag !== ((2 << 3) | LEN)) return undefined;
      const value = stringField(bytes, end);
      if (value === undefined) return undefined;
      if (tag === ((1 << 3) | LEN)) subscription = value;
      else ackIds.push(value);
    }
    return { $typeName: "google.pubsub.v1.AcknowledgeRequest", subscription, ackIds };
  },
};

/** One PubsubMessage between pos and `end` (without publish_time), or undefined. */
function decodePubsubMessage(bytes: Uint8Array, end: number): object | undefined {
  let data: Uint8Array | undefined;
  const attributes: Record<string, string> = {};
  let messageId = "";
  let orderingKey = "";
  while (pos < end) {
    const tag = readTag(bytes, end);
    if (tag === ((1 << 3) | LEN)) {
      const stop = delimitedEnd(bytes, end);
      if (stop < 0) return undefined;
      data = bytes.subarray(pos, stop);
      pos = stop;
    } else if (tag === ((2 << 3) | LEN)) {
      const stop = delimitedEnd(bytes, end);
      if (stop < 0) return undefined;
      let key = "";
      let value = "";
      while (pos < stop) {
        const entryTag = readTag(bytes, stop);
        if (entryTag !== ((1 << 3) | LEN) && entryTag !== ((2 << 3) | LEN)) return undefined;
        const text = stringField(bytes, stop);
        if (text === undefined) return undefined;
        if (entryTag === ((1 << 3) | LEN)) key = text;
        else value = text;
      }
      // A "__proto__" key needs the library's own-property handling.
      if (key === "__proto__") return undefined;
      attributes[key] = value;
    } else if (tag === ((3 << 3) | LEN) || tag === ((5 << 3) | LEN)) {
      const text = stringField(bytes, end);
      if (text === undefined) return undefined;
      if (tag === ((3 << 3) | LEN)) messageId = text;
      else orderingKey = text;
    } else return undefined;
  }
  return {
    $typeName: "google.pubsub.v1.PubsubMessage",
    data: data ?? new Uint8Array(0),
    attributes,
    messageId,
    orderingKey,
  };
}

const publishRequestCodec: MessageCodec = {
  decode(bytes) {
    pos = 0;
    const end = bytes.length;
    let topic = "";
    const messages: object[] = [];
    while (pos < end) {
      const tag = readTag(bytes, end);
      if (tag === ((1 << 3) | LEN)) {
        const value = stringField(bytes, end);
        if (value === undefined) return undefined;
        topic = value;
      } else if (tag === ((2 << 3) | LEN)) {
        const stop = delimitedEnd(bytes, end);
        if (stop < 0) return undefined;
        const message = decodePubsubMessage(bytes, stop);
        if (message === undefined) return undefined;
        messages.push(message);
      } else return undefined;
    }
    return { $typeName: "google.pubsub.v1.PublishRequest", topic, messages };
  },
};

/** The fast codecs, by message type name. */
export const PUBSUB_CODECS: ReadonlyMap<string, MessageCodec> = new Map([
  ["google.protobuf.Empty", emptyCodec],
  ["google.pubsub.v1.PublishResponse", publishResponseCodec],
  ["google.pubsub.v1.Topic", topicCodec],
  ["google.pubsub.v1.GetTopicRequest", getTopicRequestCodec],
  ["google.pubsub.v1.AcknowledgeRequest", acknowledgeRequestCodec],
  ["google.pubsub.v1.PublishRequest", publishRequestCodec],
]);
