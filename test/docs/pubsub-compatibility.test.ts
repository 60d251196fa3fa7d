// docs/pubsub-compatibility.md covers every message field of the pubsub.proto that `npm run generate` compiles.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { protoMessageFields } from "./proto-fields.js";

const root = new URL("../../", import.meta.url);
/** The import roots scripts/generate.mjs searches, in its order; the first holding the file is the one compiled. */
const protoRoots = ["proto/", "node_modules/google-proto-files/"];
const PUBSUB_PROTO = "google/pubsub/v1/pubsub.proto";

function compiledProto(): string {
  for (const base of protoRoots) {
    const path = fileURLToPath(new URL(`${base}${PUBSUB_PROTO}`, root));
    if (existsSync(path)) return readFileSync(path, "utf8");
  }
  throw new Error(`${PUBSUB_PROTO} is in none of ${protoRoots.join(", ")}`);
}

const doc = readFileSync(new URL("docs/pubsub-compatibility.md", root), "utf8");
/** The table rows: `| \`Message.field\` | what streamgate does |`. */
const rows = new Map(
  [...doc.matchAll(/^\| `([\w.]+)` \| (.+) \|$/gm)].map((match) => [match[1]!, match[2]!.trim()] as const),
);

test("pubsub compatibility - the parser reads nested messages, oneofs and maps of pubsub.proto", () => {
  const names = new Set(protoMessageFields(compiledProto()).map((field) => field.name));
  for (const expected of [
    "Topic.kms_key_name",
    "Topic.tags",
    "PushConfig.NoWrapper.write_metadata",
    "PushConfig.oidc_token",
    "StreamingPullResponse.AcknowledgeConfirmation.invalid_ack_ids",
    "SeekRequest.time",
  ]) {
    assert.ok(names.has(expected), `parsed ${expected}`);
  }
  assert.ok(names.size > 200, `parsed ${names.size} fields`);
});

test("pubsub compatibility - every field of pubsub.proto has a row saying what streamgate does", () => {
  const fields = protoMessageFields(compiledProto()).map((field) => field.name);
  const missing = fields.filter((name) => !rows.has(name));
  assert.deepEqual(missing, [], `docs/pubsub-compatibility.md lacks rows for: ${missing.join(", ")}`);
  const empty = fields.filter((name) => !/\w{3}/.test(rows.get(name) ?? ""));
  assert.deepEqual(empty, [], "every row says something");
});

test("pubsub compatibility - the page lists no field the proto does not have", () => {
  const fields = new Set(protoMessageFields(compiledProto()).map((field) => field.name));
  const stale = [...rows.keys()].filter((name) => !fields.has(name));
  assert.deepEqual(stale, [], `rows for fields pubsub.proto no longer has: ${stale.join(", ")}`);
});
