// Runs Debian's nginx in the foreground: any http block (runNginx), or deploy/nginx/streamgate.conf with TLS (startNginx).
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "./free-port.js";
import { createSelfSigned } from "./self-signed.js";

export const nginxTemplatePath = fileURLToPath(new URL("../../deploy/nginx/streamgate.conf", import.meta.url));
const candidates = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"];

/** The nginx binary, or null when it is not installed. */
export function findNginx(): string | null {
  for (const path of candidates) if (existsSync(path)) return path;
  try {
    return execFileSync("sh", ["-c", "command -v nginx"], { encoding: "utf8" }).trim() || null;
  } catch {
    return null;
  }
}

/** Fills the ${STREAMGATE_*} placeholders of the template; an unknown or missing one is an error. */
export function fillTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\$\{(STREAMGATE_[A-Z0-9_]+)\}/g, (_match, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`no value for \${${name}} in the nginx template`);
    return value;
  });
}

export interface NginxOptions {
  /** streamgate's port on 127.0.0.1. */
  upstreamPort: number;
  /** nginx duration for STREAMGATE_STREAM_TIMEOUT, e.g. "2s". Default "1h". */
  readTimeout?: string;
}

export interface RunningNginx {
  /** 127.0.0.1:<port> (TLS, ALPN h2 and http/1.1). */
  hostPort: string;
  port: number;
  /** https://127.0.0.1:<port> */
  url: string;
  /** The self-signed certificate clients must trust (CN localhost, SAN 127.0.0.1). */
  cert: Buffer;
  dir: string;
  /** Everything nginx wrote to stderr (its error log). */
  log(): string;
  stop(): Promise<void>;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** `nginx -t` on the filled config; throws with nginx's output when it is invalid. */
export function checkNginxConfig(binary: string, dir: string, confPath: string): string {
  try {
    return execFileSync(binary, ["-t", "-p", dir, "-e", "stderr", "-c", confPath], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (error) {
    const failed = error as { stderr?: string; stdout?: string };
    throw new Error(`nginx -t failed:\n${failed.stderr ?? ""}${failed.stdout ?? ""}`);
  }
}

/** The nginx binary; throws when it is not installed. */
export function requireNginx(): string {
  const binary = findNginx();
  if (binary === null) throw new Error("nginx is not installed (apt-get install -y nginx)");
  return binary;
}

/** A temp dir for nginx's prefix (`-p`), with the folders its temp paths point at. */
export function createNginxDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  for (const sub of ["client_body", "proxy", "fastcgi", "uwsgi", "scgi", "logs"]) mkdirSync(join(dir, sub));
  return dir;
}

export interface NginxProcessOptions {
  binary: string;
  /** From createNginxDir; removed by stop(). */
  dir: string;
  /** The port the config listens on; started means it accepts connections. */
  port: number;
  workers: number;
  workerConnections: number;
  /** The inside of the `http { }` block, after the temp paths (indented by 4). */
  http: string;
  /** Main-context directives before `events` (load_module, a `stream { }` block). Default none. */
  main?: string;
}

export interface NginxProcess {
  /** The master's pid (the workers are its children). */
  pid: number;
  /** Everything nginx wrote to stderr (its error log). */
  log(): string;
  /** Stops nginx (SIGTERM), waits for it to exit and removes its dir. */
  stop(): Promise<void>;
}

/** Writes nginx.conf around `http`, checks it with `nginx -t`, starts nginx (`daemon off`) and waits for its port. */
export async function runNginx(options: NginxProcessOptions): Promise<NginxProcess> {
  const { binary, dir, port } = options;
  // Workers of a root master run as nobody, which cannot write into the 0700 temp dir: keep them root here.
  const user = process.getuid?.() === 0 ? "user root;\n" : "";
  const main = `${user}worker_processes ${options.workers};
error_log stderr warn;
${options.main ?? ""}events { worker_connections ${options.workerConnections}; }
http {
    access_log off;
    client_body_temp_path ${join(dir, "client_body")};
    proxy_temp_path ${join(dir, "proxy")};
    fastcgi_temp_path ${join(dir, "fastcgi")};
    uwsgi_temp_path ${join(dir, "uwsgi")};
    scgi_temp_path ${join(dir, "scgi")};
${options.http}}
`;
  const confPath = join(dir, "nginx.conf");
  writeFileSync(confPath, main);
  checkNginxConfig(binary, dir, confPath);

  const child: ChildProcess = spawn(
    binary,
    ["-p", dir, "-e", "stderr", "-c", confPath, "-g", `daemon off; pid ${join(dir, "nginx.pid")};`],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let log = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => {
    log += chunk;
  });
  const exited = once(child, "exit");
  const deadline = Date.now() + 10_000;
  while (!(await portOpen(port))) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`nginx exited early:\n${log}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`nginx did not listen on ${port} in 10 s:\n${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return {
    pid: child.pid ?? 0,
    log: () => log,
    async stop() {
      // SIGTERM is nginx's fast shutdown: open connections (streams) are closed at once.
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Writes the config and certificate into a temp dir, checks it with `nginx -t`, starts nginx and waits for its port. */
export async function startNginx(options: NginxOptions): Promise<RunningNginx> {
  const binary = requireNginx();
  const dir = createNginxDir("streamgate-nginx-");
  const tls = createSelfSigned();
  const port = await freePort();
  const site = fillTemplate(readFileSync(nginxTemplatePath, "utf8"), {
    STREAMGATE_LISTEN: `127.0.0.1:${port}`,
    STREAMGATE_UPSTREAM: `127.0.0.1:${options.upstreamPort}`,
    STREAMGATE_SSL_CERT: tls.certPath,
    STREAMGATE_SSL_KEY: tls.keyPath,
    STREAMGATE_STREAM_TIMEOUT: options.readTimeout ?? "1h",
  });
  writeFileSync(join(dir, "streamgate.conf"), site);
  const nginx = await runNginx({
    binary,
    dir,
    port,
    workers: 1,
    workerConnections: 1024,
    http: `    include ${join(dir, "streamgate.conf")};\n`,
  });
  return {
    hostPort: `127.0.0.1:${port}`,
    port,
    url: `https://127.0.0.1:${port}`,
    cert: tls.cert,
    dir,
    log: nginx.log,
    async stop() {
      await nginx.stop();
      rmSync(tls.dir, { recursive: true, force: true });
    },
  };
}
