// A minimal nginx in front of one gRPC backend: cleartext HTTP/2 (h2c, prior knowledge) in, `grpc_pass`
// to the backend out. The one-hop anchor of bench/tunnel (deploy/nginx/streamgate.conf adds TLS, which
// the tunnel's cleartext gRPC entry does not pay, so the anchor would flatter the tunnel).
import { findFreePort } from "./nats-server.js";
import { createNginxDir, requireNginx, runNginx } from "./nginx.js";

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

/** Starts nginx (`daemon off`) with an h2c `grpc_pass` server block and waits for its port. */
export async function startGrpcNginx(options: GrpcNginxOptions): Promise<RunningGrpcNginx> {
  const binary = requireNginx();
  const dir = createNginxDir("streamgate-grpc-nginx-");
  const port = await findFreePort();
  const nginx = await runNginx({
    binary,
    dir,
    port,
    workers: options.workers ?? 1,
    workerConnections: 8192,
    http: `    upstream grpc_backend {
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
`,
  });
  return { hostPort: `127.0.0.1:${port}`, port, pid: nginx.pid, log: nginx.log, stop: nginx.stop };
}
