// Runs every shell example of README.md and docs/**/*.md against a real server, so the docs cannot rot.
//
// Convention (for writers):
// - Every ```sh, ```bash, ```shell and ```console block is an example and runs, in page order, in one folder per
//   page where the package is installed (`npx streamgate …` works) and `examples/` is copied. Exported variables
//   and the working directory carry from one block to the next. ```console blocks run their `$ ` lines; every
//   other line is output that must appear (digits, timestamps and spacing may differ; `…` matches anything).
// - An HTML comment on the line before a block (blank lines between are allowed) changes how it runs:
//     <!-- example: background ready=http://127.0.0.1:8080/readyz -->   a long-running command (serve, agent,
//        a backend): started, waited for (ready=URL answers 2xx, ready=tcp://host:port accepts, and/or
//        ready-output="TEXT" was printed), stopped (SIGTERM, then SIGKILL) when its page ends
//     <!-- example: expect="created topic" -->      the output must contain the text
//     <!-- example: exit=1 -->                        the expected exit status (default 0)
//     <!-- example: timeout=60 -->                    seconds (default 30)
//     <!-- example: skip reason="needs Docker" checked-by=test/deploy/manifests.test.ts -->   not run here; the
//        reason is reported, and `checked-by` (a test that checks the subject another way) must exist
//   A block of code or config taken from a file gets <!-- file: examples/x/y.mjs --> and must be a verbatim
//   excerpt of that file.
// - Ports: pages may name 8000-8099, 3000, 4222 and 50051 for readability. Each page gets a free port
//   for each, substituted wherever the number stands alone (in blocks, markers and the page's copy of
//   examples/); PORT and STREAMGATE_URL point at the page's 8080, so commands without --server reach it, and
//   STREAMGATE_TUNNEL_HTTP_PORT / _GRPC_PORT at its 8001 / 8002 (the entries' defaults).
//   Pages run in parallel (4 at a time).
// - A page whose examples call curl, nats-server, jq or openssl skips loudly when one is missing; with CI=true
//   it fails.
// Run: node --import tsx --test test/docs/docs-examples.test.ts
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { installPackedPackage, type PackedInstall } from "../harness/packed-install.js";
import { parseDocExamples } from "./parse-doc-examples.js";
import { type PageResult, runPageExamples } from "./run-doc-examples.js";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const fixtures = fileURLToPath(new URL("./fixtures/", import.meta.url));
const ci = process.env.CI === "true";

/**
 * Client packages the examples import besides streamgate. The README tells users to `npm install` them (a block
 * skipped here: no registry in tests); the test links the repository's installed copies instead.
 */
const exampleDependencies = ["@google-cloud/pubsub", "@grpc/grpc-js", "@grpc/proto-loader"] as const;

/** README.md and every Markdown file under docs/, repository-relative. */
function docPages(): string[] {
  const docs = readdirSync(join(repoRoot, "docs"), { recursive: true, encoding: "utf8" })
    .filter((name) => name.endsWith(".md"))
    .map((name) => join("docs", name))
    .sort();
  return ["README.md", ...docs];
}

let install: PackedInstall;
const results = new Map<string, PageResult>();

before(async () => {
  install = await installPackedPackage();
  for (const name of exampleDependencies) {
    const target = join(install.dir, "node_modules", name);
    if (existsSync(target)) continue;
    mkdirSync(join(target, ".."), { recursive: true });
    symlinkSync(join(repoRoot, "node_modules", name), target, "dir");
  }
});

after(() => {
  const ran = [...results.values()].reduce((sum, result) => sum + result.ran, 0);
  const skipped = [...results].flatMap(([page, result]) =>
    result.skipped.map(
      (skip) =>
        `  ${page}:${skip.line} skipped: ${skip.reason}${skip.checkedBy ? ` (checked by ${skip.checkedBy})` : ""}`,
    ),
  );
  const missing = [...results].filter(([, result]) => result.missingPeers !== undefined);
  console.log(
    [
      `docs examples: ${ran} run, ${skipped.length} skipped, on ${results.size} pages`,
      ...skipped,
      ...missing.map(([page, result]) => `  ${page}: NOT RUN, missing ${result.missingPeers!.join(", ")}`),
    ].join("\n"),
  );
});

describe("docs examples", { concurrency: 4 }, () => {
  for (const page of docPages()) {
    const markdown = readFileSync(join(repoRoot, page), "utf8");
    // Each example is killed at its own timeout; the page's is their sum plus a minute of set-up, so a page of
    // many examples on a loaded machine is judged example by example, not by a fixed total.
    const budgetMs = parseDocExamples(page, markdown).reduce(
      (sum, example) => sum + ("timeoutMs" in example ? example.timeoutMs : 0),
      60_000,
    );
    test(`docs - every shell example of ${page} runs as written`, { timeout: budgetMs }, async (t) => {
      const result = await runPageExamples({
        page,
        markdown,
        installDir: install.dir,
        env: install.env,
        examplesDir: join(repoRoot, "examples"),
        requirePeers: ci,
      });
      results.set(page, result);
      if (result.missingPeers !== undefined) {
        console.warn(`WARNING: ${page} not run: missing ${result.missingPeers.join(", ")} (CI=true fails)`);
        t.skip(`missing ${result.missingPeers.join(", ")}`);
      }
      for (const skip of result.skipped) {
        if (skip.checkedBy !== undefined) {
          assert.ok(
            existsSync(join(repoRoot, skip.checkedBy)),
            `${page}:${skip.line}: checked-by ${skip.checkedBy} does not exist`,
          );
        }
      }
      t.diagnostic(`${result.ran} run, ${result.skipped.length} skipped`);
    });
  }
});

test("docs - code and config blocks marked with a file are verbatim excerpts of it", () => {
  let checked = 0;
  for (const page of docPages()) {
    for (const example of parseDocExamples(page, readFileSync(join(repoRoot, page), "utf8"))) {
      if (example.kind !== "file") continue;
      const path = join(repoRoot, example.file);
      assert.ok(existsSync(path), `${page}:${example.line}: ${example.file} does not exist`);
      assert.ok(
        readFileSync(path, "utf8").includes(example.text),
        `${page}:${example.line}: the block is not a verbatim excerpt of ${example.file}; copy it again from the file`,
      );
      checked++;
    }
  }
  assert.ok(checked > 0, "no block is marked with <!-- file: … -->");
});

test("docs - README tells users to install every client package the examples import", () => {
  const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
  for (const name of exampleDependencies)
    assert.match(readme, new RegExp(`npm install [^\\n]*${name.replace("/", "\\/")}`));
});

describe("docs example runner", () => {
  // Where fixture pages leave what the test checks afterwards: the page's own folder is removed when it ends.
  const out = mkdtempSync(join(tmpdir(), "docs-runner-"));
  after(() => rmSync(out, { recursive: true, force: true }));
  const runFixture = async (name: string) =>
    runPageExamples({
      page: relative(repoRoot, join(fixtures, name)),
      markdown: readFileSync(join(fixtures, name), "utf8"),
      installDir: install.dir,
      env: { ...install.env, DOCS_TEST_OUT: out },
      requirePeers: true,
    });

  test("docs runner - a failing example fails the page, naming its page, line and output", async () => {
    await assert.rejects(runFixture("failing-example.md"), (error: Error) => {
      assert.match(error.message, /failing-example\.md:9: ```sh example failed: it exited 3/);
      assert.match(error.message, /this line is the output of the failing block/);
      return true;
    });
  });

  test("docs runner - output that differs from a console block fails", async () => {
    await assert.rejects(
      runFixture("wrong-output.md"),
      /wrong-output\.md:3: ```console example failed: no output line looks like "goodbye"/,
    );
  });

  test("docs runner - a skip without a reason and an unknown marker are refused", () => {
    assert.throws(
      () => parseDocExamples("x.md", "<!-- example: skip -->\n```sh\ntrue\n```\n"),
      /x\.md:2: "skip" needs reason=/,
    );
    assert.throws(
      () => parseDocExamples("x.md", "<!-- example: bogus -->\n```sh\ntrue\n```\n"),
      /unknown example attribute "bogus"/,
    );
  });

  test("docs runner - state carries between blocks, background commands stop when the page ends", async () => {
    const result = await runFixture("passing-page.md");
    assert.equal(result.ran, 4);
    assert.deepEqual(result.skipped, [{ line: 27, reason: "shows a skip" }]);
    const pid = Number(readFileSync(join(out, "background.pid"), "utf8"));
    assert.throws(() => process.kill(pid, 0), { code: "ESRCH" }, "the background server still runs");
  });
});
