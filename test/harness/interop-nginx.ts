// A minimal nginx in front of one gRPC backend: cleartext HTTP/2 (h2c, prior knowledge) in, `grpc_pass`
// to the backend out. The one-hop anchor of bench/tunnel (deploy/nginx/streamgate.conf adds TLS, which
// the tunnel's cleartext gRPC entry does not pay, so the anchor would flatter the tunnel).
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findFreePort } from "./nats-server.js";
import { checkNginxConfig, findNginx } from "./nginx.js";

export interface GrpcNginxOptions {
  /** The gRPC backend's port on 127.0.0.1 (h2c). */
  upstreamPort: number;
  /** nginx worker processes. Default 1 (one event loop, like the streamgate server). */
  workers?: number;
}

export interface RunningGrpcNginx {
  /** `127.0.0.1:<port>` (h2c). */
  hostPort: string;
  port: number;
  /** The master's pid (the worker is its child). */
  pid: number;
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

/** Starts nginx (`daemon off`) with an h2c `grpc_pass` server block and waits for its port. */
export async function startGrpcNginx(options: GrpcNginxOptions): Promise<RunningGrpcNginx> {
  const binary = findNginx();
  if (binary === null) throw new Error("nginx is not installed (apt-get install -y nginx)");
  const dir = mkdtempSync(join(tmpdir(), "streamgate-grpc-nginx-"));
  for (const sub of ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]) mkdirSync(join(dir, sub));
  const port = await findFreePort();
  const user = process.getuid?.() === 0 ? "user root;\n" : "";
  const conf = `${user}worker_processes ${options.workers ?? 1};
error_log stderr warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path ${join(dir, "client_body")};
    proxy_temp_path ${join(dir, "proxy")};
    fastcgi_temp_path ${join(dir, "fastcgi")};
    uwsgi_temp_path ${join(dir, "uwsgi")};
    scgi_temp_path ${join(dir, "scgi")};
    upstream grpc_backend {
        server 127.0.0.1:${options.upstreamPort};
        keepalive 256;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:${port} http2;
        keepalive_requests 1000000;
        http2_max_concurrent_streams 1024;
        client_max_body_size 0;
        location / {
            grpc_pass grpc://grpc_backend;
            grpc_read_timeout 1h;
            grpc_send_timeout 1h;
            client_body_timeout 1h;
        }
    }
}
`;
  const confPath = join(dir, "nginx.conf");
  writeFileSync(confPath, conf);
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
    hostPort: `127.0.0.1:${port}`,
    port,
    pid: child.pid ?? 0,
    log: () => log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
