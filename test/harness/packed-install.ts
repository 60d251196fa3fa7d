// Packs a copy of this checkout (`npm pack`, whose prepack builds) and installs the tarball into an empty folder as a user would; one install per tarball, shared by test processes.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const repo = fileURLToPath(new URL("../../", import.meta.url));

/** What installPackedPackage() made. */
export interface PackedInstall {
  /** The install folder: `npm init -y` + `npm install <tarball>`; run `npx streamgate …` with this as cwd. */
  dir: string;
  /** The packed tarball (a copy inside `dir`). */
  tarball: string;
  /** package.json's version, e.g. `0.1.0`. */
  version: string;
  /** Environment for commands in `dir`: PATH starts with `<dir>/node_modules/.bin`, then this node's folder. */
  env: NodeJS.ProcessEnv;
}

/** Prefix of the cached install folders under os.tmpdir(); the tarball's sha256 follows. */
const CACHE_PREFIX = "streamgate-packed-install-";
/** Written last into an install folder: its presence means the install completed. */
const DONE_MARKER = ".install-complete";
/** Longest the build + pack, or an install (better-sqlite3 compiles from source, ~1 min), may hold its lock. */
const LOCK_STALE_MS = 15 * 60_000;
/** Output kept from a failed npm command, for the error message. */
const MAX_OUTPUT = 8_000;

let installing: Promise<PackedInstall> | undefined;

/**
 * Builds and packs this checkout once per process and installs the tarball into a folder under os.tmpdir() named by
 * the tarball's sha256. Test processes share that folder (node's test runner runs each file in its own process):
 * a `mkdir` lock (stale after its owner died or after 15 min) makes one of them install while the others wait, and a
 * finished install is reused until the package's content changes. The folder is deliberately kept for the next test
 * file or run; making a new one removes the older ones.
 */
export function installPackedPackage(): Promise<PackedInstall> {
  installing ??= install();
  return installing;
}

async function install(): Promise<PackedInstall> {
  const { version } = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as { version: string };
  const env = npmEnvironment();
  const packed = await packCheckout(env);
  try {
    const sha256 = createHash("sha256").update(readFileSync(packed)).digest("hex");
    const dir = join(tmpdir(), `${CACHE_PREFIX}${sha256.slice(0, 24)}`);
    const tarball = join(dir, `streamgate-${version}.tgz`);
    if (!existsSync(join(dir, DONE_MARKER))) {
      await withLock(`${dir}.lock`, async () => {
        if (existsSync(join(dir, DONE_MARKER))) return;
        rmSync(dir, { recursive: true, force: true });
        mkdirSync(dir, { recursive: true });
        copyFileSync(packed, tarball);
        await npm(["init", "-y"], dir, env);
        await npm(["install", "--no-audit", "--no-fund", "--prefer-offline", `./streamgate-${version}.tgz`], dir, env);
        writeFileSync(join(dir, DONE_MARKER), `${JSON.stringify({ sha256, at: new Date().toISOString() })}\n`);
        pruneOlderInstalls(dir);
      });
    }
    // `npx streamgate` must resolve to this install, never to a package of that name on the registry.
    const bin = join(dir, "node_modules", ".bin", "streamgate");
    const target = join(dir, "node_modules", "streamgate", "bin", "streamgate.mjs");
    if (!existsSync(bin) || realpathSync(bin) !== realpathSync(target)) {
      throw new Error(`packed install: ${bin} does not resolve to the installed package's ${target}`);
    }
    return {
      dir,
      tarball,
      version,
      env: { ...env, PATH: [join(dir, "node_modules", ".bin"), dirname(process.execPath), env.PATH].join(delimiter) },
    };
  } finally {
    rmSync(dirname(packed), { recursive: true, force: true });
  }
}

/**
 * The caller's environment for npm, minus what an outer `npm test` exported about the checkout (npm_package_*,
 * npm_lifecycle_*, npm_config_local_prefix: npx would take the checkout for the project). npm_config_nodedir passes
 * through (better-sqlite3 compiles against those headers); unset, it defaults to the running node's own headers.
 */
function npmEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_(package_|lifecycle_|command$|config_local_prefix$|config_call$)/i.test(key)) continue;
    env[key] = value;
  }
  const nodePrefix = dirname(dirname(process.execPath));
  if (env.npm_config_nodedir === undefined && existsSync(join(nodePrefix, "include", "node", "node.h"))) {
    env.npm_config_nodedir = nodePrefix;
  }
  env.npm_config_update_notifier = "false";
  return env;
}

/** What a pack needs from the checkout: the build's inputs and what `files` ships (no dist/, tests or history). */
const PACK_INPUTS = [
  "package.json",
  "package-lock.json",
  "README.md",
  "LICENSE",
  "tsconfig.json",
  "tsconfig.build.json",
  "bin",
  "proto",
  "scripts",
  "src",
  "web",
];

/**
 * `npm pack` (whose prepack builds) of a copy of the checkout in a temp folder, with the checkout's node_modules
 * linked in. Never in the checkout itself: the build rewrites dist/, which other test files may be running a
 * server from at that moment.
 */
async function packCheckout(env: NodeJS.ProcessEnv): Promise<string> {
  const destination = mkdtempSync(join(tmpdir(), "streamgate-pack-"));
  const staging = join(destination, "checkout");
  try {
    for (const entry of PACK_INPUTS) {
      if (existsSync(join(repo, entry))) cpSync(join(repo, entry), join(staging, entry), { recursive: true });
    }
    symlinkSync(join(repo, "node_modules"), join(staging, "node_modules"), "dir");
    await npm(["pack", "--pack-destination", destination], staging, env);
  } catch (error) {
    rmSync(destination, { recursive: true, force: true });
    throw error;
  }
  const [tarball, ...more] = readdirSync(destination).filter((name) => name.endsWith(".tgz"));
  if (tarball === undefined || more.length > 0)
    throw new Error(`npm pack wrote ${readdirSync(destination).join(", ")}`);
  return join(destination, tarball);
}

async function npm(args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<void> {
  try {
    await run("npm", args, { cwd, env, maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    const { stdout = "", stderr = "" } = error as { stdout?: string; stderr?: string };
    throw new Error(`npm ${args.join(" ")} failed in ${cwd}:\n${(stdout + stderr).slice(-MAX_OUTPUT)}`, {
      cause: error,
    });
  }
}

/**
 * Runs `work` holding a cross-process lock: the directory `path` (mkdir is atomic) with its owner's pid inside.
 * A lock whose owner is gone, or older than LOCK_STALE_MS, is broken.
 */
async function withLock<T>(path: string, work: () => Promise<T>): Promise<T> {
  const owner = join(path, "owner.json");
  for (;;) {
    try {
      mkdirSync(path);
      writeFileSync(owner, JSON.stringify({ pid: process.pid, at: Date.now() }));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      if (lockIsStale(path, owner)) rmSync(path, { recursive: true, force: true });
      else await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  try {
    return await work();
  } finally {
    rmSync(path, { recursive: true, force: true });
  }
}

function lockIsStale(path: string, owner: string): boolean {
  try {
    if (Date.now() - statSync(path).mtimeMs > LOCK_STALE_MS) return true;
    // The owner writes its pid right after mkdir; a lock without one for a few seconds was abandoned in between.
    if (!existsSync(owner)) return Date.now() - statSync(path).mtimeMs > 5_000;
    const { pid } = JSON.parse(readFileSync(owner, "utf8")) as { pid: number };
    process.kill(pid, 0);
    return false;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // EPERM: the process exists (another user's); ENOENT: the lock was just released.
    return code === "ESRCH";
  }
}

/** Removes the install folders of older tarballs (not the one in use, nor one being installed under its lock). */
function pruneOlderInstalls(current: string): void {
  for (const name of readdirSync(tmpdir())) {
    const path = join(tmpdir(), name);
    if (!name.startsWith(CACHE_PREFIX) || name.endsWith(".lock") || path === current) continue;
    if (existsSync(`${path}.lock`)) continue;
    rmSync(path, { recursive: true, force: true });
  }
}
