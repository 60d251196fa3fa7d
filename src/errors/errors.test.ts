// The error tables are exhaustive and docs/errors.md documents every code and every reason the source uses.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Code, codeName, httpStatusByCode, StreamgateError, wsCloseCodeByCode } from "./index.js";

const docs = readFileSync(new URL("../../docs/errors.md", import.meta.url), "utf8");

function sourceFiles(dir: string): string[] {
  const found: string[] = [];
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (name === "gen") continue;
    if (statSync(full).isDirectory()) found.push(...sourceFiles(full));
    else if (name.endsWith(".ts") && !name.endsWith(".test.ts")) found.push(full);
  }
  return found;
}

describe("errors", () => {
  it("errors - every code maps to an HTTP status and a WebSocket close code", () => {
    for (const code of Object.values(Code)) {
      const http = httpStatusByCode[code];
      const ws = wsCloseCodeByCode[code];
      assert.ok(Number.isInteger(http) && http >= 200 && http < 600, `HTTP status of ${codeName(code)}`);
      assert.ok(
        ws === 1000 || (ws >= 1001 && ws <= 1015) || (ws >= 4000 && ws <= 4999),
        `close code of ${codeName(code)}`,
      );
    }
    assert.equal(Object.keys(httpStatusByCode).length, 17);
    assert.equal(Object.keys(wsCloseCodeByCode).length, 17);
  });

  it("errors - docs/errors.md lists every code with the same HTTP status and close code", () => {
    for (const code of Object.values(Code)) {
      const row = new RegExp(
        `^\\| \`${codeName(code)}\` \\| ${code} \\| ${httpStatusByCode[code]} \\| ${wsCloseCodeByCode[code]} \\|`,
        "m",
      );
      assert.match(docs, row, `docs/errors.md row for ${codeName(code)}`);
    }
  });

  it("errors - docs/errors.md documents every reason the source raises", () => {
    const root = new URL("../", import.meta.url).pathname;
    const reasons = new Set<string>();
    for (const file of sourceFiles(root)) {
      const text = readFileSync(file, "utf8");
      for (const match of text.matchAll(/reason: "([A-Z_]+)"/g)) reasons.add(match[1]!);
      for (const match of text.matchAll(
        /errors\.(?:failedPrecondition|resourceExhausted|unavailable)\(\s*"([A-Z_]+)"/g,
      )) {
        reasons.add(match[1]!);
      }
    }
    for (const kind of ["TOPIC", "SUBSCRIPTION", "SNAPSHOT"]) {
      reasons.add(`${kind}_NOT_FOUND`);
      reasons.add(`${kind}_ALREADY_EXISTS`);
    }
    assert.ok(reasons.size > 10, `found only ${reasons.size} reasons; the scan is broken`);
    const undocumented = [...reasons].filter((reason) => !docs.includes(`| \`${reason}\` |`));
    assert.deepEqual(undocumented, [], "reasons missing from docs/errors.md");
  });

  it("errors - from() keeps StreamgateErrors and turns anything else into INTERNAL or CANCELLED", () => {
    const original = new StreamgateError(Code.NOT_FOUND, "gone", { reason: "TOPIC_NOT_FOUND" });
    assert.equal(StreamgateError.from(original), original);
    const internal = StreamgateError.from(new TypeError("boom"));
    assert.equal(internal.code, Code.INTERNAL);
    assert.equal(internal.reason, "INTERNAL");
    assert.ok(internal.cause instanceof TypeError);
    const abort = new Error("aborted");
    abort.name = "AbortError";
    assert.equal(StreamgateError.from(abort).code, Code.CANCELLED);
    assert.equal(StreamgateError.from("text").message, "internal error: text");
  });
});
