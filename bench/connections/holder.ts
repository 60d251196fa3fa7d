// Child process of the connections bench: opens `count` idle streams (SSE or WebSocket) from its own
// source address, reports how long that took, then holds them (answering pings) until told to stop.
import { performance } from "node:perf_hooks";
import { openSse, openWebSocket, type WireStream } from "../fanout/wire-clients.js";

/** What the bench hands a holder (argv[2], JSON). */
export interface HolderConfig {
  kind: "sse" | "ws";
  /** streamgate (subscribe to `topic`) or the bare anchor (/sse, /sub). */
  server: "streamgate" | "bare";
  host: string;
  port: number;
  topic: string;
  count: number;
  localAddress: string;
  /** Handshakes in flight. */
  concurrency: number;
  /** Give up opening after this long. */
  deadlineMs: number;
}

/** What a holder reports once its streams are open (or it gave up). */
export interface HolderReport {
  opened: number;
  failed: number;
  firstError: string;
  openMs: number;
}

const config = JSON.parse(process.argv[2] ?? "{}") as HolderConfig;
const streams: WireStream[] = [];

async function openAll(): Promise<HolderReport> {
  const started = performance.now();
  let next = 0;
  let failed = 0;
  let firstError = "";
  const base = { host: config.host, port: config.port, localAddress: config.localAddress, handlers: {} };
  const openOne = (): Promise<WireStream> => {
    if (config.kind === "sse")
      return openSse({ ...base, path: config.server === "bare" ? "/sse" : `/v1/${config.topic}/events?from=latest` });
    if (config.server === "bare") return openWebSocket({ ...base, path: "/sub" });
    return openWebSocket({
      ...base,
      path: "/v1/ws",
      subscribeText: JSON.stringify({ type: "subscribe", id: "s", topic: config.topic, from: "latest" }),
      awaitText: '"subscribed"',
    });
  };
  const lane = async () => {
    while (next < config.count && performance.now() - started < config.deadlineMs && failed < 100) {
      next++;
      try {
        streams.push(await openOne());
      } catch (error) {
        failed++;
        if (firstError === "") firstError = error instanceof Error ? error.message : String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: config.concurrency }, lane));
  return { opened: streams.length, failed, firstError, openMs: performance.now() - started };
}

process.on("message", () => {
  for (const stream of streams) stream.destroy();
  process.exit(0);
});
process.on("disconnect", () => process.exit(0));
const report = await openAll();
process.send?.(report);
