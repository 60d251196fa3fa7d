// Spawns a TypeScript child process of a bench (node --import tsx) with IPC, and waits for its first message.
import { type ChildProcess, fork } from "node:child_process";

/** Forks `script` with `args`; resolves with its first IPC message, rejects on exit or after `timeoutMs`. */
export function forkForMessage<T>(
  repoRoot: string,
  script: string,
  args: string[],
  timeoutMs: number,
  nodeArgs: readonly string[] = [],
): { child: ChildProcess; message: Promise<T> } {
  const child = fork(script, args, {
    cwd: repoRoot,
    execArgv: ["--import", "tsx", ...nodeArgs],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  child.once("exit", () => process.removeListener("exit", killOnExit));
  const message = new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${script} sent nothing within ${timeoutMs} ms`));
    }, timeoutMs);
    child.once("message", (value) => {
      clearTimeout(timer);
      resolve(value as T);
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code} before reporting`));
    });
  });
  return { child, message };
}
