// The interop suite through the tunnel with a real nginx between agent and server: the agent dials nginx
// (deploy/nginx/streamgate.conf: TLS, HTTP/2, gRPC by content type → grpc_pass) which forwards the tunnel's
// own gRPC calls (Control, Stream) to the server's main port over h2c.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { registerInteropCases } from "../harness/interop-suite.js";
import { startTunnelStack, type TunnelStack } from "../harness/interop-tunnel.js";
import { findNginx } from "../harness/nginx.js";
import { peersRequired } from "../harness/start-test-server.js";

const nginxBinary = findNginx();
if (nginxBinary === null && peersRequired())
  throw new Error("nginx is required with CI=true (apt-get install -y nginx)");
if (nginxBinary === null)
  console.warn(
    "\n*** SKIPPING test/integration/tunnel-nginx.test.ts: nginx is not installed (apt-get install -y nginx) ***\n",
  );

describe("tunnel nginx", { skip: nginxBinary === null ? "nginx not installed" : false }, () => {
  let stack: TunnelStack;
  before(async () => {
    stack = await startTunnelStack({ via: "nginx" });
  });
  test("tunnel nginx - the agent's session runs through nginx", () => {
    assert.ok(stack.nginx !== null);
    assert.ok(stack.agentServerUrl.startsWith("https://"), stack.agentServerUrl);
    assert.equal(stack.agentInfos().length, 1);
  });
  const suite = registerInteropCases("tunnel nginx", {
    target: () => stack.grpcTarget(),
    backend: () => stack.backend,
  });
  after(async () => {
    // nginx's error log explains a broken tunnel stream (upstream reset, timeout, buffer) better than the client can.
    const log = stack?.nginx?.log().trim() ?? "";
    if (log !== "") console.log(`nginx error log:\n${log.split("\n").slice(-30).join("\n")}`);
    suite.close();
    await stack?.close();
  });
});
