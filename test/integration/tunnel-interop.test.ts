// The gRPC interop matrix (grpc-js client → grpc-js backend): DIRECT as the anchor, THROUGH NGINX
// grpc_pass (deploy/nginx/streamgate.conf, TLS + HTTP/2) and THROUGH THE TUNNEL (gRPC entry → server →
// agent → backend). The same cases run over each path.
import { after, before, describe } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { type InteropBackend, startInteropBackend } from "../harness/interop-backend.js";
import { registerInteropCases } from "../harness/interop-suite.js";
import { startTunnelStack, type TunnelStack } from "../harness/interop-tunnel.js";
import { findNginx, type RunningNginx, startNginx } from "../harness/nginx.js";
import { peersRequired } from "../harness/start-test-server.js";

const nginxBinary = findNginx();
if (nginxBinary === null && peersRequired())
  throw new Error("nginx is required with CI=true (apt-get install -y nginx)");
if (nginxBinary === null)
  console.warn(
    "\n*** SKIPPING the nginx part of test/integration/tunnel-interop.test.ts: nginx is not installed ***\n",
  );

describe("tunnel interop direct", () => {
  let backend: InteropBackend;
  before(async () => {
    backend = await startInteropBackend();
  });
  const suite = registerInteropCases("tunnel interop direct", {
    target: () => ({ name: "direct", address: backend.hostPort }),
    backend: () => backend,
  });
  after(async () => {
    suite.close();
    await backend?.close();
  });
});

describe("tunnel interop nginx", { skip: nginxBinary === null ? "nginx not installed" : false }, () => {
  let backend: InteropBackend;
  let nginx: RunningNginx;
  before(async () => {
    backend = await startInteropBackend();
    nginx = await startNginx({ upstreamPort: backend.port });
  });
  const suite = registerInteropCases("tunnel interop nginx", {
    target: () => ({
      name: "nginx grpc_pass",
      address: nginx.hostPort,
      credentials: grpc.credentials.createSsl(nginx.cert),
      // nginx forwards a client's RST_STREAM as END_STREAM: the backend's call ends, but not as cancelled.
      backendSeesCancelAs: "ended",
    }),
    backend: () => backend,
  });
  after(async () => {
    suite.close();
    await nginx?.stop();
    await backend?.close();
  });
});

describe("tunnel interop tunnel", () => {
  let stack: TunnelStack;
  before(async () => {
    stack = await startTunnelStack();
  });
  const suite = registerInteropCases("tunnel interop tunnel", {
    target: () => stack.grpcTarget(),
    backend: () => stack.backend,
  });
  after(async () => {
    suite.close();
    await stack?.close();
  });
});
