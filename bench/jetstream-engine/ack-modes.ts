// Consume-with-ack through the JetStream engine's API in process (no gRPC): CPU per message at-least-once vs exactly-once.
// Usage: node --import tsx bench/jetstream-engine/ack-modes.ts [--messages N] [--reps N] [--root DIR]
// (--root: import the engine from another checkout's dist/ build, to compare a change). Prints one line per run and medians.
import { parseArgs } from "node:util";
import { startNatsServer } from "../../test/harness/nats-server.js";
import { processCpuMs } from "../lib/process-cpu.js";
import { median, round } from "../lib/stats.js";

const { values } = parseArgs({
  options: {
    messages: { type: "string", default: "20000" },
    reps: { type: "string", default: "3" },
    root: { type: "string" },
  },
});
const total = Number(values.messages);
const reps = Number(values.reps);
const module =
  values.root === undefined ? "../../src/engines/jetstream/index.js" : `${values.root}/dist/engines/jetstream/index.js`;
const { createJetStreamEngine } = (await import(module)) as typeof import("../../src/engines/jetstream/index.js");

/** Acks go out like the bench's StreamingPull client: 500 ids a call, never waiting before the next. */
const ACK_BATCH = 500;
const payload = new Uint8Array(256).fill(97);

const nats = await startNatsServer({ jetstream: true });
const engine = await createJetStreamEngine({ natsUrl: nats.url, namespace: `am${Date.now().toString(36)}` });
const results: Record<string, { engineUs: number[]; natsUs: number[]; rate: number[] }> = {};
try {
  for (let rep = 0; rep < reps; rep++) {
    for (const exactlyOnce of rep % 2 === 0 ? [false, true] : [true, false]) {
      const mode = exactlyOnce ? "exactly-once" : "at-least-once";
      const topic = `projects/bench/topics/am-${rep}-${mode}`;
      const subscription = `projects/bench/subscriptions/am-${rep}-${mode}`;
      await engine.createTopic({ name: topic });
      await engine.createSubscription({ name: subscription, topic, enableExactlyOnceDelivery: exactlyOnce });
      for (let sent = 0; sent < total; sent += 100) {
        const batch = Array.from({ length: Math.min(100, total - sent) }, () => ({
          data: payload,
          attributes: {},
          orderingKey: "",
        }));
        await engine.publish(topic, batch);
      }
      const controller = new AbortController();
      const cpuBefore = process.cpuUsage();
      const natsBefore = processCpuMs(nats.pid);
      const started = performance.now();
      const stream = engine.openStream(subscription, {
        ackDeadlineSeconds: 60,
        maxOutstandingMessages: 1_000,
        maxOutstandingBytes: 0,
        clientId: "ack-modes",
        signal: controller.signal,
      });
      const acks: Promise<unknown>[] = [];
      let pending: string[] = [];
      let received = 0;
      let failed = 0;
      for await (const delivered of stream) {
        for (const message of delivered) pending.push(message.ackId);
        received += delivered.length;
        if (pending.length >= ACK_BATCH || received >= total) {
          const ids = pending;
          pending = [];
          acks.push(
            engine.acknowledge(subscription, ids).then((result) => {
              failed += result.invalidAckIds.length + result.temporaryFailedAckIds.length;
            }),
          );
        }
        if (received >= total) break;
      }
      await Promise.all(acks);
      const elapsedMs = performance.now() - started;
      const cpu = process.cpuUsage(cpuBefore);
      const natsAfter = processCpuMs(nats.pid);
      controller.abort();
      const engineUs = (cpu.user + cpu.system) / received;
      const natsUs =
        natsBefore !== null && natsAfter !== null ? ((natsAfter - natsBefore) * 1000) / received : Number.NaN;
      const rate = (received * 1000) / elapsedMs;
      results[mode] ??= { engineUs: [], natsUs: [], rate: [] };
      const entry = results[mode];
      entry.engineUs.push(engineUs);
      entry.natsUs.push(natsUs);
      entry.rate.push(rate);
      console.log(
        `${mode.padEnd(14)} #${rep + 1}: ${Math.round(rate)} msg/s, engine ${round(engineUs, 1)} µs/msg, nats-server ${round(natsUs, 1)} µs/msg, ${failed} acks failed`,
      );
      await engine.deleteSubscription(subscription);
      await engine.deleteTopic(topic);
    }
  }
  for (const [mode, entry] of Object.entries(results)) {
    console.log(
      `median ${mode}: ${Math.round(median(entry.rate))} msg/s, engine ${round(median(entry.engineUs), 1)} µs/msg, nats-server ${round(median(entry.natsUs), 1)} µs/msg`,
    );
  }
} finally {
  await engine.close();
  await nats.stop();
}
