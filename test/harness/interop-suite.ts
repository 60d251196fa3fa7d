// Registers the interop cases as node:test tests over one target (one suite, several targets: direct,
// nginx grpc_pass, the tunnel, the tunnel with nginx between agent and server).
import { test } from "node:test";
import type { InteropBackend } from "./interop-backend.js";
import {
  createInteropClients,
  INTEROP_CASE_NAMES,
  type InteropClients,
  type InteropTarget,
  interopCases,
} from "./interop-cases.js";

/** What a suite needs from its setup (resolved lazily: the setup runs in a `before` hook). */
export interface InteropSuiteSetup {
  target(): InteropTarget;
  backend(): InteropBackend | null;
}

/**
 * Adds one test per interop case, named "<area> - <case>", inside the caller's describe(). The clients
 * (one channel) are created on first use and closed by the returned `close()`; call it in `after`.
 */
export function registerInteropCases(area: string, setup: InteropSuiteSetup): { close(): void } {
  let clients: InteropClients | null = null;
  for (const name of INTEROP_CASE_NAMES) {
    test(`${area} - ${name}`, { timeout: 30_000 }, async () => {
      clients ??= createInteropClients(setup.target());
      await interopCases[name]({ clients, backend: setup.backend() });
    });
  }
  return {
    close() {
      clients?.close();
      clients = null;
    },
  };
}
