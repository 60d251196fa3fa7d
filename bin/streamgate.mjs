#!/usr/bin/env node
// Launcher of the `streamgate` command: loads the TypeScript sources through tsx and runs the CLI.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli/main.ts");
const code = await main(process.argv.slice(2));
// Leave through the event loop so piped stdout is flushed; force it if a handle lingers (keep-alive sockets).
process.exitCode = code;
setTimeout(() => process.exit(code), 1000).unref();
