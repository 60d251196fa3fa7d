// Reloading a rules file on change: good edits swap the rules, bad edits keep them and report the line.
import assert from "node:assert/strict";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { parseServerRules, RulesError, type ServerRules, watchRulesFile } from "./index.js";

/** Values handlers deliver, taken in order; `take` waits at most `ms` for the next one. */
function inbox<T>(what: string): { deliver(value: T): void; take(ms?: number): Promise<T> } {
  const values: T[] = [];
  let waiter: ((value: T) => void) | null = null;
  return {
    deliver(value) {
      if (waiter === null) values.push(value);
      else waiter(value);
    },
    take(ms = 5000) {
      const ready = values.shift();
      if (ready !== undefined) return Promise.resolve(ready);
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiter = null;
          reject(new Error(`no ${what} within ${ms} ms`));
        }, ms);
        waiter = (value) => {
          clearTimeout(timer);
          waiter = null;
          resolve(value);
        };
      });
    },
  };
}

const rulesText = (group: string) => `rules:\n  - name: all\n    group: ${group}\n`;
const groupOf = (rules: ServerRules) => (rules.rules[0]!.target as { group: string }).group;

describe("tunnel rules watching", () => {
  const dir = mkdtempSync(join(tmpdir(), "streamgate-watch-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("tunnel rules - watch: an edit reloads, a bad edit keeps the rules and reports the line, a rename reloads", async () => {
    const path = join(dir, "rules.yaml");
    writeFileSync(path, rulesText("one"));
    const change = inbox<ServerRules>("onChange");
    const failure = inbox<Error>("onError");
    const watcher = watchRulesFile(path, parseServerRules, {
      onChange: (rules) => change.deliver(rules),
      onError: (error) => failure.deliver(error),
    });
    try {
      assert.equal(groupOf(watcher.current()), "one");

      writeFileSync(path, rulesText("two"));
      assert.equal(groupOf(await change.take()), "two");
      assert.equal(groupOf(watcher.current()), "two");

      writeFileSync(path, "rules:\n  - name: all\n    group: three\n    colour: red\n");
      const error = await failure.take();
      assert.ok(error instanceof RulesError);
      assert.equal(
        error.message,
        `${path}:4: rules[0].colour: unknown key (known keys: name, match, group, upstream, auth, timeoutMs)`,
      );
      assert.equal(groupOf(watcher.current()), "two", "the old rules stay in force");

      // Editors save by writing a new file and renaming it over the old one.
      const temporary = join(dir, ".rules.yaml.tmp");
      writeFileSync(temporary, rulesText("four"));
      renameSync(temporary, path);
      assert.equal(groupOf(await change.take()), "four");
      assert.equal(groupOf(watcher.current()), "four");
    } finally {
      watcher.close();
    }
  });

  test("tunnel rules - watch: the first load throws, so a server does not start on a bad file", () => {
    const path = join(dir, "bad.yaml");
    writeFileSync(path, "rules: 5\n");
    assert.throws(
      () => watchRulesFile(path, parseServerRules, { onChange: () => {}, onError: () => {} }),
      (error: unknown) => error instanceof RulesError && error.message === `${path}:1: rules: expected a list, got 5`,
    );
    assert.throws(
      () => watchRulesFile(join(dir, "absent.yaml"), parseServerRules, { onChange: () => {}, onError: () => {} }),
      /ENOENT/,
    );
  });

  test("tunnel rules - watch: a deleted file is reported and the rules stay until it returns", async () => {
    const path = join(dir, "gone.yaml");
    writeFileSync(path, rulesText("kept"));
    const change = inbox<ServerRules>("onChange");
    const failure = inbox<Error>("onError");
    const watcher = watchRulesFile(
      path,
      parseServerRules,
      { onChange: (rules) => change.deliver(rules), onError: (error) => failure.deliver(error) },
      { pollIntervalMs: 200 },
    );
    try {
      rmSync(path);
      assert.match((await failure.take()).message, /cannot read \(ENOENT\); keeping the rules loaded before/);
      assert.equal(groupOf(watcher.current()), "kept");
      writeFileSync(path, rulesText("back"));
      assert.equal(groupOf(await change.take()), "back");
    } finally {
      watcher.close();
    }
  });
});
