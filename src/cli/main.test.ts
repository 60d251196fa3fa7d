// CLI parsing and usage, run in-process: strict flags, exit codes, --help on every command, docs in sync.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Readable } from "node:stream";
import { describe, test } from "node:test";
import { parseCommand, parseDurationSeconds, toProtoDuration, UsageError } from "./args.js";
import type { CliIo, Command } from "./command.js";
import { resolveName, resolveServerUrl } from "./context.js";
import { commandPaths, commands, main } from "./main.js";
import { formatData } from "./output.js";
import { parseSeekTime } from "./seek.js";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in this process with captured I/O and an empty environment. */
async function runInProcess(argv: string[], stdin = "", env: NodeJS.ProcessEnv = {}): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    stdin: Readable.from([stdin]),
    env,
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

/** Asserts a failure: the exit code and exactly one `streamgate: ...` line on stderr. */
function assertFailure(run: Run, code: number, pattern: RegExp): void {
  assert.equal(run.code, code, `exit code; stderr: ${run.stderr}`);
  assert.match(run.stderr, /^streamgate: [^\n]+\n$/, "one line on stderr");
  assert.match(run.stderr, pattern);
}

describe("cli parsing", () => {
  test("cli - an unknown flag exits 2 with one line naming the flag and the command's help", async () => {
    const run = await runInProcess(["topics", "create", "orders", "--foo"]);
    assert.equal(run.code, 2);
    assert.equal(run.stderr, "streamgate: unknown option --foo (see streamgate topics create --help)\n");
    assert.equal(run.stdout, "");
  });

  test("cli - missing arguments, bad values and unknown commands are usage errors (exit 2)", async () => {
    assertFailure(await runInProcess(["topics", "get"]), 2, /missing NAME/);
    assertFailure(await runInProcess(["topics", "get", "a", "b"]), 2, /unexpected argument "b"/);
    assertFailure(await runInProcess(["pull", "s", "--max", "many"]), 2, /--max: expected an integer/);
    assertFailure(await runInProcess(["pull", "s", "--max"]), 2, /option --max needs a value/);
    assertFailure(await runInProcess(["seek", "s"]), 2, /exactly one of --time and --snapshot/);
    assertFailure(await runInProcess(["subscriptions", "create", "s"]), 2, /missing --topic/);
    assertFailure(await runInProcess(["topics", "create", "t", "--retention", "soon"]), 2, /invalid duration/);
    assertFailure(await runInProcess(["serve", "--engine", "sqlite"]), 2, /--engine: expected one of/);
    assertFailure(await runInProcess(["serve", "--tls-cert", "a.pem"]), 2, /--tls-key must be given together/);
    const negated = parseCommand((commands.serve as Command).spec, ["--no-sync"]);
    assert.deepEqual(negated.help ? negated : { ...negated.values }, { sync: false });
    assertFailure(await runInProcess(["frobnicate"]), 2, /unknown command "frobnicate" \(see streamgate help\)/);
  });

  test("cli - a bare command prints its usage: streamgate alone, and a group without its subcommand", async () => {
    const bare = await runInProcess([]);
    assert.equal(bare.code, 0);
    assert.equal(bare.stderr, "");
    assert.match(bare.stdout, /^Usage: streamgate COMMAND \[flags\]\n/);
    assert.deepEqual(bare, await runInProcess(["--help"]));
    const group = await runInProcess(["topics"]);
    assert.equal(group.code, 0);
    assert.match(group.stdout, /^Usage: streamgate topics create\|list\|get\|delete/);
  });

  test("cli - did you mean: a mistyped command, subcommand or option names the closest one", async () => {
    const cases: [string[], string][] = [
      [["topic"], 'streamgate: unknown command "topic" (did you mean streamgate topics?) (see streamgate help)\n'],
      [["publsh"], 'streamgate: unknown command "publsh" (did you mean streamgate publish?) (see streamgate help)\n'],
      [
        ["topics", "craete"],
        "streamgate: unknown command topics craete (did you mean streamgate topics create?) (see streamgate topics --help)\n",
      ],
      [
        ["topics", "create", "orders", "--retension", "1d"],
        "streamgate: unknown option --retension (did you mean --retention?) (see streamgate topics create --help)\n",
      ],
      [
        ["serve", "--data-dri", "x"],
        "streamgate: unknown option --data-dri (did you mean --data-dir?) (see streamgate serve --help)\n",
      ],
    ];
    for (const [argv, stderr] of cases) {
      const run = await runInProcess(argv);
      assert.equal(run.code, 2, argv.join(" "));
      assert.equal(run.stderr, stderr);
    }
    // Nothing close: no guess.
    assert.equal(
      (await runInProcess(["zzzzzz"])).stderr,
      'streamgate: unknown command "zzzzzz" (see streamgate help)\n',
    );
  });

  test("cli - every command prints usage with its flags for --help, -h and help", async () => {
    for (const path of commandPaths()) {
      const run = await runInProcess([...path, "--help"]);
      assert.equal(run.code, 0, path.join(" "));
      assert.match(run.stdout, new RegExp(`^Usage: streamgate ${path.join(" ")}`), path.join(" "));
      assert.match(run.stdout, /-h, --help/);
      assert.deepEqual(await runInProcess([...path, "-h"]), run);
      assert.deepEqual(await runInProcess(["help", ...path]), run);
    }
    const serve = await runInProcess(["serve", "--help"]);
    assert.match(serve.stdout, /--drain-ms MS .*default \$STREAMGATE_DRAIN_MS, else 10000/);
    assert.match((await runInProcess(["help"])).stdout, /^Usage: streamgate COMMAND/);
    assert.match((await runInProcess(["topics", "--help"])).stdout, /create .*Create a topic/);
    assert.match((await runInProcess(["--version"])).stdout, /^streamgate \d+\.\d+\.\d+\n$/);
    assert.deepEqual(await runInProcess(["-v"]), await runInProcess(["--version"]));
  });

  test("cli - every --help example is a whole streamgate command line whose flags parse", () => {
    /** Shell words of `line` (single and double quotes; enough for the examples). */
    const words = (line: string) =>
      [...line.matchAll(/'([^']*)'|"((?:\\.|[^"])*)"|(\S+)/g)].map((match) => match[1] ?? match[2] ?? match[3]!);
    let checked = 0;
    for (const entry of Object.values(commands)) {
      for (const command of "spec" in entry ? [entry] : Object.values(entry.commands)) {
        for (const example of command.spec.examples ?? []) {
          const line = example
            .replace(/\s+#.*$/, "")
            .replace(/^.*\|\s*/, "")
            .replace(/^(\w+=\S+\s+)+/, "");
          const argv = words(line);
          const path = command.spec.path.split(" ");
          assert.deepEqual(argv.slice(0, path.length + 1), ["streamgate", ...path], `example: ${example}`);
          assert.doesNotThrow(() => parseCommand(command.spec, argv.slice(path.length + 1)), `example: ${example}`);
          checked++;
        }
      }
    }
    assert.ok(checked > 30, `only ${checked} examples`);
  });

  test("cli - docs/cli.md documents every command and every flag", () => {
    const docs = readFileSync(new URL("../../docs/cli.md", import.meta.url), "utf8");
    const options = readFileSync(new URL("../../docs/options.md", import.meta.url), "utf8");
    for (const path of commandPaths()) {
      const entry = commands[path[0]!]!;
      const command = "spec" in entry ? entry : entry.commands[path[1]!]!;
      assert.ok(docs.includes(`streamgate ${path.join(" ")}`), `docs mention streamgate ${path.join(" ")}`);
      // serve's flags are the option table's: docs/options.md has them all (generated; its own test keeps it so).
      const page = path[0] === "serve" ? options : docs;
      for (const flag of Object.keys(command.spec.options)) {
        assert.ok(page.includes(`\`--${flag}`), `docs describe --${flag} of ${path.join(" ")}`);
      }
    }
  });

  test("cli - durations, names, server URL and seek times parse as documented", () => {
    assert.equal(parseDurationSeconds("7d", "--retention"), 604_800);
    assert.equal(parseDurationSeconds("1h30m", "--retention"), 5400);
    assert.equal(parseDurationSeconds("600", "--retention"), 600);
    assert.equal(toProtoDuration("1.5s", "--min-backoff"), "1.5s");
    assert.throws(() => parseDurationSeconds("7 days", "--retention"), UsageError);
    assert.equal(resolveName("topics", "orders", "p"), "projects/p/topics/orders");
    assert.equal(resolveName("topics", "projects/q/topics/orders", "p"), "projects/q/topics/orders");
    assert.throws(() => resolveName("topics", "projects/q/subscriptions/orders", "p"), /invalid topic name/);
    assert.equal(resolveServerUrl(undefined, {}), "http://localhost:8080");
    assert.equal(resolveServerUrl(undefined, { PUBSUB_EMULATOR_HOST: "h:1" }), "http://h:1");
    assert.equal(resolveServerUrl(undefined, { PUBSUB_EMULATOR_HOST: "h:1", STREAMGATE_URL: "http://s/" }), "http://s");
    assert.equal(resolveServerUrl("https://flag:9", { STREAMGATE_URL: "http://s" }), "https://flag:9");
    assert.equal(parseSeekTime("2024-05-01T14:00:00+02:00"), "2024-05-01T12:00:00.000Z");
    assert.throws(() => parseSeekTime("yesterday"), UsageError);
    assert.equal(formatData(Buffer.from("héllo\nworld").toString("base64")), "héllo\\nworld");
    assert.equal(formatData(Buffer.from([0, 1, 255]).toString("base64")), "base64:AAH/");
    assert.match(formatData(Buffer.alloc(1000).toString("base64")), /^base64:A{64}… \(1000 bytes; --json shows all\)$/);
  });
});
