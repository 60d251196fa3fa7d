// Runs the shell examples of one Markdown page, in order, in one folder with one shell state (exported variables
// and the working directory carry from block to block), and stops what they started when the page ends.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import { join } from "node:path";
import { freePort } from "../harness/free-port.js";
import type { ShellExample } from "./parse-doc-examples.js";
import { parseDocExamples } from "./parse-doc-examples.js";

/**
 * Ports the docs may name for readability: 8000–8099, 3000, 4222 and 50051. Each page gets a free port for each,
 * substituted wherever the number stands alone (blocks, `ready=`, `expect=`, and the page's copy of `examples/`),
 * so pages run in parallel.
 */
export const documentedPorts: readonly number[] = [
  ...Array.from({ length: 100 }, (_, index) => 8000 + index),
  3000,
  4222,
  50051,
];

/** Programs the examples may call that are not part of Node; a page using a missing one skips, or fails in CI. */
export const peerPrograms = ["curl", "nats-server", "jq", "openssl"] as const;

export interface RunPageOptions {
  /** Page path shown in messages, e.g. `docs/cli.md`. */
  page: string;
  markdown: string;
  /** Folder of the run (a packed install); the page's folder is made inside it. */
  installDir: string;
  env: NodeJS.ProcessEnv;
  /** Folder copied to `<page folder>/examples` before the first block (ports rewritten). */
  examplesDir?: string;
  /** With `CI=true` a missing peer program fails the page instead of skipping it. */
  requirePeers: boolean;
}

export interface PageResult {
  ran: number;
  skipped: { line: number; reason: string; checkedBy?: string }[];
  /** Set when the page was not run because a peer program is missing (never with `requirePeers`). */
  missingPeers?: string[];
}

function hasProgram(name: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" }).status === 0;
}

/** Copies `from` to `to`, rewriting the documented ports in every file. */
function copyWithPorts(from: string, to: string, rewrite: (text: string) => string): void {
  cpSync(from, to, { recursive: true });
  const visit = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) visit(path);
      else writeFileSync(path, rewrite(readFileSync(path, "utf8")));
    }
  };
  visit(to);
}

/** A regular expression for one expected output line: digits, timestamps and spacing may differ; `…` is anything. */
function linePattern(expected: string): RegExp {
  const escaped = expected
    .trim()
    .split("…")
    .map((part) =>
      part
        .replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
        .replace(/\d+/g, "\\d+")
        .replace(/\s+/g, "\\s+"),
    );
  return new RegExp(escaped.join(".*"));
}

interface Started {
  example: ShellExample;
  child: ChildProcess;
  output: () => string;
  /** The shell's exit status (128 when killed by a signal). */
  exited: Promise<number | null>;
  /** Every holder of the output pipes is gone: the shell and whatever it started. */
  closed: Promise<void>;
}

/** Every process group still running, so that even an aborted test run leaves none behind. */
const liveGroups = new Set<number>();
process.on("exit", () => {
  for (const pid of liveGroups) killGroup(pid, "SIGKILL");
});

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** Starts `bash script` in its own process group, collecting stdout and stderr together. */
function startShell(scriptPath: string, cwd: string, env: NodeJS.ProcessEnv, example: ShellExample): Started {
  const child = spawn("bash", [scriptPath], { cwd, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  liveGroups.add(child.pid!);
  let output = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => {
    child.on("exit", (code, signal) => resolve(code ?? (signal === null ? null : 128)));
  });
  const closed = new Promise<void>((resolve) => child.on("close", () => resolve()));
  return { example, child, output: () => output, exited, closed };
}

async function isReady(target: string): Promise<boolean> {
  if (target.startsWith("tcp://")) {
    const { hostname, port } = new URL(target);
    return new Promise((resolve) => {
      const socket = tcpConnect(Number(port), hostname);
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
  }
  try {
    const response = await fetch(target, { signal: AbortSignal.timeout(1000) });
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}

const tail = (text: string, chars = 3000) => (text.length > chars ? `…${text.slice(-chars)}` : text);

/**
 * Runs every example of one page. Resolves with what ran and what was skipped; rejects with the page, line,
 * script and output of the first example that fails (and the output of the page's background commands).
 */
export async function runPageExamples(options: RunPageOptions): Promise<PageResult> {
  const examples = parseDocExamples(options.page, options.markdown);
  const shell = examples.filter((example): example is ShellExample => example.kind === "shell");
  const result: PageResult = { ran: 0, skipped: [] };
  for (const example of shell.filter((example) => example.skip !== undefined)) {
    result.skipped.push({
      line: example.line,
      reason: example.skip!,
      ...(example.checkedBy ? { checkedBy: example.checkedBy } : {}),
    });
  }
  const toRun = shell.filter((example) => example.skip === undefined);
  if (toRun.length === 0) return result;

  const needed = peerPrograms.filter((name) =>
    toRun.some((example) => new RegExp(`(^|[\\s|;&(])${name}\\b`, "m").test(example.script)),
  );
  const missing = needed.filter((name) => !hasProgram(name));
  if (missing.length > 0) {
    if (options.requirePeers)
      throw new Error(`${options.page}: peer program(s) missing (CI=true): ${missing.join(", ")}`);
    return { ...result, missingPeers: missing };
  }

  const ports = new Map<number, number>();
  for (const port of documentedPorts) ports.set(port, await freePort());
  const portPattern = /(?<!\d)(80\d\d|3000|4222|50051)(?!\d)/g;
  const rewrite = (text: string) => text.replace(portPattern, (port) => String(ports.get(Number(port))));

  // A fresh folder per run (the install is cached across runs): a page's data (./data, created topics) from an
  // earlier run would make its examples fail as ALREADY_EXISTS. Inside the install, so `npx streamgate` finds it.
  mkdirSync(join(options.installDir, "pages"), { recursive: true });
  const pageDir = mkdtempSync(join(options.installDir, "pages", `${options.page.replace(/[^\w.-]+/g, "_")}-`));
  if (options.examplesDir !== undefined) copyWithPorts(options.examplesDir, join(pageDir, "examples"), rewrite);
  const state = join(pageDir, ".example-shell-state");
  writeFileSync(state, "");
  const env: NodeJS.ProcessEnv = {
    ...options.env,
    // The documented default server (http://localhost:8080) is this page's port 8080.
    PORT: String(ports.get(8080)),
    STREAMGATE_URL: `http://localhost:${ports.get(8080)}`,
    // …and the tunnel entries' default ports are its 8001 and 8002.
    STREAMGATE_TUNNEL_HTTP_PORT: String(ports.get(8001)),
    STREAMGATE_TUNNEL_GRPC_PORT: String(ports.get(8002)),
    // npx must never fetch `streamgate` from the registry: only the installed one counts.
    npm_config_offline: "true",
    npm_config_update_notifier: "false",
    // Saved contexts (streamgate context add) stay in the page's folder, never in the user's config home.
    XDG_CONFIG_HOME: join(pageDir, ".config"),
  };
  delete env.STREAMGATE_CONTEXT;
  delete env.PUBSUB_EMULATOR_HOST;
  delete env.STREAMGATE_TOKEN;
  delete env.STREAMGATE_PROJECT;

  const background: Started[] = [];
  const failure = (example: ShellExample, what: string, output: string) => {
    const others = background
      .filter((started) => started.example !== example)
      .map(
        (started) =>
          `--- output of the background example at line ${started.example.line} ---\n${tail(started.output())}`,
      );
    return new Error(
      [
        `${options.page}:${example.line}: \`\`\`${example.language} example ${what}`,
        `--- script (ports rewritten: ${[...ports]
          .filter(([from]) => example.script.includes(String(from)))
          .map(([from, to]) => `${from}→${to}`)
          .join(", ")}) ---`,
        rewrite(example.script),
        "--- output ---",
        tail(output),
        ...others,
      ].join("\n"),
    );
  };

  try {
    for (const [index, example] of toRun.entries()) {
      const scriptPath = join(pageDir, `.example-${index}.sh`);
      const saveState = `{ export -p; printf 'cd %q\\n' "$PWD"; } > ${JSON.stringify(state)}`;
      const body = rewrite(example.script);
      writeFileSync(
        scriptPath,
        example.background
          ? `. ${JSON.stringify(state)}\nset -eo pipefail\n${body}\n`
          : `. ${JSON.stringify(state)}\nset -eo pipefail\n${body}\n${saveState}\n`,
      );
      const started = startShell(scriptPath, pageDir, env, example);
      if (example.background) {
        background.push(started);
        await waitUntilReady(started, rewrite, failure);
        result.ran++;
        continue;
      }
      const timer = setTimeout(() => killGroup(started.child.pid!, "SIGKILL"), example.timeoutMs);
      const code = await started.exited;
      clearTimeout(timer);
      // Whatever the block left running (a stray `&`) ends with it.
      killGroup(started.child.pid!, "SIGKILL");
      await Promise.race([started.closed, new Promise((resolve) => setTimeout(resolve, 2000))]);
      liveGroups.delete(started.child.pid!);
      const output = started.output();
      if (code !== example.exit) {
        const why = code === 128 || code === null ? `was killed after ${example.timeoutMs} ms` : `exited ${code}`;
        throw failure(example, `failed: it ${why}, expected exit ${example.exit}`, output);
      }
      if (example.expect !== undefined && !output.includes(rewrite(example.expect))) {
        throw failure(example, `failed: its output lacks ${JSON.stringify(rewrite(example.expect))}`, output);
      }
      const outputLines = output.split("\n").map((line) => line.trim());
      for (const expected of example.expectedLines) {
        const pattern = linePattern(rewrite(expected));
        if (!outputLines.some((line) => pattern.test(line))) {
          throw failure(example, `failed: no output line looks like ${JSON.stringify(expected)}`, output);
        }
      }
      result.ran++;
    }
  } finally {
    await stopAll(background);
    rmSync(pageDir, { recursive: true, force: true });
  }
  return result;
}

async function waitUntilReady(
  started: Started,
  rewrite: (text: string) => string,
  failure: (example: ShellExample, what: string, output: string) => Error,
): Promise<void> {
  const { example } = started;
  const deadline = Date.now() + example.timeoutMs;
  let exitCode: number | null | undefined;
  void started.exited.then((code) => (exitCode = code));
  for (;;) {
    if (exitCode !== undefined) throw failure(example, `exited ${exitCode} before it was ready`, started.output());
    const ready =
      (example.ready === undefined || (await isReady(rewrite(example.ready)))) &&
      (example.readyOutput === undefined || started.output().includes(rewrite(example.readyOutput)));
    if (ready) return;
    if (Date.now() > deadline) {
      throw failure(
        example,
        `was not ready within ${example.timeoutMs} ms (${example.ready ?? example.readyOutput})`,
        started.output(),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** SIGTERM to every background group, then SIGKILL to those still running after 3 s. */
async function stopAll(background: Started[]): Promise<void> {
  for (const started of background.reverse()) killGroup(started.child.pid!, "SIGTERM");
  await Promise.all(
    background.map(async (started) => {
      const timer = setTimeout(() => killGroup(started.child.pid!, "SIGKILL"), 3000);
      await started.closed;
      clearTimeout(timer);
      killGroup(started.child.pid!, "SIGKILL");
      liveGroups.delete(started.child.pid!);
    }),
  );
}
