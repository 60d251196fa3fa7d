// The option table: docs/options.md in sync, every option reachable by flag/env/file, config files read strictly.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import {
  ConfigFileError,
  defaultServerOptions,
  envNames,
  formatConfigFile,
  optionKeys,
  parseConfigFile,
  replaceOptionsMarkdown,
  resolveServerOptions,
  serverOptionsFromEnv,
  serverOptionsFromFlags,
  serverOptionTable,
} from "./index.js";

describe("option table", () => {
  test("options - docs/options.md carries the table generated from src/config/option-table.ts", () => {
    const docs = readFileSync(new URL("../../docs/options.md", import.meta.url), "utf8");
    assert.equal(
      replaceOptionsMarkdown(docs),
      docs,
      "docs/options.md is out of date: run node --import tsx scripts/write-options-doc.ts",
    );
    for (const key of optionKeys) assert.ok(docs.includes(`| \`${key}\` |`), `docs name config key ${key}`);
  });

  test("options - every option has a default, a unique flag and env var, and its default passes its own checks", () => {
    assert.deepEqual(new Set(optionKeys), new Set(Object.keys(defaultServerOptions)));
    const flags = optionKeys.map((key) => serverOptionTable[key].flag);
    const envs = optionKeys.map((key) => serverOptionTable[key].env);
    assert.equal(new Set(flags).size, flags.length);
    assert.equal(new Set(envs).size, envs.length);
    assert.equal(envNames.dataDir, "STREAMGATE_DATA_DIR");
    assert.deepEqual(resolveServerOptions({}), defaultServerOptions);
  });

  test("options - env and flags are parsed and range-checked from the table, naming where a bad value came from", () => {
    assert.deepEqual(serverOptionsFromEnv({ PORT: "9000", STREAMGATE_SYNC: "1", STREAMGATE_ENGINE: "jetstream" }), {
      port: 9000,
      syncEveryCommit: true,
      engine: "jetstream",
    });
    assert.deepEqual(serverOptionsFromFlags({ "drain-ms": "5", sync: true, "log-format": "json" }), {
      drainMs: 5,
      syncEveryCommit: true,
      logFormat: "json",
    });
    // `--no-sync` (parseArgs gives false) turns off what a file or the environment turned on.
    assert.deepEqual(serverOptionsFromFlags({ sync: false }), { syncEveryCommit: false });
    assert.equal(
      resolveServerOptions({ syncEveryCommit: true, ...serverOptionsFromFlags({ sync: false }) }).syncEveryCommit,
      false,
    );
    assert.throws(() => serverOptionsFromEnv({ PORT: "80a" }), /^StreamgateError: \$PORT: expected an integer/);
    assert.throws(
      () => serverOptionsFromEnv({ STREAMGATE_SYNC: "maybe" }),
      /\$STREAMGATE_SYNC: expected true or false/,
    );
    assert.throws(() => serverOptionsFromFlags({ port: "70000" }), /--port: must be 0\.\.65535, got 70000/);
    assert.throws(() => serverOptionsFromFlags({ "heartbeat-ms": "5" }), /--heartbeat-ms: must be >= 100, got 5/);
    assert.throws(() => serverOptionsFromFlags({ engine: "sqlite" }), /--engine: expected one of embedded, jetstream/);
    assert.throws(
      () => resolveServerOptions({ tunnelStandbyStreams: 0 }),
      /tunnelStandbyStreams: must be an integer >= 1, got 0/,
    );
  });

  test("config file - keys, types and ranges are the table's; problems name file, line and key", () => {
    assert.deepEqual(
      parseConfigFile("port: 9000\nsyncEveryCommit: true\ndataDir: /var/lib/sg\nauthIssuer: null\n", "a.yaml"),
      {
        port: 9000,
        syncEveryCommit: true,
        dataDir: "/var/lib/sg",
      },
    );
    assert.deepEqual(parseConfigFile("# nothing set\n", "empty.yaml"), {});
    const problems = (text: string) => {
      try {
        parseConfigFile(text, "streamgate.yaml");
      } catch (error) {
        assert.ok(error instanceof ConfigFileError);
        return error.message;
      }
      assert.fail("expected a ConfigFileError");
    };
    assert.equal(problems("port: 8080\nretension: 7d\n"), 'streamgate.yaml:2: unknown key "retension"');
    assert.equal(problems("prot: 8080\n"), 'streamgate.yaml:1: unknown key "prot" (did you mean "port"?)');
    assert.equal(problems("data-dir: x\n"), 'streamgate.yaml:1: unknown key "data-dir" (did you mean "dataDir"?)');
    assert.equal(
      problems("STREAMGATE_HEARTBEAT_MS: 100\n"),
      'streamgate.yaml:1: unknown key "STREAMGATE_HEARTBEAT_MS" (did you mean "heartbeatMs"?)',
    );
    assert.equal(
      problems("host: 127.0.0.1\nport: 99999\nsyncEveryCommit: 1\n"),
      "streamgate.yaml:2: port: must be 0..65535, got 99999; streamgate.yaml:3: syncEveryCommit: expected true or false, got 1",
    );
    assert.equal(problems("port: [1, 2]\n"), "streamgate.yaml:1: port: expected a single value, not a list or map");
    assert.match(problems("port: : :\n"), /^streamgate\.yaml:1: not valid YAML/);
    assert.equal(problems("- port\n"), "streamgate.yaml:1: expected a map of option: value");
  });

  test("config file - config init's file sets every default and reads back to the defaults", () => {
    const text = formatConfigFile();
    for (const key of optionKeys) assert.match(text, new RegExp(`^(# )?${key}: `, "m"), key);
    assert.deepEqual(resolveServerOptions(parseConfigFile(text, "init.yaml")), defaultServerOptions);
    assert.doesNotMatch(text, /^authSecret: /m, "secrets are never written out");
  });
});
