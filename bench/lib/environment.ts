// Describes the machine and peer versions a benchmark ran on, for its report.
import { execFileSync } from "node:child_process";
import { cpus, loadavg, totalmem } from "node:os";
import { findNatsServerBinary } from "../../test/harness/nats-server.js";
import type { JsonValue } from "./report.js";

function commandOutput(file: string, args: readonly string[], cwd?: string): string | null {
  try {
    return execFileSync(file, args, {
      cwd,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
      timeout: 5_000,
    }).trim();
  } catch {
    return null;
  }
}

/** The `nats-server --version` string, or null when the binary is missing. */
export function natsServerVersion(): string | null {
  try {
    return commandOutput(findNatsServerBinary(), ["--version"]);
  } catch {
    return null;
  }
}

/** Node, OS, CPU, load and git commit of this run. */
export function describeEnvironment(repoRoot: string): Record<string, JsonValue> {
  const cpuList = cpus();
  const commit = commandOutput("git", ["rev-parse", "--short", "HEAD"], repoRoot);
  const dirty = commandOutput("git", ["status", "--porcelain", "--untracked-files=no"], repoRoot);
  return {
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpus: `${cpuList.length} × ${cpuList[0]?.model ?? "unknown"}`,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    loadAverageAtStart: loadavg().map((value) => Math.round(value * 100) / 100),
    natsServer: natsServerVersion(),
    commit: commit === null ? null : `${commit}${dirty ? " (dirty tree)" : ""}`,
  };
}
