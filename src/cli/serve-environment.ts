// What `serve` checks and cleans up around a start: the data dir, a generated auth secret, bound addresses, and
// environment errors (port in use, unwritable dir) turned into one line naming the path or listener, cause and fix.
import { randomBytes } from "node:crypto";
import { accessSync, constants, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { dirname, resolve } from "node:path";
import type { ServerOptions } from "../config/index.js";
import { CliError } from "./args.js";

/** What a start created, so a failed start can remove it again. */
export interface StartFootprint {
  /** Remove what this start created (new files in the data dir, the dir itself, a generated secret). */
  undo(): void;
  /** Set when this start generated the auth secret file. */
  readonly generatedSecretFile: string | null;
}

function describeErrno(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  return code === undefined ? String((error as Error).message ?? error) : code;
}

/** The first missing folder on the way to `path` (what `mkdir -p` would create first), or null if it exists. */
function firstMissing(path: string): string | null {
  let missing: string | null = null;
  let current = resolve(path);
  while (!existsSync(current)) {
    missing = current;
    const parent = dirname(current);
    if (parent === current) break;
    current = parent;
  }
  return missing;
}

/**
 * Checks that the embedded engine's data dir can be used (a directory, writable: a probe file is created and
 * removed) before anything is opened, and records what exists so a failed start can undo what it added.
 * @throws CliError naming the path, the cause and the fix.
 */
function prepareDataDir(dataDir: string): () => void {
  const flag = "--data-dir (STREAMGATE_DATA_DIR, config dataDir)";
  const missing = firstMissing(dataDir);
  if (missing === null) {
    if (!statSync(dataDir).isDirectory()) {
      throw new CliError(
        `data dir ${dataDir} is a file, not a directory: point ${flag} at a directory, or move the file away`,
      );
    }
    const before = new Set(readdirSync(dataDir));
    const probe = resolve(dataDir, `.streamgate-write-check-${process.pid}`);
    try {
      writeFileSync(probe, "", { flag: "wx" });
      rmSync(probe, { force: true });
    } catch (error) {
      throw new CliError(
        `data dir ${dataDir} is not writable (${describeErrno(error)}): make it writable for this user, or point ${flag} at a writable directory`,
      );
    }
    // An existing database is never touched; a new one (and what came with it) is removed again.
    if ([...before].some((name) => name.startsWith("streamgate.db"))) return () => undefined;
    return () => {
      for (const name of readdirSync(dataDir)) if (!before.has(name)) rmSync(resolve(dataDir, name), { force: true });
    };
  }
  const parent = dirname(missing);
  if (!statSync(parent).isDirectory()) {
    throw new CliError(
      `data dir ${dataDir} cannot be created: ${parent} is a file, not a directory; point ${flag} elsewhere`,
    );
  }
  try {
    accessSync(parent, constants.W_OK);
    // Probe for real: root passes access() on a read-only mount or without the capability to override modes.
    mkdirSync(missing);
    rmSync(missing, { recursive: true, force: true });
  } catch (error) {
    throw new CliError(
      `data dir ${dataDir} cannot be created in ${parent} (${describeErrno(error)}): create it with write access for this user, or point ${flag} at a writable directory`,
    );
  }
  return () => rmSync(missing, { recursive: true, force: true });
}

/**
 * With `authSecretGenerate` and a secret file that does not exist: writes a new random secret (48 bytes,
 * base64url) to it with mode 0600, creating its folder.
 */
function generateSecretFile(path: string): void {
  mkdirSync(dirname(resolve(path)), { recursive: true, mode: 0o700 });
  writeFileSync(path, `${randomBytes(48).toString("base64url")}\n`, { flag: "wx", mode: 0o600 });
}

/** Checks the environment of a start and prepares it; `undo()` removes what was added if the start fails. */
export function prepareStart(options: ServerOptions): StartFootprint {
  const undoDataDir = options.engine === "embedded" ? prepareDataDir(options.dataDir) : () => undefined;
  let generatedSecretFile: string | null = null;
  let createdSecretDir: string | null = null;
  if (options.authSecretGenerate && options.authSecretFile !== null && !existsSync(options.authSecretFile)) {
    createdSecretDir = firstMissing(dirname(resolve(options.authSecretFile)));
    try {
      generateSecretFile(options.authSecretFile);
    } catch (error) {
      throw new CliError(
        `cannot create the auth secret file ${options.authSecretFile} (${describeErrno(error)}): choose a writable path with --auth-secret-file`,
      );
    }
    generatedSecretFile = options.authSecretFile;
  }
  return {
    generatedSecretFile,
    undo() {
      undoDataDir();
      if (generatedSecretFile !== null) rmSync(generatedSecretFile, { force: true });
      if (createdSecretDir !== null) rmSync(createdSecretDir, { recursive: true, force: true });
    },
  };
}

/** Which listener uses `port`, and the flag and env var that set it. */
function listenerOfPort(options: ServerOptions, port: number): { name: string; flag: string; env: string } {
  if (options.tunnelRulesPath !== null && port === options.tunnelHttpPort) {
    return { name: "the tunnel HTTP entry", flag: "--tunnel-http-port", env: "STREAMGATE_TUNNEL_HTTP_PORT" };
  }
  if (options.tunnelRulesPath !== null && port === options.tunnelGrpcPort) {
    return { name: "the tunnel gRPC entry", flag: "--tunnel-grpc-port", env: "STREAMGATE_TUNNEL_GRPC_PORT" };
  }
  return { name: "the main listener", flag: "--port", env: "PORT" };
}

/**
 * A start failure caused by the environment as one line that names the listener or path, the cause and the fix;
 * undefined for other errors.
 */
export function describeStartError(error: unknown, options: ServerOptions): CliError | undefined {
  const failure = error as NodeJS.ErrnoException & { port?: number; address?: string };
  const binding = failure?.syscall === "listen" || failure?.syscall === "bind";
  if (binding && (failure.code === "EADDRINUSE" || failure.code === "EACCES" || failure.code === "EADDRNOTAVAIL")) {
    const port = failure.port ?? options.port;
    const where = `${failure.address ?? options.host}:${port}`;
    const { name, flag, env } = listenerOfPort(options, port);
    const setBy = `${name}, set by ${flag} / $${env}`;
    if (failure.code === "EADDRINUSE") {
      return new CliError(
        `port ${port} is already in use (EADDRINUSE on ${where}, ${setBy}): stop the process using it, or choose another port with ${flag}`,
      );
    }
    if (failure.code === "EACCES") {
      return new CliError(
        `not allowed to bind ${where} (EACCES, ${setBy}): ports below 1024 need privileges; choose a port >= 1024 with ${flag}`,
      );
    }
    return new CliError(
      `cannot bind ${where} (EADDRNOTAVAIL, ${setBy}): ${failure.address ?? options.host} is not an address of this machine; fix --host`,
    );
  }
  const message = error instanceof Error ? error.message : "";
  if (/unable to open database file|SQLITE_CANTOPEN|SQLITE_READONLY|readonly database/i.test(message)) {
    return new CliError(
      `data dir ${options.dataDir}: the SQLite database cannot be opened for writing (${message}): make the directory and its files writable for this user, or point --data-dir elsewhere`,
    );
  }
  return undefined;
}

/**
 * URLs a bound address is reachable at: the address itself, or for a wildcard (0.0.0.0, ::) loopback first and then
 * every address of this machine's interfaces.
 */
export function reachableUrls(scheme: string, host: string, port: number): string[] {
  const url = (address: string) => `${scheme}://${address.includes(":") ? `[${address}]` : address}:${port}`;
  if (host !== "0.0.0.0" && host !== "::") return [url(host)];
  const addresses: string[] = [];
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) {
      if (host === "0.0.0.0" && entry.family !== "IPv4") continue;
      if (entry.family === "IPv6" && entry.address.startsWith("fe80")) continue;
      addresses.push(entry.address);
    }
  }
  addresses.sort((a, b) => Number(b.startsWith("127.") || b === "::1") - Number(a.startsWith("127.") || a === "::1"));
  return addresses.length === 0 ? [url(host === "::" ? "::1" : "127.0.0.1")] : addresses.map(url);
}

/** True for 0.0.0.0 and ::, which accept connections on every interface. */
export function isWildcardHost(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "[::]";
}
