// The layering check (scripts/check-layers.mjs): a forbidden import fails it, with the files and the rule named.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { describe, test } from "node:test";
import { checkLayers, findLayerViolations, formatViolation } from "../../scripts/check-layers.mjs";

const root = resolve(import.meta.dirname, "../..");

/** Writes `files` (path relative to src/ → source) and the project's tsconfig.json into a fresh temp tree; returns its src/ folder. */
function fixtureTree(files: Record<string, string>): { src: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), "streamgate-layers-"));
  const src = join(dir, "src");
  copyFileSync(join(root, "tsconfig.json"), join(dir, "tsconfig.json"));
  for (const [path, source] of Object.entries(files)) {
    mkdirSync(dirname(join(src, path)), { recursive: true });
    writeFileSync(join(src, path), source);
  }
  return { src, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

describe("layering", () => {
  test("layering - a core module importing a transport fails, naming both files and the rule", async () => {
    const tree = fixtureTree({
      "broker/topic.ts": 'import { helper } from "../transports/rest/helper.js";\nexport const topic = helper;\n',
      "transports/rest/helper.ts": "export const helper = 1;\n",
    });
    try {
      const violations = await checkLayers(tree.src, join(root, "tsconfig.json"));
      assert.equal(violations.length, 1);
      const line = formatViolation(violations[0]!);
      assert.match(line, /src\/broker\/topic\.ts imports src\/transports\/rest\/helper\.ts/);
      assert.match(line, /core-is-neutral/);
    } finally {
      tree.remove();
    }
  });

  test("layering - type-only imports count, and transports importing each other or the tunnel importing the server fail", async () => {
    const tree = fixtureTree({
      "transports/sse/stream.ts":
        'import type { Helper } from "../rest/helper.js";\nexport const stream: Helper = 1;\n',
      "transports/rest/helper.ts": "export type Helper = number;\nexport const helper = 1;\n",
      "tunnel/server/entries.ts":
        'import { listen } from "../../server/listener.js";\nexport const entries = listen;\n',
      "server/listener.ts": "export const listen = 1;\n",
      "http/index.ts": 'import { helper } from "../transports/rest/helper.js";\nexport const http = helper;\n',
    });
    try {
      const violations = await checkLayers(tree.src, join(root, "tsconfig.json"));
      assert.deepEqual(
        violations.map((violation) => `${violation.file} -> ${violation.imported} (${violation.rule})`).sort(),
        [
          "transports/sse/stream.ts -> transports/rest/helper.ts (transports-apart)",
          "tunnel/server/entries.ts -> server/listener.ts (tunnel-no-server)",
        ],
      );
    } finally {
      tree.remove();
    }
  });

  test("layering - the rules over an injected graph: the edge and the server may import anything, a transport its own files", () => {
    const violations = findLayerViolations({
      "server/streamgate-server.ts": ["transports/sse/index.ts", "http/index.ts", "engines/index.ts"],
      "http/listener.ts": ["transports/grpc/index.ts"],
      "transports/sse/sse-stream.ts": ["transports/sse/events-route.ts", "http/index.ts", "streams/index.ts"],
      "engines/embedded/engine.ts": ["broker/types.ts", "auth/auth-edge.ts"],
      "streams/hub.ts": ["server/index.ts"],
    });
    assert.deepEqual(
      violations.map((violation) => `${violation.file} -> ${violation.imported} (${violation.rule})`),
      [
        "engines/embedded/engine.ts -> auth/auth-edge.ts (core-is-neutral)",
        "streams/hub.ts -> server/index.ts (core-is-neutral)",
      ],
    );
  });

  test("layering - the lint script exits non-zero and prints the violation; today's tree passes", () => {
    const tree = fixtureTree({
      "streams/hub.ts": 'import { listen } from "../http/listener.js";\nexport const hub = listen;\n',
      "http/listener.ts": "export const listen = 1;\n",
    });
    try {
      const script = join(root, "scripts", "check-layers.mjs");
      const failing = spawnSync(process.execPath, [script], { cwd: dirname(tree.src), encoding: "utf8" });
      assert.equal(failing.status, 1, failing.stderr);
      assert.match(failing.stderr, /src\/streams\/hub\.ts imports src\/http\/listener\.ts: rule core-is-neutral/);
      const passing = spawnSync(process.execPath, [script], { cwd: root, encoding: "utf8" });
      assert.equal(passing.status, 0, passing.stderr);
    } finally {
      tree.remove();
    }
  });
});
