// The npm package as a user gets it: the packed tarball installed into an empty folder runs `streamgate` and its
// client from plain Node (no TypeScript loader), with type declarations and a browser build.
import assert from "node:assert/strict";
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { installPackedPackage, type PackedInstall } from "../harness/packed-install.js";
import { peersRequired } from "../harness/start-test-server.js";
import { withTimeout } from "../harness/wait-for.js";

const run = promisify(execFile);
const repo = fileURLToPath(new URL("../../", import.meta.url));

/** npm, and the compilers better-sqlite3 builds from source with in the install; with CI=true never skipped. */
function toolsMissing(): string | false {
  const missing = ["npm", "make", "c++", "python3"].filter((tool) => {
    try {
      execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length === 0 || peersRequired()) return false;
  const reason = `${missing.join(", ")} not found: the packed install needs npm and a C++ toolchain (apt-get install -y build-essential python3)`;
  console.warn(`\n*** SKIPPING package tests: ${reason} ***\n`);
  return reason;
}

/** `streamgate serve` through the installed bin (found on the install's PATH); resolves with its URL. */
async function serve(installed: PackedInstall, dataDir: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(
    "streamgate",
    ["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", dataDir, "--log-level", "warn"],
    { cwd: installed.dir, env: installed.env, stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr!.setEncoding("utf8");
  const url = new Promise<string>((resolve, reject) => {
    child.stderr!.on("data", (chunk: string) => {
      stderr += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(stderr);
      if (match !== null) resolve(match[1]!);
    });
    child.once("exit", (code, signal) => reject(new Error(`streamgate serve exited (${code ?? signal}):\n${stderr}`)));
  });
  try {
    return { url: await withTimeout(url, 30_000, "the installed streamgate to listen"), child };
  } catch (error) {
    await stop(child);
    throw error;
  }
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  await withTimeout(exited, 15_000, "streamgate to exit").catch(() => child.kill("SIGKILL"));
}

/** Output lines of a child, as they come. */
function lines(child: ChildProcess): AsyncIterator<string> {
  child.stdout!.setEncoding("utf8");
  let buffered = "";
  const queue: string[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  child.stdout!.on("data", (chunk: string) => {
    buffered += chunk;
    const parts = buffered.split("\n");
    buffered = parts.pop()!;
    queue.push(...parts);
    wake?.();
  });
  child.stdout!.on("end", () => {
    ended = true;
    wake?.();
  });
  return {
    async next() {
      while (queue.length === 0 && !ended) await new Promise<void>((resolve) => (wake = resolve));
      const line = queue.shift();
      return line === undefined ? { done: true, value: undefined } : { done: false, value: line };
    },
  };
}

const skip = toolsMissing();

describe("packed install", { skip }, () => {
  let installed: PackedInstall;
  /** This file's scratch folder inside the (shared) install folder, so bare imports resolve to the install. */
  let scratch: string;
  let dataDir: string | undefined;
  const children: ChildProcess[] = [];

  before(
    async () => {
      installed = await installPackedPackage();
      scratch = mkdtempSync(join(installed.dir, "test-"));
    },
    { timeout: 15 * 60_000 },
  );
  after(async () => {
    for (const child of children) await stop(child);
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
    if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
  });

  test("package - npx streamgate --version prints package.json's version", async () => {
    // --no: never fetch a package of that name from the registry; it must be the installed one.
    const { stdout } = await run("npx", ["--no", "--", "streamgate", "--version"], {
      cwd: installed.dir,
      env: installed.env,
    });
    const { version } = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as { version: string };
    assert.equal(installed.version, version);
    assert.equal(stdout, `streamgate ${version}\n`);
  });

  test("package - the tarball ships dist (JS, .d.ts, generated protobuf code), proto, web and bin; no sources or TypeScript loader", () => {
    const files = execFileSync("tar", ["-tzf", installed.tarball], { encoding: "utf8" }).trim().split("\n");
    for (const expected of [
      "package/package.json",
      "package/LICENSE",
      "package/bin/streamgate.mjs",
      "package/dist/cli/main.js",
      "package/dist/client/index.d.ts",
      "package/dist/client/streamgate-client.browser.js",
      "package/dist/gen/streamgate/v1/events_pb.js",
      "package/proto/streamgate/v1/events.proto",
      "package/web/app.js",
    ]) {
      assert.ok(files.includes(expected), `${expected} is packed`);
    }
    const unexpected = files.filter((file) =>
      /^package\/(src|test|bench|scripts|deploy|docs)\/|\.test\.|\.ts$(?<!\.d\.ts)|\.tsbuildinfo$|\.build-stamp$/.test(
        file,
      ),
    );
    assert.deepEqual(unexpected, []);
    const manifest = JSON.parse(
      readFileSync(join(installed.dir, "node_modules", "streamgate", "package.json"), "utf8"),
    ) as { dependencies: Record<string, string> };
    assert.equal(manifest.dependencies.tsx, undefined, "tsx is not a runtime dependency");
  });

  test("package - streamgate serve from the install folder streams a published event to a plain-Node script importing streamgate/client", async () => {
    dataDir = mkdtempSync(join(tmpdir(), "streamgate-packed-data-"));
    const server = await serve(installed, dataDir);
    children.push(server.child);
    const topic = "projects/packed/topics/orders";
    const created = await fetch(`${server.url}/v1/${topic}`, {
      method: "PUT",
      body: "{}",
      headers: { connection: "close" },
    });
    assert.equal(created.status, 200, await created.text());

    const script = join(scratch, "subscribe.mjs");
    writeFileSync(
      script,
      [
        'import { createStreamClient } from "streamgate/client";',
        "const [baseUrl, topic] = process.argv.slice(2);",
        'console.log(import.meta.resolve("streamgate/client"));',
        "const client = createStreamClient({ baseUrl });",
        'for await (const message of client.subscribe(topic, { from: "latest", onOpen: () => console.log("open") })) {',
        "  const data = new TextDecoder().decode(message.data);",
        "  console.log(JSON.stringify({ offset: message.offset, data, attributes: message.attributes }));",
        "  break;",
        "}",
        "await client.close();",
        "",
      ].join("\n"),
    );
    // Plain node: no --import tsx, no loader; the bare specifier resolves through the install's node_modules.
    const subscriber = spawn(process.execPath, [script, server.url, topic], {
      cwd: installed.dir,
      env: installed.env,
      stdio: ["ignore", "pipe", "inherit"],
    });
    children.push(subscriber);
    const output = lines(subscriber);
    const next = async (what: string) => {
      const line = await withTimeout(output.next(), 15_000, what);
      assert.equal(line.done, false, `the script ended before ${what}`);
      return line.value as string;
    };
    assert.equal(
      await next("the resolved module"),
      `file://${join(installed.dir, "node_modules", "streamgate", "dist", "client", "index.js")}`,
    );
    assert.equal(await next("the subscription to open"), "open");

    const published = await fetch(`${server.url}/v1/${topic}:publish`, {
      method: "POST",
      headers: { "content-type": "application/json", connection: "close" },
      body: JSON.stringify({
        messages: [{ data: Buffer.from("hello from npm").toString("base64"), attributes: { k: "v" } }],
      }),
    });
    assert.equal(published.status, 200, await published.text());
    assert.deepEqual(JSON.parse(await next("the event")), {
      offset: 1,
      data: "hello from npm",
      attributes: { k: "v" },
    });
    const [code] = (await withTimeout(once(subscriber, "exit"), 10_000, "the script to exit")) as [number | null];
    assert.equal(code, 0);
  });

  test("package - TypeScript resolves streamgate/client's declarations from the installed package", async () => {
    const { dir } = installed;
    assert.ok(
      readFileSync(join(dir, "node_modules/streamgate/dist/client/index.d.ts"), "utf8").includes("createStreamClient"),
    );
    const project = join(scratch, "types");
    execFileSync("mkdir", ["-p", project]);
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          module: "NodeNext",
          moduleResolution: "NodeNext",
          target: "ES2022",
          lib: ["ES2022", "DOM"],
          types: [],
          strict: true,
          noEmit: true,
          skipLibCheck: false,
        },
        files: ["check.mts"],
      }),
    );
    writeFileSync(
      join(project, "check.mts"),
      [
        'import { createStreamClient, type StreamMessage, StreamClientError } from "streamgate/client";',
        'const client = createStreamClient({ baseUrl: "http://127.0.0.1:8080", transport: "websocket" });',
        'const messages: AsyncIterable<StreamMessage> = client.subscribe("orders", { from: 0, onOpen: () => {} });',
        "for await (const message of messages) {",
        "  const offset: number = message.offset;",
        "  const data: Uint8Array = message.data;",
        "  console.log(offset, data.length);",
        "}",
        'const error: StreamClientError = new StreamClientError("NOT_FOUND", "no topic");',
        "console.log(error.retryable);",
        "// @ts-expect-error: the transports are a closed set",
        'createStreamClient({ baseUrl: "http://127.0.0.1:8080", transport: "carrier-pigeon" });',
        "",
      ].join("\n"),
    );
    const tsc = join(repo, "node_modules", "typescript", "bin", "tsc");
    try {
      await run(process.execPath, [tsc, "-p", project], { cwd: project, env: installed.env });
    } catch (error) {
      const { stdout = "", stderr = "" } = error as { stdout?: string; stderr?: string };
      assert.fail(`tsc over a file importing streamgate/client failed:\n${stdout}${stderr}`);
    }
  });

  test("package - the browser condition of streamgate/client (and streamgate/client/browser) is one ES module without Node built-ins", async () => {
    const resolve = async (specifier: string, conditions: string[]) => {
      const code = `console.log(import.meta.resolve(${JSON.stringify(specifier)}))`;
      const { stdout } = await run(
        process.execPath,
        [...conditions.map((condition) => `--conditions=${condition}`), "--input-type=module", "-e", code],
        { cwd: installed.dir, env: installed.env },
      );
      return stdout.trim();
    };
    const file = join(installed.dir, "node_modules/streamgate/dist/client/streamgate-client.browser.js");
    assert.equal(await resolve("streamgate/client", ["browser"]), `file://${file}`);
    assert.equal(await resolve("streamgate/client/browser", []), `file://${file}`);
    const bundle = readFileSync(file, "utf8");
    assert.doesNotMatch(bundle, /\bfrom\s*["']node:|import\(\s*["']node:|\brequire\(/);
    assert.doesNotMatch(bundle, /^import\s/m, "every dependency is bundled in");
    assert.match(bundle, /export\s*\{[^}]*\bcreateStreamClient\b/);
  });
});
