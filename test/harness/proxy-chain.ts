// The L4 hops of the seed's chain as real processes: Debian nginx `stream` with deploy/nginx/streamgate-stream.conf
// (proxy_protocol on), and haproxy in TCP mode with deploy/haproxy/streamgate.cfg (send-proxy-v2).
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "./free-port.js";
import { createNginxDir, fillTemplate, requireNginx, runNginx } from "./nginx.js";

/** Where Debian's libnginx-mod-stream puts the module. */
export const NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so";
const streamTemplatePath = fileURLToPath(new URL("../../deploy/nginx/streamgate-stream.conf", import.meta.url));
const haproxyConfigPath = fileURLToPath(new URL("../../deploy/haproxy/streamgate.cfg", import.meta.url));
const haproxyCandidates = ["/usr/sbin/haproxy", "/usr/local/sbin/haproxy", "/usr/bin/haproxy"];

/** The haproxy binary, or null when it is not installed. */
export function findHaproxy(): string | null {
  return haproxyCandidates.find((path) => existsSync(path)) ?? null;
}

/** Whether nginx's stream module (libnginx-mod-stream) is installed. */
export function hasNginxStreamModule(): boolean {
  return existsSync(NGINX_STREAM_MODULE);
}

export interface RunningL4 {
  /** 127.0.0.1:<port> */
  hostPort: string;
  port: number;
  log(): string;
  stop(): Promise<void>;
}

/** nginx `stream { }` from deploy/nginx/streamgate-stream.conf: TCP to 127.0.0.1:`upstreamPort` with proxy_protocol on. */
export async function startStreamNginx(options: { upstreamPort: number; timeout: string }): Promise<RunningL4> {
  const binary = requireNginx();
  if (!hasNginxStreamModule())
    throw new Error(`nginx's stream module is not installed (apt-get install -y libnginx-mod-stream)`);
  const dir = createNginxDir("streamgate-nginx-l4-");
  const port = await freePort();
  const stream = fillTemplate(readFileSync(streamTemplatePath, "utf8"), {
    STREAMGATE_STREAM_LISTEN: `127.0.0.1:${port}`,
    STREAMGATE_UPSTREAM: `127.0.0.1:${options.upstreamPort}`,
    STREAMGATE_STREAM_TIMEOUT: options.timeout,
  });
  writeFileSync(join(dir, "streamgate-stream.conf"), stream);
  const nginx = await runNginx({
    binary,
    dir,
    port,
    workers: 1,
    workerConnections: 1024,
    main: `load_module ${NGINX_STREAM_MODULE};\nstream {\n    include ${join(dir, "streamgate-stream.conf")};\n}\n`,
    http: "",
  });
  return { hostPort: `127.0.0.1:${port}`, port, log: nginx.log, stop: nginx.stop };
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

/** haproxy (foreground) with deploy/haproxy/streamgate.cfg, its "${...}" variables given in the environment. */
export async function startHaproxy(options: { upstreamPort: number; timeout: string }): Promise<RunningL4> {
  const binary = findHaproxy();
  if (binary === null) throw new Error("haproxy is not installed (apt-get install -y haproxy)");
  const port = await freePort();
  const child: ChildProcess = spawn(binary, ["-db", "-f", haproxyConfigPath], {
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      STREAMGATE_LISTEN: `127.0.0.1:${port}`,
      STREAMGATE_UPSTREAM: `127.0.0.1:${options.upstreamPort}`,
      STREAMGATE_STREAM_TIMEOUT: options.timeout,
    },
  });
  let log = "";
  for (const stream of [child.stdout!, child.stderr!]) {
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      log += chunk;
    });
  }
  const exited = once(child, "exit");
  const deadline = Date.now() + 10_000;
  while (!(await portOpen(port))) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`haproxy exited early:\n${log}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`haproxy did not listen on ${port} in 10 s:\n${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return {
    hostPort: `127.0.0.1:${port}`,
    port,
    log: () => log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}
