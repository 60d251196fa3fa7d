// Starts a real streamgate server on 127.0.0.1 port 0 with a temp data dir; close() fails if connections leak.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveServerOptions, type ServerOptions } from "../../src/config/index.js";
import { createServer, type ServerDependencies, type StreamgateServer } from "../../src/server/index.js";

export interface TestServer {
  /** e.g. http://127.0.0.1:43123 */
  url: string;
  host: string;
  port: number;
  /** host:port, as PUBSUB_EMULATOR_HOST wants it. */
  hostPort: string;
  dataDir: string;
  server: StreamgateServer;
  /**
   * Closes the server and removes the data dir (unless kept). Throws if client connections are still
   * open after `graceMs` (default 2 s): a leaked stream or channel shows up as a failing test.
   */
  close(options?: { graceMs?: number; allowOpenConnections?: boolean; keepDataDir?: boolean }): Promise<void>;
}

/** Options beyond ServerOptions: reuse a data dir (restart tests); a short dashboard sample interval (charts). */
export interface TestServerOptions extends Partial<ServerOptions> {
  /** ServerDependencies.dashboardSampleIntervalMs. */
  dashboardSampleIntervalMs?: number;
}

/** `dependencies`: collaborators such as a capturing logger (test/harness/log-capture.ts). */
export async function startTestServer(
  options: TestServerOptions = {},
  dependencies: ServerDependencies = {},
): Promise<TestServer> {
  const { dashboardSampleIntervalMs, ...serverOptions } = options;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "streamgate-test-"));
  const resolved = resolveServerOptions({
    host: "127.0.0.1",
    port: 0,
    logLevel: (process.env.STREAMGATE_TEST_LOG_LEVEL as ServerOptions["logLevel"] | undefined) ?? "silent",
    // STREAMGATE_GRPC_PATH=lean runs a suite's in-process servers on the lean gRPC path (spawned ones read it themselves).
    ...(process.env.STREAMGATE_GRPC_PATH
      ? { grpcPath: process.env.STREAMGATE_GRPC_PATH as ServerOptions["grpcPath"] }
      : {}),
    ...serverOptions,
    dataDir,
  });
  const server = await createServer(resolved, {
    ...dependencies,
    ...(dashboardSampleIntervalMs === undefined ? {} : { dashboardSampleIntervalMs }),
  });
  const address = await server.listen();
  return {
    url: address.url,
    host: address.host,
    port: address.port,
    hostPort: `${address.host}:${address.port}`,
    dataDir,
    server,
    async close(closeOptions = {}) {
      const graceMs = closeOptions.graceMs ?? 2_000;
      const deadline = Date.now() + graceMs;
      while (server.connections() > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      const leaked = server.connections();
      await server.close();
      if (closeOptions.keepDataDir !== true && options.dataDir === undefined)
        rmSync(dataDir, { recursive: true, force: true });
      if (leaked > 0 && closeOptions.allowOpenConnections !== true) {
        throw new Error(`test server closed with ${leaked} client connection(s) still open: a client or stream leaked`);
      }
    },
  };
}

export { peersRequired } from "./peers.js";
